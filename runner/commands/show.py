from __future__ import annotations

from runner.loader import Catalog


def show(name: str, *, fmt: str = "text") -> int:
    """The runbook as a readable document (Markdown with --format md)."""
    rb = Catalog().load(name)
    h = "# " if fmt == "md" else ""
    print(f"{h}{rb.title} ({rb.id})\n")
    if rb.description:
        print(rb.description.strip() + "\n")
    if rb.owner:
        print(f"Owner: {rb.owner}\n")
    for p in rb.params:
        print(f"- param `{p.name}` ({p.type}{', secret' if p.secret else ''}): {p.description}")
    for name_, desc in rb.host_vars:
        print(f"- host var `{name_}`: {desc}")
    for i, s in enumerate(rb.steps, 1):
        print(f"\n{'## ' if fmt == 'md' else ''}{i}. {s.name} [{s.id}]")
        if s.description:
            print(s.description.strip())
        if s.when:
            print(f"when: {s.when}")
        fence = "```" if fmt == "md" else ""
        print(
            f"{fence}\n{s.action.kind}: {s.action.text.strip()}\n{fence}"
            if fence
            else f"  {s.action.kind}: {s.action.text.strip()}"
        )
        for c in s.verify:
            print(f"  verify: {c.name}")
        for u in s.rollback:
            print(f"  rollback: {u.name}")
    return 0

from __future__ import annotations

from runner.format.loader import Catalog
from runner.format.model import Action, Runbook


def show(name: str, *, fmt: str = "text") -> int:
    """The runbook as a readable document: Markdown (`--format md`) or plain text."""
    rb = Catalog().load(name)
    print(markdown(rb) if fmt == "md" else text(rb))
    return 0


def _action(a: Action) -> str:
    if a.kind == "http" and a.http:
        return f"{a.http.method} {a.http.url} (expect HTTP {' or '.join(map(str, a.http.status))})"
    return a.text.strip()


def markdown(rb: Runbook) -> str:
    out = [
        f"# {rb.title}",
        "",
        f"Runbook `{rb.id}`" + (f", owned by {rb.owner}" if rb.owner else ""),
    ]
    if rb.change:
        out[-1] += f"; change type: {rb.change}"
    out.append(f"On failure: {rb.on_failure}. Targets: {', '.join(rb.targets)}.")
    if rb.description:
        out += ["", rb.description.strip()]
    if rb.params:
        out += [
            "",
            "## Parameters",
            "",
            "| name | type | default | description |",
            "|---|---|---|---|",
        ]
        for p in rb.params:
            kind = p.type + (", secret" if p.secret else "") + (", required" if p.required else "")
            choices = f" (one of: {', '.join(map(str, p.choices))})" if p.choices else ""
            out.append(
                f"| `{p.name}` | {kind} | {'' if p.default is None else p.default} | {p.description}{choices} |"
            )
    if rb.host_vars:
        out += ["", "## Host variables", ""] + [f"- `{n}`: {d}" for n, d in rb.host_vars]
    if rb.preconditions:
        out += ["", "## Preconditions", ""] + [
            f"- {c.name}: `{_action(c.action)}`" for c in rb.preconditions
        ]
    out += ["", "## Steps"]
    for i, s in enumerate(rb.steps, 1):
        out += ["", f"### {i}. {s.name} (`{s.id}`)"]
        if s.description:
            out += ["", s.description.strip()]
        facts = []
        if s.when:
            facts.append(f"only when `{s.when}`")
        if s.confirm:
            facts.append(f"asks: {s.confirm}")
        if s.safe:
            facts.append("read-only")
        if s.action.sudo:
            facts.append("with sudo" + ("" if s.action.sudo == "root" else f" -u {s.action.sudo}"))
        if s.action.timeout:
            facts.append(f"timeout {s.action.timeout:g}s")
        if s.action.retries:
            facts.append(f"{s.action.retries} retries")
        if facts:
            out += ["", "*" + "; ".join(facts) + "*"]
        if s.action.kind == "manual":
            out += ["", f"**Manual:** {s.action.text.strip()}"]
        elif s.action.kind == "call":
            args = ", ".join(f"{k}={v}" for k, v in s.action.with_)
            out += ["", f"Runs runbook `{s.action.text}`" + (f" with {args}" if args else "") + "."]
        else:  # the fence says which shell runs it (an imported `bash` fence reads as one)
            out += ["", f"```{s.action.shell}", _action(s.action), "```"]
        for label, checks in (("Preconditions", s.preconditions), ("Verify", s.verify)):
            if checks:
                out += ["", f"{label}:"] + [f"- {c.name}: `{_action(c.action)}`" for c in checks]
        if s.rollback:
            out += ["", "Rollback:"] + [f"- `{_action(u.action)}`" for u in s.rollback]
    return "\n".join(out)


def text(rb: Runbook) -> str:
    out = [f"{rb.title} ({rb.id})"]
    if rb.description:
        out.append(rb.description.strip())
    for p in rb.params:
        out.append(f"  param {p.name} ({p.type}{', secret' if p.secret else ''}): {p.description}")
    for i, s in enumerate(rb.steps, 1):
        out.append(f"{i}. {s.name} [{s.id}]" + (f" when {s.when}" if s.when else ""))
        shell = f" ({s.action.shell})" if s.action.shell != "sh" else ""
        out.append(f"   {s.action.kind}{shell}: {_action(s.action)}".replace("\n", "\n   "))
        out += [f"   verify: {c.name}" for c in s.verify]
        out += [f"   rollback: {_action(u.action)}" for u in s.rollback]
    return "\n".join(out)

"""Sections -> runbooks, checklists and the report of what became of every block and item.

A section with shell fences or numbered instructions becomes a runbook; a section with `[ ]`
items becomes a checklist; everything else is reported as skipped, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runner.importer import lift as lift_mod
from runner.importer.document import (
    SHELL_LANGS,
    CheckItem,
    Fence,
    Instruction,
    Prose,
    Section,
    parse,
    period_of,
)
from runner.importer.shell import (
    Command,
    Group,
    fence_shell,
    groups,
    interactive,
    lift_sudo,
    step_name,
)

RUN, MANUAL, ITEM, SKIPPED = "run", "manual", "checklist-item", "skipped"


@dataclass(frozen=True)
class Entry:
    """One line of the report: what a part of the source became."""

    lines: tuple[int, int]
    outcome: str  # run | manual | checklist-item | skipped
    target: str  # "runbooks/ID.yaml#STEP", "checklists/ID.yaml#ITEM", or "" when skipped
    detail: str  # the command, the item, or why it was skipped / made manual
    fence: int = 0  # the opening line of the shell fence it comes from (0: not from one)


@dataclass
class Output:
    kind: str  # runbook | checklist
    id: str
    section: Section
    data: dict[str, Any]
    lifts: list[lift_mod.Lift] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.kind}s/{self.id}.yaml"


@dataclass
class Library:
    outputs: list[Output]
    report: list[Entry]
    shell_fences: list[int]  # the opening line of every shell fence of the source
    lifts: list[lift_mod.Lift]


def build(text: str) -> Library:
    sections = parse(text)
    fences = [e for s in sections for e in s.elements if isinstance(e, Fence)]
    shell = [f for f in fences if f.lang in SHELL_LANGS]
    lifts = lift_mod.find(c.text for f in shell for g in groups(f.code) for c in g.commands)
    lib = Library([], [], [f.lines[0] for f in shell], lifts)
    ids: dict[str, set[str]] = {"runbook": set(), "checklist": set()}
    for s in sections:
        _section(s, lib, ids)
    return lib


def slug(text: str, limit: int = 48, empty: str = "step") -> str:
    """An id: lower-case ASCII words joined by dashes (`empty` when no such word is left)."""
    s = re.sub(r"[^a-z0-9]+", "-", re.sub(r"['’]", "", text.lower())).strip("-") or empty
    if len(s) > limit:
        s = s[:limit].rsplit("-", 1)[0]
    return s


def _unique(base: str, taken: set[str], alt: str = "") -> str:
    name = base
    if name in taken and alt:
        name = f"{alt}-{base}"
    n = 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    taken.add(name)
    return name


class _Runbook:
    """The steps of one section as they are made, and the report entries that point at them."""

    def __init__(self, section: Section, lib: Library) -> None:
        self.section, self.lib = section, lib
        self.steps: list[dict[str, Any]] = []
        self.entries: list[Entry] = []
        self.used: dict[str, lift_mod.Lift] = {}
        self.step_ids: set[str] = set()
        self.note = ""  # a paragraph just before a fence describes its first step

    def template(self, text: str, *, shell: bool, lift: bool = True) -> str:
        """Lifted values become variables in what came from shell code; prose instructions
        only have Jinja's delimiters escaped ("test in staging first" stays as written)."""
        out, used = lift_mod.apply(text, self.lib.lifts if lift else (), shell=shell)
        self.used.update((u.name, u) for u in used)
        return out

    def add(self, name: str, body: dict[str, Any], entry: Entry) -> None:
        sid = _unique(slug(name), self.step_ids)
        step: dict[str, Any] = {"id": sid, "name": name}
        if self.note:
            step["description"] = self.note
            self.note = ""
        step.update(body)
        self.steps.append(step)
        self.entries.append(Entry(entry.lines, entry.outcome, f"#{sid}", entry.detail, entry.fence))

    def fence(self, f: Fence) -> None:
        base = f.lines[0] + 1  # the file's line of the code's first line
        found = groups(f.code)
        if f.label and found and found[0].title:
            self.note = self.note or f.label  # the list item's text introduces the fence
        for g in found:
            alone = len(found) == 1 and self.section.title
            name = (
                step_name(g.title)
                or _plain(f.label).rstrip(":")
                or (alone and _plain(self.section.title))
                or _first_line(g)
            )
            lines = (base + g.first, base + g.last)
            if not g.commands:
                text = " ".join([step_name(g.title), *g.notes])
                why = "comments only: an instruction for a person"
                self.add(
                    name, {"manual": self.template(text, shell=False)}, _e(lines, MANUAL, why, f)
                )
                continue
            for part, (cmds, why) in enumerate(pieces := _pieces(g)):
                label = name if len(pieces) == 1 else f"{name} ({part + 1}/{len(pieces)})"
                where = (base + cmds[0].first, base + cmds[-1].last)
                if why:
                    self._manual(label, cmds[0], why, where, f)
                else:
                    self._run(label, g, cmds, where, f)

    def _manual(self, name: str, cmd: Command, why: str, lines: tuple[int, int], f: Fence) -> None:
        shown = self.template(cmd.text, shell=False)
        text = (
            f"Run by hand: `{shown}`"
            if "\n" not in shown
            else f"Run by hand:\n\n```{fence_shell(f.lang, f.code)}\n{shown}\n```"
        ) + f"\n\n({why}.)"
        self.add(name, {"manual": text}, _e(lines, MANUAL, why, f))

    def _run(
        self, name: str, g: Group, cmds: list[Command], lines: tuple[int, int], f: Fence
    ) -> None:
        lifted = [lift_sudo(c.text) for c in cmds]
        users = {user for _, user, _ in lifted}
        body: dict[str, Any] = {}
        detail = "; ".join(dict.fromkeys(why for _, _, why in lifted if why))
        if len(users) == 1 and None not in users:
            text = "\n".join(t for t, _, _ in lifted)
            user = users.pop()
            body["sudo"] = True if user == "root" else user
        else:
            text = "\n".join(c.text for c in cmds)
            if len(users) > 1 and None in users and not detail:
                detail = "sudo kept in the commands: only some of them use it"
        if g.notes and not self.note:
            self.note = "\n".join(g.notes)
        run = self.template(text, shell=True)
        if len(cmds) > 1:
            # A person following the page stops at a command that fails; without this the
            # step's status would be its last command's, and a failed `cp` (or `source`) would
            # be followed by the next line as if it had worked. No pipefail: dash has none, and
            # `crontab -l | … | crontab -` counts on a pipeline's status being its last command's.
            run = "set -e\n" + run
        # the fence's shell runs it: a `bash` fence's `source` or `[[ ]]` under dash would fail
        shell = fence_shell(f.lang, f.code)
        body = {**({"shell": shell} if shell != "sh" else {}), "run": run, **body}
        first = cmds[0].text.split("\n", 1)[0]
        self.add(name, body, _e(lines, RUN, first + (f"  ({detail})" if detail else ""), f))


def _e(lines: tuple[int, int], outcome: str, detail: str, f: Fence) -> Entry:
    return Entry(lines, outcome, "", detail, f.lines[0])


def _first_line(g: Group) -> str:
    line = g.commands[0].text.split("\n", 1)[0].strip() if g.commands else "step"
    return line if len(line) <= 60 else line[:57] + "..."


def _pieces(g: Group) -> list[tuple[list[Command], str]]:
    """Runs of unattended commands, and each interactive command on its own with the reason."""
    out: list[tuple[list[Command], str]] = []
    for c in g.commands:
        why = interactive(c.text)
        if why or not out or out[-1][1]:
            out.append(([c], why))
        else:
            out[-1][0].append(c)
    return out


def _section(s: Section, lib: Library, ids: dict[str, set[str]]) -> None:
    rb = _Runbook(s, lib)
    prose: list[str] = []
    items: list[CheckItem] = []
    skipped: list[Entry] = []
    for i, el in enumerate(s.elements):
        if isinstance(el, Prose):
            rb.note = ""  # a label describes only the fence right after it
            prose.append(el.text)
        elif isinstance(el, Fence) and el.lang in SHELL_LANGS and not groups(el.code):
            why = "an empty shell fence: nothing to run"
            lib.report.append(Entry(el.lines, SKIPPED, "", why, el.lines[0]))
        elif isinstance(el, Fence) and el.lang in SHELL_LANGS:
            before = s.elements[i - 1] if i else None
            if (
                isinstance(before, Prose)
                and prose
                and prose[-1] is before.text
                and _label(before.text)
            ):
                rb.note = prose.pop()
            rb.fence(el)
        elif isinstance(el, Fence):
            kind = f"a `{el.lang}` fence" if el.lang else "a fence without a language"
            skipped.append(Entry(el.lines, SKIPPED, "", f"{kind} is not shell"))
            prose.append(f"```{el.lang}\n{el.code.rstrip()}\n```")
        elif isinstance(el, Instruction):
            name = _plain(el.text.split("\n", 1)[0])
            why = "a numbered instruction: a person carries it out"
            entry = Entry(el.lines, MANUAL, "", why)
            rb.add(name, {"manual": rb.template(el.text, shell=False, lift=False)}, entry)
        else:
            items.append(el)
    description = "\n\n".join(prose).strip()
    section_id = slug(s.title, empty=f"section-{s.lines[0]}")
    if rb.steps:
        rid = _unique(section_id, ids["runbook"], slug(s.path[-2]) if len(s.path) > 1 else "")
        data: dict[str, Any] = {"runbook": rid, "title": _plain(s.title)}
        if description:
            data["description"] = description + "\n"
        data["steps"] = rb.steps
        out = Output("runbook", rid, s, data, sorted(rb.used.values(), key=lambda x: x.name))
        lib.outputs.append(out)
        lib.report += [
            Entry(e.lines, e.outcome, out.path + e.target, e.detail, e.fence) for e in rb.entries
        ]
    if items:
        cid = _unique(section_id, ids["checklist"])
        taken: set[str] = set()
        entries = []
        listed = []
        for it in items:
            title = _plain(it.title) or f"Item at line {it.line}"
            iid = _unique(slug(title), taken)
            item = {"id": iid, "title": title}
            if it.description:
                item["description"] = it.description
            listed.append(item)
            entries.append(
                Entry((it.line, it.line), ITEM, f"checklists/{cid}.yaml#{iid}", it.title)
            )
        data = {"checklist": cid, "title": _plain(s.title), "period": period_of(s.path)}
        if description and not rb.steps:
            data["description"] = description + "\n"
        data["items"] = listed
        lib.outputs.append(Output("checklist", cid, s, data))
        lib.report += entries
    if not rb.steps and not items and s.elements:
        why = f"'{s.title}': no shell code, numbered instructions or checkboxes"
        lib.report.append(Entry(s.lines, SKIPPED, "", why))
    kept = "kept in the description" if rb.steps or items else "its section is skipped"
    lib.report += [Entry(e.lines, e.outcome, "", f"{e.detail}: {kept}") for e in skipped]


def _label(paragraph: str) -> bool:
    """A short paragraph such as `**Resolution**:` that introduces the code after it."""
    return "\n" not in paragraph and len(paragraph) <= 80 and paragraph.rstrip().endswith(":")


def _plain(text: str) -> str:
    """Inline Markdown emphasis and code marks removed (titles and names are plain text)."""
    return re.sub(r"(\*\*|__|`)", "", text).strip()

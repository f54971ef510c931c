"""A Markdown runbook as sections of elements, parsed with markdown-it-py (CommonMark).

A section starts at each heading of level 1-4 and runs to the next one; level-5/6 headings stay
inside their section as prose. The parser's block tree gives every element its source lines, so
nothing here matches Markdown with regexes; only inline text (a checkbox, a bold lead) is read
from the parser's inline tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

SHELL_LANGS = frozenset({"bash", "sh", "shell", "zsh", "ksh"})
MARKDOWN_LANGS = frozenset({"markdown", "md"})
PERIODS = ("daily", "weekly", "monthly", "quarterly")


@dataclass(frozen=True)
class Prose:
    """Text for a description: paragraphs, tables, plain lists, non-shell fences kept as they are."""

    text: str
    lines: tuple[int, int]


@dataclass(frozen=True)
class Fence:
    """A fenced block. `lang` is the first word of the info string; `label` is the text of the
    list item that holds it, if any (it names the step when the block has no `# 1. …` comments)."""

    lang: str
    code: str
    lines: tuple[int, int]  # the opening and closing fence lines
    label: str = ""

    @property
    def first_line(self) -> int:
        return self.lines[0] + 1


@dataclass(frozen=True)
class Instruction:
    """An item of a numbered list (or a plain list item) that a person carries out."""

    text: str
    lines: tuple[int, int]


@dataclass(frozen=True)
class CheckItem:
    title: str
    description: str
    line: int


Element = Prose | Fence | Instruction | CheckItem


@dataclass
class Section:
    title: str
    level: int
    path: tuple[str, ...]  # the titles of the enclosing headings and this one
    lines: tuple[int, int]
    digest: str = ""
    elements: list[Element] = field(default_factory=list)


_MD = MarkdownIt("commonmark")


def normalise(text: str) -> str:
    """Windows and old-Mac line endings read as Unix ones (for the hash too: a file converted to
    CRLF has not changed)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(text: str) -> list[Section]:
    text = normalise(text)
    lines = text.split("\n")
    root = SyntaxTreeNode(_MD.parse(text))
    sections: list[Section] = []
    current = Section("", 0, (), (1, 1))
    stack: list[tuple[int, str]] = []
    for node in root.children:
        level = int(node.tag[1]) if node.type == "heading" else 0
        if 1 <= level <= 4:
            sections.append(current)
            title = _inline_text(node)
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            current = Section(title, level, tuple(t for _, t in stack), (_start(node), 0))
            continue
        current.elements += _elements(node, lines)
    sections.append(current)
    sections = [s for s in sections if s.level or s.elements]
    for i, s in enumerate(sections):
        end = sections[i + 1].lines[0] - 1 if i + 1 < len(sections) else len(lines)
        while end > s.lines[0] and not lines[end - 1].strip():
            end -= 1
        s.lines = (s.lines[0], end)
        body = "\n".join(lines[s.lines[0] - 1 : end])
        s.digest = hashlib.sha256(body.encode()).hexdigest()
    return sections


def _start(node: SyntaxTreeNode) -> int:
    return (node.map or (0, 1))[0] + 1


def _span(node: SyntaxTreeNode) -> tuple[int, int]:
    start, end = node.map or (0, 1)
    return (start + 1, end)


def _source(node: SyntaxTreeNode, lines: list[str]) -> str:
    start, end = _span(node)
    return "\n".join(lines[start - 1 : end]).rstrip()


def _inline_text(node: SyntaxTreeNode) -> str:
    inline = next((c for c in node.children if c.type == "inline"), None)
    return " ".join(inline.content.split()) if inline else ""


def _has(node: SyntaxTreeNode, kind: str) -> bool:
    return node.type == kind or any(_has(c, kind) for c in node.children)


def _elements(node: SyntaxTreeNode, lines: list[str], label: str = "") -> list[Element]:
    if node.type == "fence":
        lang = (node.info.split() or [""])[0].lower()
        fence = Fence(lang, node.content, _span(node), label)
        if lang in MARKDOWN_LANGS:
            # a template written as Markdown (the seed's post-incident review): its checkboxes
            # are checklist items; its own line numbers are shifted to the file's
            inner = [e for s in parse(node.content) for e in s.elements if isinstance(e, CheckItem)]
            shifted = [CheckItem(c.title, c.description, c.line + fence.lines[0]) for c in inner]
            return [fence, *shifted]
        return [fence]
    if node.type in ("ordered_list", "bullet_list"):
        return _list(node, lines)
    if node.type == "blockquote" and _has(node, "fence"):
        return [e for c in node.children for e in _elements(c, lines, label)]
    return [Prose(_source(node, lines), _span(node))]


def _list(node: SyntaxTreeNode, lines: list[str]) -> list[Element]:
    """Numbered items are instructions; `[ ]` items are checklist items; plain bullets are prose.
    Fences inside an item become steps named after the item's first paragraph. A list of links
    only (a table of contents) is prose."""
    ordered = node.type == "ordered_list"
    if all(_only_link(item) for item in node.children):
        return [Prose(_source(node, lines), _span(node))]
    out: list[Element] = []
    plain: list[SyntaxTreeNode] = []

    def flush() -> None:
        if plain:
            start, end = _span(plain[0])[0], _span(plain[-1])[1]
            out.append(Prose("\n".join(lines[start - 1 : end]).rstrip(), (start, end)))
            plain.clear()

    for item in node.children:
        first = item.children[0] if item.children else None
        head = _inline_text(first) if first is not None and first.type == "paragraph" else ""
        check = _checkbox(first) if first is not None and first.type == "paragraph" else None
        if check is not None and not ordered:
            flush()
            title, description = check
            rest = [_source(c, lines) for c in item.children[1:]]
            desc = "\n".join([description, *rest]).strip()
            out.append(CheckItem(title, desc, _start(item)))
            continue
        if _has(item, "fence") and first is not None:
            flush()
            labelled = bool(head) and _fence_after(item)
            if head and not labelled:
                out.append(Instruction(head, _span(first)))
            for child in item.children[1 if head else 0 :]:
                out += _elements(child, lines, head if labelled else "")
            continue
        if ordered:
            flush()
            start, end = _span(item)
            while end > start and not lines[end - 1].strip():
                end -= 1
            text = _item_text(item, lines)
            if text:  # an empty item holds nothing to carry out
                out.append(Instruction(text, (start, end)))
        else:
            plain.append(item)
    flush()
    return out


def _fence_after(item: SyntaxTreeNode) -> bool:
    """The item's text names the fences that follow it (so it is not an instruction of its own)."""
    return any(c.type == "fence" for c in item.children[1:])


def _only_link(item: SyntaxTreeNode) -> bool:
    if len(item.children) != 1 or item.children[0].type != "paragraph":
        return False
    inline = item.children[0].children[0]
    kinds = [c.type for c in inline.children if not (c.type == "text" and not c.content.strip())]
    return kinds[:1] == ["link"] and len(inline.children) <= 3 and kinds.count("link") == 1


def _item_text(item: SyntaxTreeNode, lines: list[str]) -> str:
    """The item's source without its marker; nested lists keep their indentation."""
    start, end = _span(item)
    body = lines[start - 1 : end]
    first = body[0].lstrip()
    marker = len(body[0]) - len(first) + len(first.split(" ", 1)[0]) + 1
    indent = min(marker, len(body[0]))
    text = [body[0][indent:]] + [
        ln[indent:] if ln[:indent].strip() == "" else ln for ln in body[1:]
    ]
    return "\n".join(text).strip()


def _checkbox(paragraph: SyntaxTreeNode) -> tuple[str, str] | None:
    """`[ ] **Lead**: rest` -> ("Lead", "rest"); `[ ] text` -> ("text", ""); else None."""
    inline = paragraph.children[0]
    kids = inline.children
    if not kids or kids[0].type != "text":
        return None
    head = kids[0].content
    if head[:3] not in ("[ ]", "[x]", "[X]") or (len(head) > 3 and head[3] != " "):
        return None
    text = " ".join(inline.content[3:].split())
    if len(kids) > 1 and not head[4:].strip() and kids[1].type == "strong":
        lead = "".join(c.content for c in kids[1].children).strip()
        rest = text.split("**", 2)[-1].lstrip(" :—-").strip()
        return lead, rest
    return text, ""


def period_of(path: tuple[str, ...]) -> str:
    """The period named by the nearest heading that names one, else `once`."""
    for title in reversed(path):
        words = title.lower().split()
        for p in PERIODS:
            if p in words:
                return p
    return "once"

"""Where each `{{ }}` of a `run:` template stands in the shell text around it.

render.py quotes a value for a shell *word*. That is right in a word and wrong in these places,
found here in the template's own (literal) text:
- inside `'...'` or `"..."`: the value would be quoted twice;
- in a comment: quotes mean nothing there, and a newline in the value ends the comment, so the
  rest of the value runs as a command;
- in the body of a here-document whose delimiter is unquoted (`<<EOF`): quotes are text there and
  `$( )`, backticks and `$x` expand, so a quoted value still runs as code;
- in the delimiter of a here-document;
- in the body of a here-document whose delimiter is quoted (`<<'EOF'`): nothing expands there, so
  the value goes in as literal text, unquoted (render.py), as long as no line of it ends the
  here-document (`literal_lines`).

A scanner of the shell's grammar as far as these need it: quotes, `\\`, comments, `$(( ))`,
here-documents (`<<`, `<<-`; `<<<` is a here-string, a word).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD, QUOTED, COMMENT, HEREDOC, LITERAL, DELIMITER = (
    "word",
    "quoted",
    "comment",
    "heredoc",
    "literal",
    "delimiter",
)

# an expression (its whitespace-control dashes apart), a statement, a comment
TOKEN = re.compile(r"{{(-?)(.*?)(-?)}}|{%.*?%}|{#.*?#}", re.S)
_HOLE = "\x00"  # stands for an expression in the text the scanner reads


@dataclass(frozen=True)
class Heredoc:
    delimiter: str
    dash: bool  # `<<-`: leading tabs are stripped, the delimiter line's too
    quoted: bool  # `<<'EOF'`, `<<"EOF"`, `<<\EOF`: the body is literal text

    def operator(self, *, quoted: bool | None = None) -> str:
        q = self.quoted if quoted is None else quoted
        return "<<" + "-" * self.dash + (f"'{self.delimiter}'" if q else self.delimiter)

    def ends(self, line: str) -> bool:
        return (line.lstrip("\t") if self.dash else line) == self.delimiter


@dataclass(frozen=True)
class Spot:
    """One `{{ }}` of a template: the match in the source, and where it stands."""

    match: re.Match[str]
    context: str
    heredoc: Heredoc | None = None

    @property
    def expr(self) -> str:
        return self.match.group(2).strip()

    @property
    def raw(self) -> bool:
        return re.search(r"\|\s*raw\s*$", self.expr) is not None


def spots(source: str) -> list[Spot]:
    """Every `{{ }}` of `source`, in order, with its shell context."""
    holes = [m for m in TOKEN.finditer(source) if m.group(0).startswith("{{")]
    if not holes:
        return []
    skeleton = TOKEN.sub(
        lambda m: _HOLE if m.group(0).startswith("{{") else "", source.replace(_HOLE, " ")
    )
    return [Spot(m, *where) for m, where in zip(holes, _contexts(skeleton), strict=True)]


def _contexts(text: str) -> list[tuple[str, Heredoc | None]]:
    out: list[tuple[str, Heredoc | None]] = []
    state = ""  # "", "'" or '"'
    pending: list[Heredoc] = []  # here-documents of the current line: their bodies come next
    bodies: list[Heredoc] = []
    arith = 0  # inside $(( )): `<<` is a shift
    i, n = 0, len(text)
    while i < n:
        if bodies:  # a here-document's body: whole lines, up to the delimiter's
            doc = bodies[0]
            end = text.find("\n", i)
            end = n if end < 0 else end
            line = text[i:end]
            out += [(LITERAL if doc.quoted else HEREDOC, doc)] * line.count(_HOLE)
            if _HOLE not in line and doc.ends(line):
                bodies.pop(0)
            i = end + 1
            continue
        ch = text[i]
        if ch == _HOLE:
            out.append((QUOTED if state else WORD, None))
        elif state == "'":
            state = "" if ch == "'" else state
        elif ch == "\\" and i + 1 < n and text[i + 1] != _HOLE:
            i += 1  # the next character is escaped (a newline: a continued line)
        elif state == '"':
            state = "" if ch == '"' else state
        elif ch in "'\"":
            state = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t\n;&|()"):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out += [(COMMENT, None)] * text.count(_HOLE, i, end)
            i = end
            continue
        elif ch == "\n" and pending:
            bodies, pending = pending, []
        elif text.startswith("((", i):
            arith += 1
            i += 1
        elif text.startswith("))", i) and arith:
            arith -= 1
            i += 1
        elif text.startswith("<<<", i):
            i += 2
        elif text.startswith("<<", i) and not arith:
            i, doc, holes = _operator(text, i)
            out += [(DELIMITER, doc)] * holes
            if doc.delimiter and not holes:
                pending.append(doc)
            continue
        i += 1
    return out


def _operator(text: str, i: int) -> tuple[int, Heredoc, int]:
    """`<<WORD` or `<<-WORD` at i: where it ends, the here-document, the holes in its word."""
    j = i + 2
    dash = text.startswith("-", j)
    j += dash
    while j < len(text) and text[j] in " \t":
        j += 1
    word: list[str] = []
    quoted, q, holes = False, "", 0
    while j < len(text):
        c = text[j]
        holes += c == _HOLE
        if q:
            if c == q:
                q = ""
            else:
                word.append(c)
        elif c in "'\"":
            q, quoted = c, True
        elif c == "\\" and j + 1 < len(text):
            quoted = True
            word.append(text[j + 1])
            holes += text[j + 1] == _HOLE
            j += 1
        elif c in " \t\n;&|<>()":
            break
        else:
            word.append(c)
        j += 1
    return j, Heredoc("".join(word), dash, quoted), holes


# What render.py puts around a value in a quoted here-document's body, and takes away after
# checking the lines it touched (a value cannot hold it: a NUL cannot be in a command anyway).
MARK = "\x00"


def literal_lines(rendered: str, docs: frozenset[Heredoc]) -> str:
    """`rendered` without the marks, or ValueError if a line a value touched ends one of `docs`:
    `cat <<'EOF'` with a value holding a line `EOF` would run the lines after it as commands."""
    inside = False
    for line in rendered.split("\n"):
        touched = inside or MARK in line
        inside ^= line.count(MARK) % 2 == 1
        clean = line.replace(MARK, "")
        for doc in docs:
            if touched and doc.ends(clean):
                raise ValueError(
                    f"a value in the here-document {doc.operator()} holds a line "
                    f"'{doc.delimiter}', which would end it and run the lines after it as commands"
                )
    return rendered.replace(MARK, "")

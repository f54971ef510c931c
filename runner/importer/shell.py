"""A shell fence as commands, groups and steps.

A *command* is one logical command: its lines joined by an open quote, a trailing `\\`, `|`,
`&&` or `||`, or a here-document. A *group* is the commands under one comment (`# 1. Stop the
service`); a numbered comment always starts a new group. Each group becomes one step, except
that an interactive command (an editor, `watch`, `tail -f`) becomes a manual step of its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

PLAIN, COMMENT, BODY = "", "#", "h"  # contexts besides the quote characters ' and "
# The fence tags and `#!` interpreters that name a shell of the format's `shell:` (sh, shell and
# an `sh`/`dash` interpreter: /bin/sh, the default, which needs no key)
SHELL_OF = {"bash": "bash", "zsh": "zsh", "ksh": "ksh", "sh": "sh", "dash": "sh", "shell": "sh"}
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_NUMBERED = re.compile(r"#\s*(\d+)[.)]\s*(.*)")
EDITORS = frozenset({"nano", "vi", "vim", "nvim", "emacs", "pico", "mcedit", "vipw", "visudo"})
SCREENS = frozenset({"less", "more", "top", "htop", "atop", "iotop", "man"})


def contexts(text: str) -> list[str]:
    """For each character of `text`: PLAIN shell, inside `'` or `"` quotes, a COMMENT, or a
    here-document BODY. Approximate (no `$(...)` nesting), which is enough to place templates."""
    out: list[str] = []
    state = PLAIN
    bodies: list[str] = []
    for line in text.split("\n"):
        if bodies:
            out += [BODY] * (len(line) + 1)
            if line.strip() == bodies[0]:
                bodies.pop(0)
            continue
        escaped = comment = False
        pending: list[str] = []
        for i, ch in enumerate(line):
            if comment:
                out.append(COMMENT)
            elif escaped:
                out.append(state)
                escaped = False
            elif ch == "\\" and state != "'":
                out.append(state)
                escaped = True
            elif state == PLAIN and ch == "#" and (i == 0 or line[i - 1] in " \t;|&("):
                comment = True
                out.append(COMMENT)
            elif state == PLAIN and ch in "'\"":
                state = ch
                out.append(ch)
            elif state != PLAIN and ch == state:
                out.append(ch)
                state = PLAIN
            else:
                if state == PLAIN and line.startswith("<<", i) and not line.startswith("<<<", i):
                    m = _HEREDOC.match(line, i)
                    if m:
                        pending.append(m.group(2))
                out.append(state)
        out.append(state if not escaped else "\\")  # the newline: "\\" marks a continuation
        bodies += pending
    return out[: len(text)]


@dataclass(frozen=True)
class Command:
    text: str
    first: int  # 0-based line offsets within the fence's code
    last: int


@dataclass(frozen=True)
class Group:
    title: str
    notes: tuple[str, ...]
    commands: tuple[Command, ...]
    first: int
    last: int


def fence_shell(lang: str, code: str) -> str:
    """The shell a fence's code was written for: the one its `#!` line names (`#!/bin/bash`,
    `#!/usr/bin/env bash`), else its tag's; sh for `sh` and `shell`. The `#!` line is the code's
    first, as for groups(), which leaves it out of every step."""
    first = code.split("\n", 1)[0].strip()
    if first.startswith("#!"):
        words = first[2:].split()
        if words and words[0].rsplit("/", 1)[-1] == "env":  # env [-S] [NAME=VALUE] SHELL
            words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        named = SHELL_OF.get(words[0].rsplit("/", 1)[-1]) if words else None
        if named is not None:
            return named
    return SHELL_OF.get(lang, "sh")


def groups(code: str) -> list[Group]:
    lines = code.rstrip("\n").split("\n")
    ctx = contexts("\n".join(lines))
    ends: list[str] = []  # the context of each line's newline
    pos = 0
    for line in lines:
        pos += len(line)
        ends.append(ctx[pos] if pos < len(ctx) else PLAIN)
        pos += 1
    out: list[Group] = []
    notes: list[str] = []
    cmds: list[Command] = []
    title, first = "", -1

    def close(last: int) -> None:
        if title or cmds:
            out.append(Group(title, tuple(notes), tuple(cmds), first, last))

    i = 0
    last = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped:
            i += 1
            continue
        if i == 0 and stripped.startswith("#!"):  # the interpreter line names no step
            i += 1
            continue
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if cmds or (_NUMBERED.match(stripped) and title):
                close(last)
                title, notes, cmds, first = "", [], [], -1
            if not title and not cmds:
                title, first = text, i
            else:
                notes.append(text)
            last = i
            i += 1
            continue
        start = i
        while i + 1 < len(lines) and _continues(lines[i], ends[i], ctx, lines, i):
            i += 1
        cmds.append(Command("\n".join(lines[start : i + 1]), start, i))
        first = start if first < 0 else first
        last = i
        i += 1
    close(last)
    return out


def _continues(line: str, end: str, ctx: list[str], lines: list[str], i: int) -> bool:
    if end in ("'", '"', "\\", BODY):
        return True
    nxt = sum(len(x) + 1 for x in lines[: i + 1])
    if nxt < len(ctx) and ctx[nxt] == BODY:
        return True
    code = line.split(" #", 1)[0].rstrip()
    return code.endswith(("|", "&&", "||"))


def numbered(title: str) -> bool:
    return bool(_NUMBERED.match("# " + title))


def step_name(title: str) -> str:
    m = _NUMBERED.match("# " + title)
    return (m.group(2) if m else title).strip().rstrip(":")


def segments(command: str) -> list[str]:
    """The simple commands of a command line: split at `|`, `;`, `&&`, `||` outside quotes."""
    ctx = contexts(command)
    parts: list[str] = []
    cur: list[str] = []
    for ch, c in zip(command, ctx, strict=True):
        if c == PLAIN and ch in "|;&":
            parts.append("".join(cur))
            cur = []
        elif c not in (COMMENT, BODY):
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text.split("\n", 1)[0], comments=True)
    except ValueError:
        return text.split()


def interactive(command: str) -> str:
    """Why a person must run this command (empty when it can run unattended)."""
    for seg in segments(command):
        words = _words(seg)
        while words and (words[0] in ("sudo", "env", "exec") or "=" in words[0]):
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] in ("-u", "-g") else words[1:]
        if not words:
            continue
        prog = words[0].rsplit("/", 1)[-1]
        follow = {"-f", "-F", "--follow"} & set(words[1:])
        if prog in EDITORS or (prog in ("crontab", "systemctl") and {"-e", "edit"} & set(words)):
            return f"`{prog}` is an interactive editor: a person makes the change"
        if prog == "watch":
            return "`watch` repeats until it is stopped: a person watches the output"
        if prog in ("tail", "journalctl") and follow:
            return f"`{prog} {sorted(follow)[0]}` follows the output until it is interrupted"
        if prog in SCREENS:
            return f"`{prog}` is an interactive screen"
    return ""


def lift_sudo(command: str) -> tuple[str, str | None, str]:
    """`sudo [-u USER] CMD` -> (CMD, USER or "root", ""). When sudo covers only part of the
    command (a pipe, a list, a redirection), sudo stays in the text: (command, None, why)."""
    body = command.lstrip()
    if not body.startswith("sudo "):
        return command, None, ""
    words = _words(body)
    user, n = "root", 1
    while n < len(words) and words[n].startswith("-"):
        if words[n] in ("-u", "--user") and n + 1 < len(words):
            user, n = words[n + 1], n + 2
        elif words[n].startswith("--user="):
            user, n = words[n].split("=", 1)[1], n + 1
        elif words[n] in ("-H", "-n"):
            n += 1
        else:
            return command, None, f"sudo option {words[n]} kept in the command"
    rest = body.split(None, 1)[1]
    for _ in range(n - 1):
        rest = rest.split(None, 1)[1]
    ctx = contexts(rest)
    for i, (ch, c) in enumerate(zip(rest, ctx, strict=True)):
        if c == PLAIN and (
            ch in "|;&>(`" or (ch == "<" and "<<" not in rest[max(i - 1, 0) : i + 2])
        ):
            return command, None, "sudo kept in the command: it covers only part of it"
    return rest, user, ""

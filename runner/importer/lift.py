"""Values that tie a runbook to one machine, lifted into variables.

Found over the whole document, so that every imported file names a value the same way:
- the deployment root: the directory (two levels deep or more) under which the most commands
  work, weighted by depth, used at least 3 times -> host_var `app_dir`;
- the environment a script is pointed at (`production`, `staging`, ...), the most frequent one
  when it repeats -> host_var `env_name`;
- any other absolute path, or host of a URL, that repeats -> a runbook `vars:` entry keeping its
  value, with a comment (to vary it per host, move it to `host_vars` and the inventory).
System locations (/etc, /usr, /dev, /tmp, ...) are the same on every machine and stay as written;
`/path/to/...` placeholders are never taken for the deployment root.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from runner.importer.shell import PLAIN, contexts

_PATH_CHARS = r"A-Za-z0-9._@%+-"
_PATH = re.compile(rf"(?<![\w.:/~$@-])(?:/[{_PATH_CHARS}]+)+/?")
_URL_HOST = re.compile(r"\bhttps?://([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
SYSTEM = ("/etc", "/usr", "/dev", "/proc", "/sys", "/tmp", "/bin", "/sbin", "/lib", "/var/tmp")
ENVIRONMENTS = (
    "production",
    "staging",
    "development",
    "prod",
    "stage",
    "preprod",
    "qa",
    "uat",
)
_JINJA_OPEN = re.compile(r"{[{%#]")


@dataclass(frozen=True)
class Lift:
    name: str
    value: str
    count: int  # occurrences in the document's shell code
    host: bool  # a host_var (the inventory gives it) rather than a runbook var


def _system(path: str) -> bool:
    return any(path == s or path.startswith(s + "/") for s in SYSTEM)


def _boundary(kind: str) -> tuple[str, str]:
    if kind == "path":
        return r"(?<![\w.:/~$@-])", rf"(?![{_PATH_CHARS}])"
    if kind == "host":
        return r"(?<![A-Za-z0-9.-])", r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
    return r"(?<![\w./-])", r"(?![\w/-]|\.\w)"


def _count(value: str, kind: str, texts: list[str]) -> int:
    before, after = _boundary(kind)
    pattern = re.compile(before + re.escape(value) + after)
    return sum(len(pattern.findall(t)) for t in texts)


def find(code: Iterable[str]) -> list[Lift]:
    texts = list(code)
    paths = [p.rstrip("/") or "/" for t in texts for p in _PATH.findall(t)]
    paths = [p for p in paths if not _system(p)]
    lifts: list[Lift] = []
    root = _root(paths)
    if root:
        lifts.append(Lift("app_dir", root, _count(root, "path", texts), True))
    envs = Counter(w for w in ENVIRONMENTS for _ in range(_count(w, "word", texts)))
    if envs and envs.most_common(1)[0][1] >= 2:
        word, n = envs.most_common(1)[0]
        lifts.append(Lift("env_name", word, n, True))
    taken = {"app_dir", "env_name"}
    chosen: list[str] = [root] if root else []
    for p in sorted(set(paths), key=lambda p: (len(p), p)):
        if _under(p, chosen) or p.count("/") < 2:
            continue
        n = sum(1 for q in paths if (q == p or q.startswith(p + "/")) and not _under(q, chosen))
        if n >= 2:
            chosen.append(p)
            lifts.append(Lift(_name(p.split("/"), "path", taken), p, n, False))
    hosts = {h.lower() for t in texts for h in _URL_HOST.findall(t)}
    for h in sorted(hosts):
        if h == "localhost" or re.fullmatch(r"[\d.]+", h):
            continue
        n = _count(h, "host", texts)
        if n >= 2:
            lifts.append(Lift(_name(h.split(".")[:-1], "host", taken), h, n, False))
    return lifts


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def _root(paths: list[str]) -> str:
    counts: Counter[str] = Counter()
    for p in paths:
        parts = p.split("/")
        for depth in range(3, len(parts) + 1):
            counts["/".join(parts[:depth])] += 1
    best = [
        (n * (d.count("/")), d.count("/"), d)
        for d, n in counts.items()
        if n >= 3 and not d.startswith("/path/to")
    ]
    return max(best)[2] if best else ""


def _name(parts: list[str], suffix: str, taken: set[str]) -> str:
    words = [re.sub(r"[^a-z0-9]+", "_", w.lower()).strip("_") for w in parts if w]
    words = [w for w in words if w]
    for n in range(1, len(words) + 1):
        name = "_".join([*words[-n:], suffix])
        if not name[0].isdigit() and name not in taken:
            taken.add(name)
            return name
    name = f"{suffix}_{len(taken)}"
    taken.add(name)
    return name


def apply(text: str, lifts: Iterable[Lift], *, shell: bool) -> tuple[str, list[Lift]]:
    """`text` with the lifted values as `{{ name }}` and Jinja's own delimiters escaped; in shell
    text a value inside quotes, a here-document or a comment is `{{ name | raw }}` (it is
    quoted there already, and `runbook validate` refuses a quoted template)."""
    by_value: dict[str, Lift] = {}
    alternatives = []
    for lift in sorted(lifts, key=lambda x: -len(x.value)):
        kind = "path" if lift.value.startswith("/") else "host" if "." in lift.value else "word"
        before, after = _boundary(kind)
        alternatives.append(before + re.escape(lift.value) + after)
        by_value[lift.value] = lift
    pattern = re.compile("|".join([_JINJA_OPEN.pattern, *alternatives]))
    ctx = contexts(text) if shell else []
    used: dict[str, Lift] = {}

    def sub(m: re.Match[str]) -> str:
        raw = shell and ctx[m.start()] != PLAIN
        if m.group() in by_value:
            lift = by_value[m.group()]
            used[lift.name] = lift
            return "{{ " + lift.name + (" | raw" if raw else "") + " }}"
        return "{{ '" + m.group() + "'" + (" | raw" if shell else "") + " }}"

    out = pattern.sub(sub, text)
    return out, list(used.values())

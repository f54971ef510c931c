"""Several `-i` sources -> one Inventory, with Ansible's variable precedence.

A source is a file (our own YAML format, Ansible YAML, INI, JSON), an executable inventory
script (run with `--list`), or a directory of such files. `group_vars/` and `host_vars/` beside
each source are read as Ansible's host_group_vars plugin reads them. Per host, later wins:
the `all` group's vars < other groups' vars (shallow groups first, then by
`ansible_group_priority`, then by name) < group_vars/all < group_vars/<group> < the host's own
vars < host_vars/<host>: the order of Ansible's VARIABLE_PRECEDENCE default.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InvalidInput, Location, Problem
from runner.format.inventory_ansible import Tree, parse_json, read_ini, read_json, read_yaml
from runner.format.inventory_templates import ANSIBLE_TAGS
from runner.format.params import without_runner_secrets
from runner.format.source import load_file, load_text

if TYPE_CHECKING:
    from runner.format.inventory import SSHSettings

# what Ansible skips in an inventory directory (INVENTORY_IGNORE_EXTS)
_IGNORED = (
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
    ".orig",
    ".cfg",
    ".retry",
)
_VARS_EXTS = ("", ".yml", ".yaml", ".json")
NATIVE_KEYS = frozenset({"ssh", "hosts", "groups", "vars"})


class Sources:
    """What was read: the tree, each source's directory, and a digest of every file."""

    def __init__(self) -> None:
        self.tree = Tree()
        self.basedirs: list[Path] = []
        self.ssh: SSHSettings | None = None  # our own format's `ssh:` settings
        self._texts: list[tuple[str, str]] = []

    def record(self, name: str, text: str) -> None:
        self._texts.append((name, hashlib.sha256(text.encode()).hexdigest()))

    def digest(self) -> str:
        """The SHA-256 of a lone file's text (as before several sources existed), else of every
        file's name and digest."""
        if len(self._texts) == 1:
            return self._texts[0][1]
        return hashlib.sha256("".join(f"{n}\0{d}\n" for n, d in self._texts).encode()).hexdigest()


def read(paths: Sequence[str]) -> Sources:
    src = Sources()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(path.iterdir()):
                if f.is_file() and not f.name.startswith(".") and not f.name.endswith(_IGNORED):
                    read_file(f, src)
            src.basedirs.append(path)
        elif path.exists():
            read_file(path, src)
            src.basedirs.append(path.parent)
        else:
            raise InvalidInput([Problem(Location(raw), "no such inventory file or directory")])
    for base in src.basedirs:
        if (base / "group_vars").is_dir() or (base / "host_vars").is_dir():
            src.record(str(base), _vars_listing(base))
    return src


def read_file(path: Path, src: Sources) -> None:
    """Pick the reader by the file's shape: a script runs; our own format has only our keys;
    JSON of scripts lists hosts; anything that is not YAML is INI."""
    name = str(path)
    if os.access(path, os.X_OK) and path.read_bytes()[:2] == b"#!":
        text = _run_script(path, "--list")
        src.record(name, text)
        for host in read_json(name, text, src.tree, script=True) or ():
            # no `_meta`: the host's vars are `SCRIPT --host NAME`, one call a host (as Ansible)
            out = _run_script(path, "--host", host)
            src.record(f"{name} --host {host}", out)
            hv = parse_json(f"{name} --host {host}", out, script=True) if out.strip() else {}
            if not isinstance(hv, dict):
                raise InvalidInput(
                    [Problem(Location(name), f"--host {host}: expected a JSON object of vars")]
                )
            src.tree.hostvars[host].update(hv)
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput([Problem(Location(name), f"cannot read: {exc}")]) from None
    src.record(name, text)
    if path.suffix == ".ini":
        read_ini(name, text, src.tree)
        return
    try:
        doc = load_text(text, name, tags=ANSIBLE_TAGS)  # JSON is YAML too
    except InvalidInput:
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            read_json(name, text, src.tree)
        elif path.suffix in (".yaml", ".yml"):
            raise
        else:
            read_ini(name, text, src.tree)  # not YAML: Ansible's INI then
        return
    data = doc.data
    if not isinstance(data, dict):
        read_ini(name, text, src.tree)
    elif set(data) <= NATIVE_KEYS:
        from runner.format.inventory import native_to_tree

        native_to_tree(doc, src)
    elif "_meta" in data or any(_listed(v) for v in data.values()):
        read_json(name, text, src.tree)
    else:
        read_yaml(doc, src.tree)


def _listed(group: Any) -> bool:
    """A group in the JSON shape of scripts: a list of hosts, or `hosts`/`children` lists."""
    if isinstance(group, dict):
        return isinstance(group.get("hosts"), list) or isinstance(group.get("children"), list)
    return isinstance(group, list)


def _run_script(path: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            [str(path.resolve()), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=without_runner_secrets(os.environ),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidInput([Problem(Location(str(path)), f"inventory script: {exc}")]) from None
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()[-1:] or [""]
        raise InvalidInput(
            [
                Problem(
                    Location(str(path)),
                    f"inventory script ({' '.join(args)}) exited {done.returncode}: {err[0]}",
                )
            ]
        )
    return done.stdout


def _vars_listing(base: Path) -> str:
    """Every vars file under group_vars/ and host_vars/ with its content: the inventory's digest
    changes when any of them does (a saved plan then refuses to run)."""
    parts = []
    for sub in ("group_vars", "host_vars"):
        for f in sorted((base / sub).rglob("*")):
            if f.is_file():
                parts.append(f"{f}\0{hashlib.sha256(f.read_bytes()).hexdigest()}")
    return "\n".join(parts)


def vars_files(base: Path, kind: str, name: str) -> list[Path]:
    """group_vars/NAME(.yml|.yaml|.json) or every file under the directory group_vars/NAME/."""
    root = base / kind
    if not root.is_dir() or name.startswith(os.sep):
        return []
    for ext in _VARS_EXTS:
        p = root / f"{name}{ext}"
        if p.is_dir():
            return _dir_files(p)
        if p.is_file():
            return [p]
    return []


def _dir_files(d: Path) -> list[Path]:
    out: list[Path] = []
    for p in sorted(d.iterdir(), key=lambda p: p.name):
        if p.name.startswith(".") or p.name.endswith("~"):
            continue
        if p.is_dir() and not p.suffix:
            out += _dir_files(p)
        elif p.is_file() and p.suffix in _VARS_EXTS:
            out.append(p)
    return out


def load_vars(paths: list[Path], cache: dict[Path, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in paths:
        if p not in cache and not p.read_text(encoding="utf-8").strip():
            cache[p] = {}  # an empty vars file, as Ansible allows
        if p not in cache:
            doc = load_file(p, tags=ANSIBLE_TAGS)
            if doc.data is not None and not isinstance(doc.data, dict):
                raise InvalidInput([doc.problem((), "a vars file is a mapping of NAME: VALUE")])
            cache[p] = doc.data or {}
        out.update(cache[p])
    return out

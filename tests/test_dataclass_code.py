"""The dataclasses' compiled methods kept between starts (runner/dataclasscode.py): the same code
as dataclasses compiles itself, taken from the cache on the next start, and never from an entry
someone else could have written.

Each check runs a fresh interpreter (the cache works at import time), with the cache under the
test's own directory (XDG_CACHE_HOME).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner import dataclasscode

# Imports the runner's dataclasses (with the cache installed or not), then prints a digest of
# every method dataclasses generated for them, and the cache's counts.
PROBE = """
import dataclasses, hashlib, json, marshal, sys
from runner import dataclasscode
if sys.argv[1] == "cached":
    dataclasscode.install()
import runner.commands.run, runner.cli
from runner.execution import stepevents
from runner.format import model
methods = {}
for mod in (model, stepevents, runner.commands.run):
    for name, cls in vars(mod).items():
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        for m in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
            f = cls.__dict__.get(m)
            if f is not None and hasattr(f, "__code__"):
                code = marshal.dumps(f.__code__)
                methods[f"{name}.{m}"] = hashlib.sha256(code).hexdigest()
dataclasscode.save()
print(json.dumps({"methods": methods, "stats": dataclasscode.stats()}))
"""


def probe(cache_home: Path, mode: str) -> dict[str, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_NO_CACHE"}
    env["XDG_CACHE_HOME"] = str(cache_home)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, dict[str, object]] = json.loads(out.stdout)
    return result


def entry(cache_home: Path) -> Path:
    files = list((cache_home / "runbook" / dataclasscode.AREA).iterdir())
    assert len(files) == 1, files
    return files[0]


def test_the_second_start_takes_the_same_code_from_the_cache(tmp_path: Path) -> None:
    plain = probe(tmp_path, "plain")
    first = probe(tmp_path, "cached")
    second = probe(tmp_path, "cached")
    assert first["stats"]["compiled"] > 200 and first["stats"]["cached"] == 0
    # every text from the cache (some twice: classes with the same fields share their texts)
    assert second["stats"]["compiled"] == 0
    assert second["stats"]["cached"] >= first["stats"]["compiled"]
    # methods of frozen and plain classes, with defaults and factories: byte-for-byte the code
    # dataclasses compiles itself
    assert len(plain["methods"]) > 100
    assert first["methods"] == plain["methods"] == second["methods"]


@pytest.mark.parametrize("spoil", ["writable by others", "another user's", "garbage", "truncated"])
def test_an_entry_that_may_not_be_ours_or_is_damaged_counts_as_empty(
    tmp_path: Path, spoil: str
) -> None:
    probe(tmp_path, "cached")
    path = entry(tmp_path)
    if spoil == "writable by others":
        path.chmod(0o666)
    elif spoil == "another user's":
        os.chown(path, 65534, 65534)  # nobody (the tests run as root)
    elif spoil == "garbage":
        head = path.read_bytes().partition(b"\n")[0]
        path.write_bytes(head + b"\n" + os.urandom(4000))
    else:
        path.write_bytes(path.read_bytes()[:-100])
    again = probe(tmp_path, "cached")
    assert again["stats"]["cached"] == 0 and again["stats"]["compiled"] > 200


def test_a_folder_others_may_write_is_not_read(tmp_path: Path) -> None:
    probe(tmp_path, "cached")
    entry(tmp_path).parent.chmod(0o777)
    assert probe(tmp_path, "cached")["stats"]["cached"] == 0


def test_any_other_exec_is_the_builtin_one() -> None:
    # no globals: the caller's namespaces, as exec itself uses
    here = {"x": 1}
    dataclasscode._exec("y = x + 1", here)
    assert here["y"] == 2
    seen = 41  # noqa: F841  # read by the exec'd text, through this frame
    found: dict[str, int] = {}
    dataclasscode._exec("found['v'] = seen + 1")
    assert found == {"v": 42}
    # code objects go through untouched
    dataclasscode._exec(compile("z = 3", "<t>", "exec"), here)
    assert here["z"] == 3


def test_old_entries_do_not_pile_up(tmp_path: Path) -> None:
    # entries of earlier versions or other Pythons (~350 KB each): only a few are kept
    area = tmp_path / "runbook" / dataclasscode.AREA
    area.mkdir(parents=True)
    for i in range(10):
        old = area / f"{i:064x}"
        old.write_bytes(b"an entry of another version\n")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    probe(tmp_path, "cached")
    left = sorted(p.name for p in area.iterdir())
    assert len(left) <= dataclasscode.MAX_FILES
    assert probe(tmp_path, "cached")["stats"]["compiled"] == 0  # ours is among them

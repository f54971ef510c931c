"""Host selection: the seed's runbooks target the application group, so a production inventory
plans its application servers and never the operator's machine; without an inventory, `local`
is the only host."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_inventory_ansible import ansible_env

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = sorted((REPO / "runbooks").glob("*.yaml"))


def test_seed_runbooks_target_the_application_group() -> None:
    for path in RUNBOOKS:
        assert "\ntargets: app\n" in path.read_text(), path.name


def test_production_inventory_plans_app1_never_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    inv = "inventories/production.example.yaml"
    assert main(["plan", "health-check", "-i", inv]) == 0
    hosts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("host ")]
    assert hosts == ["host app1"]


def test_without_inventory_local_is_the_only_host(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "runbooks" / "t.yaml").write_text(
        "runbook: t\ntargets: [app, web]\nsteps: [{id: a, run: echo hi}]\n"
    )
    assert main(["plan", "t"]) == 0
    hosts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("host ")]
    assert hosts == ["host local"]


# --- `--limit` subscripts, as ansible-core reads them (inventory/manager.py) ------------------

SUBSCRIPT_INVENTORIES = {
    "groups.yaml": """\
all:
  vars: {ansible_connection: local}
  children:
    web:
      hosts:
        web[01:05]:
    db:
      hosts:
        db1:
        db2:
    prod:
      children:
        db:
        web:
      hosts:
        app1:
""",
    # an ungrouped host, groups declared in turns, a group of groups with a host of its own
    "mixed.ini": "x0\n[web]\nw1\n[db]\nd1\n[web]\nw2\n[db]\nd0\n"
    "[grp:children]\ndb\nweb\n[grp]\ng1\n[all:vars]\nansible_connection=local\n",
}

# pattern -> the hosts Ansible picks (in the order of the `all` group), "" for none; "error: ..." when it
# refuses the pattern. A group's hosts are its own, then its children's, in the order written;
# `[N:M]` includes M; one index past either end is an error, a slice past the end is empty.
SUBSCRIPTS = {
    "groups.yaml": {
        "web[0]": "web01",
        "web[4]": "web05",
        "web[01]": "web02",
        "web[-1]": "web05",
        "web[-5]": "web01",
        "web[0:2]": "web01 web02 web03",
        "web[1:]": "web02 web03 web04 web05",
        "web[0:0]": "web01",
        "db[1:1]": "db2",
        "web[1:99]": "web02 web03 web04 web05",
        "web[9:]": "",
        "web[0-2]": "web01 web02 web03",  # Ansible's old spelling of [0:2], still read
        "prod[0:3]": "web01 db1 db2 app1",  # prod's own app1, then db's, then web's
        "prod[-1]": "web05",
        "all[0:1]": "web01 web02",
        "all[-1]": "app1",
        "w*[0]": "web01",
        "web*[1:2]": "web02 web03",
        "web01[0]": "web01",
        "web:!web[-1]": "web01 web02 web03 web04",
        "web:!web[3:]": "web01 web02 web03",
        "web[0],db[-1]": "web01 db2",
        "web[0]:db[1]": "web01 db2",
        "web:&web[1:2]": "web02 web03",
        "web[5]": "error: host pattern 'web[5]': web has 5 hosts, web[0] to web[4] (web[-1] is the last)",
        "web[-6]": "error: host pattern 'web[-6]': web has 5 hosts",
        "web01[1]": "error: host pattern 'web01[1]': web01 has 1 host, web01[0]",
        # a regex is matched from the start of a name (re.match), and takes no subscript
        "~web0[12]": "web01 web02",
        "~db": "db1 db2",
        "~.*b1": "db1",
        "~eb0": "",
    },
    "mixed.ini": {
        "all[0]": "x0",  # the `all` group's order: ungrouped, then each group's own hosts first
        "all[1]": "g1",
        "all[2:3]": "d1 d0",
        "all[-1]": "w2",
        "grp[0:1]": "g1 d1",
        "grp[-1]": "w2",
        "d*[1]": "d0",
        # a glob counts each group's hosts, then the hosts it names, as Ansible does (twice)
        "d*[2]": "d1",
        "*[6]": "x0",
        "*[-1]": "g1",
        "d*[4]": "error: host pattern 'd*[4]': d* has 4 hosts",
    },
}


def _limit_hosts(
    workdir: Path, capsys: pytest.CaptureFixture[str], inventory: str, pattern: str
) -> str:
    (workdir / inventory).write_text(SUBSCRIPT_INVENTORIES[inventory])
    (workdir / "runbooks" / "hello.yaml").write_text(
        "runbook: hello\ntargets: all\nsteps: [{id: s, run: echo hi}]\n"
    )
    code = main(["plan", "hello", "-i", inventory, "--limit", pattern, "--list-hosts"])
    out, err = capsys.readouterr()
    if code == 0:
        return " ".join(out.split()[3:])
    assert code == 2, err
    return "" if "match no host within --limit" in err else f"error: {err.strip()}"


@pytest.mark.parametrize(
    ("inventory", "pattern"),
    [(inv, p) for inv, cases in SUBSCRIPTS.items() for p in cases],
)
def test_limit_subscripts_pick_what_ansible_picks(
    workdir: Path, capsys: pytest.CaptureFixture[str], inventory: str, pattern: str
) -> None:
    got = _limit_hosts(workdir, capsys, inventory, pattern)
    want = SUBSCRIPTS[inventory][pattern]
    if want.startswith("error: "):
        assert got.startswith("error: runbook: "), got
        assert want[len("error: ") :] in got
    else:
        assert got == want


ANSIBLE = shutil.which("ansible", path=str(Path(sys.executable).parent))

# What ansible-core's InventoryManager (the code behind `ansible --limit`) picks for each pattern
_ANSIBLE_LIMIT = """
import json, sys
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
inv = InventoryManager(DataLoader(), sources=[sys.argv[1]])
out = {}
for pattern in json.loads(sys.argv[2]):
    inv.clear_pattern_cache()
    inv.subset(pattern)
    try:
        out[pattern] = " ".join(h.name for h in inv.get_hosts("all"))
    except AnsibleError as exc:
        out[pattern] = "error: " + str(exc).splitlines()[0]
    inv.subset(None)
print(json.dumps(out))
"""


@pytest.mark.parametrize("inventory", list(SUBSCRIPTS))
def test_limit_subscripts_written_out_are_ansibles(tmp_path: Path, inventory: str) -> None:
    """The table above is what ansible-core itself gives (errors: both refuse the pattern)."""
    if ANSIBLE is None:
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    (tmp_path / inventory).write_text(SUBSCRIPT_INVENTORIES[inventory])
    env = ansible_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _ANSIBLE_LIMIT, inventory, json.dumps(list(SUBSCRIPTS[inventory]))],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    theirs = json.loads(done.stdout)
    for pattern, want in SUBSCRIPTS[inventory].items():
        got = theirs[pattern]
        assert got.startswith("error") if want.startswith("error") else got == want, pattern


@pytest.mark.parametrize(
    ("pattern", "want"),
    [
        # Ansible's documentation gives `[:M]` (from the first, M included); ansible-core 2.19
        # reads it as a glob and matches nothing, which in `web:!web[:1]` excludes nothing
        ("web[:2]", "web01 web02 web03"),
        ("web:!web[:1]", "web03 web04 web05"),
        # Ansible gives nothing for [3:1] and web03 for [2:0]; neither is what anyone means
        ("web[3:1]", "error: host pattern 'web[3:1]': the range ends before it starts"),
        ("web[2:0]", "error: host pattern 'web[2:0]': the range ends before it starts"),
        # ansible-core reads these as globs, matching nothing; here they say what is wrong
        ("web[-2:]", "error: host pattern 'web[-2:]': only a single index may be negative"),
        ("web[1:-1]", "error: host pattern 'web[1:-1]': only a single index may be negative"),
        ("web[:]", "error: host pattern 'web[:]': a range needs a start or an end"),
    ],
)
def test_limit_subscripts_ansible_documents_or_reads_as_globs(
    workdir: Path, capsys: pytest.CaptureFixture[str], pattern: str, want: str
) -> None:
    got = _limit_hosts(workdir, capsys, "groups.yaml", pattern)
    if want.startswith("error: "):
        assert want[len("error: ") :] in got, got
    else:
        assert got == want

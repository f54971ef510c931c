"""Ansible inventories as they are: each shape of Ansible's docs (tests/cases/inventories/)
resolves to the hosts, groups and vars that `ansible-inventory --list` gives for the same
files, and to the values written below."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main
from runner.errors import InvalidInput
from runner.format import inventory

CASES = Path(__file__).parent / "cases" / "inventories"
ANSIBLE_INVENTORY = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent))


def ours(*sources: str) -> dict[str, Any]:
    """{host: {"groups": [...], "vars": {...}}} from our loader."""
    inv = inventory.load([str(CASES / s) for s in sources])
    out: dict[str, Any] = {}
    for h in inv.hosts:
        groups = sorted(g for g, members in inv.groups if h.name in members and g != "all")
        out[h.name] = {"groups": groups, "vars": dict(h.vars)}
    return out


def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Ansible run in a test: its files under tmp_path, no colour, an unparsable source an error."""
    return {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_NOCOLOR": "1",
    }


def theirs(tmp_path: Path, *sources: str) -> dict[str, Any]:
    """The same from `ansible-inventory --list`, with its children walked for membership."""
    if ANSIBLE_INVENTORY is None:
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    args = [a for s in sources for a in ("-i", str(CASES / s))]
    env = ansible_env(tmp_path)
    done = subprocess.run(
        [ANSIBLE_INVENTORY, *args, "--list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    data = json.loads(done.stdout)
    hostvars = data.pop("_meta")["hostvars"]
    member: dict[str, set[str]] = {}

    def walk(group: str, parents: tuple[str, ...]) -> None:
        node = data.get(group, {})
        for h in node.get("hosts", []):
            member.setdefault(h, set()).update((*parents, group))
        for child in node.get("children", []):
            walk(child, (*parents, group))

    walk("all", ())
    return {h: {"groups": sorted(member[h] - {"all"}), "vars": hostvars.get(h, {})} for h in member}


@pytest.mark.parametrize(
    "sources",
    [
        ("yaml-all/hosts.yaml",),
        ("yaml-no-all/inventory.yaml",),
        ("ini/hosts",),
        ("vars-dirs/inventory.ini",),
        ("vars-dirs",),
        ("script/inventory.py",),
        ("yaml-no-all/inventory.yaml", "ini/hosts", "vars-dirs/inventory.ini"),
        ("ports/hosts.ini",),
        ("ports/hosts.yaml",),
        ("priority",),
    ],
    ids=[
        "yaml-all",
        "yaml-no-all",
        "ini",
        "vars-dirs",
        "directory",
        "script",
        "several-i",
        "ports-ini",
        "ports-yaml",
        "priority",
    ],
)
def test_resolves_like_ansible_inventory(tmp_path: Path, sources: tuple[str, ...]) -> None:
    assert ours(*sources) == theirs(tmp_path, *sources)


def test_ansible_inventory_list_json_file_reads_like_the_script_printing_it(
    tmp_path: Path,
) -> None:
    assert ours("script/list.json") == theirs(tmp_path, "script/inventory.py")


def test_yaml_with_all_children_to_any_depth_and_vars_at_every_level() -> None:
    got = ours("yaml-all/hosts.yaml")
    assert list(got) == [
        "mail.example.com",
        "foo.example.com",
        "bar.example.com",
        "www01.example.com",
        "www02.example.com",
        "www03.example.com",
        "one.example.com",
        "two.example.com",
    ]
    assert got["one.example.com"]["groups"] == ["atlanta", "datacenter", "dbservers"]
    # atlanta is deeper than dbservers: its vars win
    assert got["one.example.com"]["vars"]["tier"] == "atlanta"
    assert got["www01.example.com"]["groups"] == [
        "atlanta",
        "atlanta_web",
        "datacenter",
        "webservers",
    ]
    assert got["bar.example.com"]["vars"] == {
        "ntp_server": "ntp.example.com",
        "app_dir": "/srv/app",
        "tier": "web",
        "http_port": 8080,
    }
    assert got["two.example.com"]["vars"]["ansible_port"] == 2222


def test_a_group_of_groups_without_all_holds_its_childrens_hosts() -> None:
    inv = inventory.load(str(CASES / "yaml-no-all/inventory.yaml"))
    assert [h.name for h in inv.resolve(("production",))] == ["web1", "web2", "db1"]
    web2 = inv.host("web2")
    assert web2 is not None
    assert (web2.address, web2.port) == ("10.0.0.2", 2200)
    v = dict(web2.vars)
    # webservers and eu_web are deeper than production and eu: theirs win; eu_web over eu
    assert (v["role"], v["max_clients"], v["region"], v["env"]) == (
        "web",
        200,
        "eu-west",
        "production",
    )
    assert dict(inv.host("db1").vars)["role"] == "primary"  # type: ignore[union-attr]


def test_ini_ranges_children_declared_later_and_literal_values() -> None:
    got = ours("ini/hosts")
    assert [h for h in got if h.startswith("web")] == [f"web0{i}.example.com" for i in range(1, 5)]
    assert [h for h in got if h.startswith("db-")] == [
        "db-a.example.com",
        "db-b.example.com",
        "db-c.example.com",
        "db-z.example.com",
    ]
    foo = got["foo.example.com"]["vars"]
    assert (foo["http_port"], foo["enabled"], foo["ratio"]) == (8080, True, 0.5)
    web3 = got["web03.example.com"]
    assert web3["groups"] == ["raleigh", "southeast", "usa", "webservers"]
    assert web3["vars"]["some_server"] == "foo.southeast.example.com"  # child over parent
    assert web3["vars"]["quoted"] == "a string with spaces"
    assert got["mail.example.com"]["groups"] == ["ungrouped"]
    assert got["db-z.example.com"]["vars"] == {"ansible_port": 2201}


def test_group_vars_and_host_vars_directories_beside_the_inventory() -> None:
    got = ours("vars-dirs/inventory.ini")
    assert got["web01"]["vars"]["layer"] == "host_vars-web01"
    assert got["web02"]["vars"]["layer"] == "group_vars-web"
    assert got["db02"]["vars"]["layer"] == "group_vars-db-main"
    assert got["db02"]["vars"]["db_port"] == 6432  # files of a group_vars/ directory in order
    assert got["db01"]["vars"]["from_inventory"] == "host_vars-dir"
    assert got["db02"]["vars"]["from_inventory"] == "host"
    assert got["web02"]["vars"]["from_inventory"] == "prod"
    # what every host gets (checklist checks, run on this machine, see these)
    assert dict(inventory.load(str(CASES / "vars-dirs")).vars) == {
        "layer": "group_vars-all",
        "ntp": "ntp.example.com",
        "backup_password": "s3cret-from-group-vars",
    }


@pytest.mark.parametrize("source", ["ports/hosts.ini", "ports/hosts.yaml"])
def test_a_port_after_a_host_range_is_each_hosts_ansible_port(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`web[01:02]:2222` is web01 and web02 on port 2222 (not hosts named `web01:2222`); an
    `ansible_port` written on the line wins, and a host seen before keeps its first port."""
    assert main(["inventory", "-i", str(CASES / source), "--list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["web"]["hosts"] == [
        "web01",
        "web02",
        "web03.example.com",
        "web04.example.com",
        "10.0.0.1",
        "10.0.0.2",
    ]
    ports = {h: v.get("ansible_port") for h, v in listed["_meta"]["hostvars"].items()}
    assert ports == {
        "app1": 2201,
        "web01": 2222,
        "web02": 2222,
        "web03.example.com": 2300,
        "web04.example.com": 2300,
        "10.0.0.1": 2224,
        "10.0.0.2": 2224,
        "db-a": 2225,
        "db-b": 2225,
        "2001:db8::1": 2226,
        "2001:db8::2": None,
    }
    assert main(["inventory", "-i", str(CASES / source), "--graph", "--limit", "web01"]) == 0
    graph = capsys.readouterr().out.replace(" ", "").splitlines()
    assert graph == ["@all:", "|--@db:", "||--web01", "|--@web:", "||--web01"]
    web02 = inventory.load(str(CASES / source)).host("web02")
    assert web02 is not None
    assert (web02.address, web02.port) == ("web02", 2222)  # what ssh is given


def test_ansible_group_priority_orders_groups_and_is_no_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As in Ansible: set in an inventory source it ranks a group among those of its depth and
    is not a variable; in group_vars/ it is only a variable (Ansible reads it from neither)."""
    assert main(["inventory", "-i", str(CASES / "priority"), "--list"]) == 0
    assert json.loads(capsys.readouterr().out)["_meta"]["hostvars"] == {
        "h1": {"x": "aaa"},  # aaa (5) over zzz (1)
        "h2": {"x": "deep"},
        "h3": {"x": "mid", "y": "late-from-group_vars", "ansible_group_priority": 50},
        "h4": {"x": "one"},  # one (10) over two (1)
    }


def test_later_inventory_sources_win(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("web:\n  hosts:\n    w1: {colour: red, size: 1}\n")
    (tmp_path / "b.ini").write_text("[web]\nw1 colour=blue\nw2\n")
    inv = inventory.load([str(tmp_path / "a.yaml"), str(tmp_path / "b.ini")])
    assert [h.name for h in inv.hosts] == ["w1", "w2"]
    assert dict(inv.hosts[0].vars) == {"colour": "blue", "size": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "web:\n  hosts:\n    w1:\n  hsots:\n    w2:\n",
            ":4:3: web.hsots: unknown key 'hsots' in group 'web' (did you mean 'hosts'?)",
        ),
        ("[web:children]\nmissing\n[web]\nw1\n", ":2:1: group 'missing' is never declared"),
        ("[web]\nw1 colour\n", ":2:1: expected key=value after the host name, got 'colour'"),
        ("a:\n  children:\n    b:\n      children:\n        a:\n", "group cycle: a -> b -> a"),
    ],
    ids=["yaml-key", "ini-undeclared-child", "ini-bad-var", "cycle"],
)
def test_bad_ansible_inventories_name_the_place(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "inv"
    f.write_text(text)
    with pytest.raises(InvalidInput) as exc:
        inventory.load(str(f))
    assert message in str(exc.value)

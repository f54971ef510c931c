"""Jinja in Ansible inventory vars is rendered as Ansible renders it, when a runbook uses the
var (inventory_templates.py); `!unsafe` never is, `!vault` is kept and refused only when used;
inventory scripts without `_meta` are asked `--host NAME`; connections we do not speak are
refused. Values are compared with what `ansible` itself gives for the same files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_inventory_ansible import ansible_env

from runner.cli import main
from runner.format import inventory

CASES = Path(__file__).parent / "cases" / "inventories"
TEMPLATES = CASES / "templates"
BIN = Path(sys.executable).parent
ANSIBLE = shutil.which("ansible", path=str(BIN))
ANSIBLE_INVENTORY = shutil.which("ansible-inventory", path=str(BIN))
VAULT = {"__ansible_vault"}


def ansible_values(tmp_path: Path, inv: Path, host: str, names: list[str]) -> dict[str, Any]:
    """What Ansible renders each var to (`ansible HOST -m debug`, which runs nothing there)."""
    if ANSIBLE is None:
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    expr = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    done = subprocess.run(
        [ANSIBLE, host, "-i", str(inv), "-m", "debug", "-a", f"msg={expr}"],
        capture_output=True,
        text=True,
        env=ansible_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    msg = json.loads(done.stdout.split("=>", 1)[1])["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg  # type: ignore[no-any-return]


NAMES = ["log_dir", "app_port", "literal", "braces", "evil", "short", "paths"]
RUNBOOK = """\
runbook: show
targets: web
host_vars: {log_dir: d, app_port: p, literal: l, braces: b, evil: e, short: s, paths: ps}
steps:
  - id: write
    run: |
      mkdir -p {{ log_dir }}
      printf '%s\\n' {{ log_dir }} {{ app_port }} {{ literal }} {{ braces }} {{ evil }} \\
        {{ short }} {{ paths[0] }} {{ paths[1] }} > out
"""


def test_inventory_templates_render_as_ansible_renders_them(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = workdir / "inv"
    shutil.copytree(TEMPLATES, inv)
    monkeypatch.setenv("HOME", str(workdir))
    (workdir / "runbooks" / "show.yaml").write_text(RUNBOOK)
    (inv / "hosts.yml").write_text(
        (inv / "hosts.yml").read_text().replace('"/srv/', f'"{workdir}/srv/')
    )
    theirs = ansible_values(tmp_path, inv, "web1.example.com", NAMES)
    assert main(["run", "show", "-i", str(inv)]) == 0
    lines = (workdir / "out").read_text().splitlines()
    ours = lines[:6]
    assert ours == [
        theirs["log_dir"],
        str(theirs["app_port"]),
        theirs["literal"],
        theirs["braces"],
        theirs["evil"],
        theirs["short"],
    ]
    assert ours == [
        f"{workdir}/srv/prod/logs",
        "8001",
        "{{ never_rendered }}",  # !unsafe
        "{{ x }}",  # what came out of rendering is a value, never rendered again
        "$(touch prod)",  # ... and quoted in the command: nothing ran
        "web1-web",
    ]
    assert lines[6:] == theirs["paths"] == [f"{workdir}/srv/prod/a", f"{workdir}/srv/prod/logs/b"]
    assert (workdir / "srv" / "prod" / "logs").is_dir()
    assert not (workdir / "{{ app_dir }}").exists()
    assert not (workdir / "prod").exists()


def test_templated_connection_vars_are_rendered(tmp_path: Path) -> None:
    h = inventory.load(str(TEMPLATES)).host("web1.example.com")
    assert h is not None
    assert (h.address, h.port, h.connection) == ("web1.corp", 22, "local")
    theirs = ansible_values(tmp_path, TEMPLATES, h.name, ["ansible_host", "ansible_port"])
    assert theirs == {"ansible_host": "web1.corp", "ansible_port": 22}


def test_inventory_list_shows_templates_as_written_like_ansible_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if ANSIBLE_INVENTORY is None:
        pytest.skip("ansible-core is not installed (pip install -e '.[test]')")
    assert main(["inventory", "-i", str(TEMPLATES), "--list"]) == 0
    ours = json.loads(capsys.readouterr().out)
    done = subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(TEMPLATES), "--list"],
        capture_output=True,
        text=True,
        env=ansible_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    theirs = json.loads(done.stdout)
    theirs["_meta"].pop("profile", None)
    hv = theirs["_meta"]["hostvars"]["web1.example.com"]
    assert set(hv["db_password"]) == VAULT
    hv["db_password"] = "***"  # the vault value is masked (docs/format.md)
    for listing in (ours, theirs):  # (ansible-inventory lists `ungrouped` first)
        listing["all"]["children"].sort()
    assert ours == theirs


def _write(workdir: Path, group_vars: str, host_vars: str, runbook_vars: str) -> Path:
    inv = workdir / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  vars: {ansible_connection: local}\n  hosts:\n    h1:\n")
    (inv / "group_vars" / "all.yml").write_text(group_vars)
    (workdir / "runbooks" / "t.yaml").write_text(
        f"runbook: t\ntargets: all\nhost_vars: {host_vars}\n"
        f"steps:\n  - id: s\n    run: touch ran {runbook_vars}\n"
    )
    return inv


@pytest.mark.parametrize(
    ("group_vars", "message"),
    [
        (
            'a: "{{ b }}/x"\nb: "{{ nope }}"\n',
            "host_vars.a: host 'h1': inventory var 'a' (through b): undefined name 'nope'",
        ),
        (
            'a: "{{ b }}/x"\nb: "{{ a }}"\n',
            "host 'h1': inventory var 'a' (through b): template cycle: a -> b -> a",
        ),
        (
            'a: "{{ b | nosuchfilter }}"\nb: 1\n',
            "host 'h1': inventory var 'a': No filter named 'nosuchfilter'",
        ),
    ],
    ids=["undefined", "cycle", "bad-filter"],
)
def test_an_inventory_template_that_fails_stops_the_run_before_anything_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str], group_vars: str, message: str
) -> None:
    inv = _write(workdir, group_vars, "{a: x}", "{{ a }}")
    assert main(["run", "t", "-i", str(inv)]) == 2
    assert message in capsys.readouterr().err
    assert not (workdir / "ran").exists()


VAULTED = """\
app_dir: /srv/app
db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          62313365396662343061393464336163383764373764613633653634306231386433626436623361
          6134333665353966363534333632666535333761666131620a663537646436643839616531643561
"""


def test_a_vault_value_is_kept_masked_and_refused_only_when_used(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = _write(workdir, VAULTED, "{app_dir: a}", "{{ app_dir }}")
    assert main(["inventory", "-i", str(inv), "--list"]) == 0
    hv = json.loads(capsys.readouterr().out)["_meta"]["hostvars"]["h1"]
    assert hv["db_password"] == "***" and hv["app_dir"] == "/srv/app"
    assert main(["run", "t", "-i", str(inv)]) == 0  # the runbook does not use it
    assert (workdir / "ran").exists()
    (workdir / "ran").unlink()
    (workdir / "runbooks" / "t.yaml").write_text(
        "runbook: t\ntargets: all\nhost_vars: {db_password: p}\n"
        "steps:\n  - id: s\n    run: touch ran {{ db_password }}\n"
    )
    capsys.readouterr()
    assert main(["run", "t", "-i", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "host 'h1': inventory var 'db_password': 'db_password' is encrypted with Ansible" in err
    assert "Ansible Vault decryption is not supported" in err
    assert "$ANSIBLE_VAULT" not in err
    assert not (workdir / "ran").exists()


@pytest.mark.parametrize("connection", ["docker", "winrm", "community.docker.docker"])
def test_a_connection_we_do_not_speak_is_refused_before_anything_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str], connection: str
) -> None:
    (workdir / "inv.yml").write_text(
        "all:\n  hosts:\n"
        f"    c1: {{ansible_connection: {connection}, ansible_host: 127.0.0.1}}\n"
        "    l1: {ansible_connection: ansible.builtin.local}\n"
    )
    (workdir / "runbooks" / "t.yaml").write_text(
        "runbook: t\ntargets: all\nsteps:\n  - id: s\n    run: touch ran\n"
    )
    assert main(["run", "t", "-i", "inv.yml"]) == 2
    err = capsys.readouterr().err
    assert f"host 'c1': ansible_connection '{connection}' is not supported" in err
    assert not (workdir / "ran").exists()
    # the other hosts of the inventory stay usable, and it can still be listed
    assert main(["run", "t", "-i", "inv.yml", "--limit", "l1"]) == 0
    assert (workdir / "ran").exists()
    assert main(["inventory", "-i", "inv.yml", "--list"]) == 0


@pytest.mark.parametrize("connection", ["ssh", "smart", "paramiko", "ansible.builtin.ssh"])
def test_ssh_connections_by_any_of_ansibles_names_are_ssh(tmp_path: Path, connection: str) -> None:
    (tmp_path / "inv.yml").write_text(
        f"all:\n  hosts:\n    s1: {{ansible_connection: {connection}}}\n"
    )
    h = inventory.load(str(tmp_path / "inv.yml")).host("s1")
    assert h is not None and h.connection == "ssh" and h.problem is None


SCRIPT = """\
#!{python}
import json, sys
with open({calls!r}, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "--list":
    print(json.dumps({{"web": {{"hosts": ["w1", "w2"]}}, "db": ["d1"]}}))
else:
    print(json.dumps({{"ansible_connection": "local", "app_dir": "/srv/" + sys.argv[2],
                      "tag": "{{{{ app_dir }}}}", "note": {{"__ansible_unsafe": "{{{{ x }}}}"}}}}))
"""


def test_a_script_without_meta_is_asked_each_hosts_vars_like_ansible(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = workdir / "inv.py"
    calls = workdir / "calls"
    script.write_text(SCRIPT.format(python=sys.executable, calls=str(calls)))
    script.chmod(0o755)
    assert main(["inventory", "-i", str(script), "--host", "w2"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert calls.read_text().splitlines() == ["--list", "--host w1", "--host w2", "--host d1"]
    if ANSIBLE_INVENTORY is not None:
        done = subprocess.run(
            [ANSIBLE_INVENTORY, "-i", str(script), "--host", "w2"],
            capture_output=True,
            text=True,
            env=ansible_env(tmp_path),
            cwd=tmp_path,
            timeout=120,
            check=True,
        )
        assert ours == json.loads(done.stdout)
    assert ours["app_dir"] == "/srv/w2"
    h = inventory.load(str(script)).host("d1")
    assert h is not None and h.connection == "local"


def test_a_template_from_an_inventory_script_is_refused_when_used(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script's output carries cloud tags (whoever may tag an instance writes them): one that
    holds `{{ db_password }}` must not read another var into a command (SECURITY.md)."""
    script = workdir / "inv.py"
    script.write_text(SCRIPT.format(python=sys.executable, calls=str(workdir / "calls")))
    script.chmod(0o755)
    rb = "runbook: t\ntargets: web\nhost_vars: {{{v}: x}}\nsteps:\n  - id: s\n    run: echo {{{{ {v} }}}} > out\n"
    (workdir / "runbooks" / "t.yaml").write_text(rb.format(v="note"))
    assert main(["run", "t", "-i", str(script)]) == 0  # `__ansible_unsafe`: the text as it is
    assert (workdir / "out").read_text() == "{{ x }}\n"
    (workdir / "out").unlink()
    (workdir / "runbooks" / "t.yaml").write_text(rb.format(v="tag"))
    capsys.readouterr()
    assert main(["run", "t", "-i", str(script)]) == 2
    err = capsys.readouterr().err
    assert "host 'w1': inventory var 'tag': 'tag' comes from an inventory script" in err
    assert not (workdir / "out").exists()


def test_a_call_decided_at_run_time_whose_runbook_uses_a_vault_value_fails_its_step(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: the call waits for a capture, so only the run expands it; the inventory error was
    no RenderError and ended the run as an internal error (exit 3), nothing rolled back."""
    inv = _write(workdir, VAULTED, "{app_dir: a}", "{{ app_dir }}")
    (workdir / "runbooks" / "s.yaml").write_text(
        "runbook: s\ntargets: all\nhost_vars: {db_password: p}\n"
        "steps:\n  - id: s\n    run: echo {{ db_password }}\n"
    )
    (workdir / "runbooks" / "t.yaml").write_text(
        "runbook: t\ntargets: all\nsteps:\n"
        "  - id: first\n    run: touch first\n    rollback: [{run: rm first}]\n"
        "  - id: ask\n    run: echo yes\n    capture: answer\n"
        "  - id: go\n    when: \"answer == 'yes'\"\n    call: s\n"
    )
    assert main(["run", "t", "-i", str(inv), "--yes"]) == 1
    err = capsys.readouterr()
    assert "Ansible Vault decryption is not supported" in err.out + err.err
    assert not (workdir / "first").exists()  # rolled back


def test_an_inventory_template_with_whitespace_control_is_one_expression(tmp_path: Path) -> None:
    """Was: `{{- port + 1 -}}` was taken whole, dashes included: "unexpected end of template"."""
    (tmp_path / "inv.yml").write_text(
        "all:\n  vars: {base: 8000}\n  hosts:\n    h1: {app_port: '{{- base + 1 -}}'}\n"
    )
    inv = inventory.load(str(tmp_path / "inv.yml"))
    assert inv.host_vars(inv.hosts[0]).get("app_port") == 8001

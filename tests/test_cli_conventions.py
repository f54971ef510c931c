"""The conventions operators bring from Ansible, Terraform, kubectl and git, one test each,
through `main([...])` (and real bash, zsh and fish for completion)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_runbook

from runner import cli
from runner.cli import main

PARAMS = """\
runbook: params
params:
  count: {type: integer, default: 1}
  env: {type: string, default: dev}
  tag: {type: string, default: none}
steps:
  - id: first
    run: echo {{ count }} {{ env }} {{ tag }}
  - id: second
    run: "true"
"""

INVENTORY = """\
# Ansible's shape, without `all:`; every host runs commands here (ansible_connection=local)
all:
  vars: {ansible_connection: local, db_password: hunter2}
prod:
  children:
    web:
      hosts:
        w1: {site: eu}
        w2: {site: us}
    db:
      hosts:
        d1: {site: eu}
eu:
  hosts:
    w1:
    d1:
empty:
  children:
    nothing:
"""


def write_checklist(workdir: Path) -> None:
    (workdir / "checklists").mkdir()
    (workdir / "checklists" / "daily.yaml").write_text(
        "checklist: daily\ntitle: Daily\nperiod: daily\nitems: [{id: a, title: A}]\n"
    )


def plan_params(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["plan", "params", "--format", "json", *args]) == 0
    params: dict[str, object] = json.loads(capsys.readouterr().out)["params"]
    return params


def test_global_options_after_the_command(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    write_runbook(workdir, "params", PARAMS)
    assert main(["list", "--json", "--state-dir", str(workdir / "elsewhere")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "params"


def test_extra_vars_key_value_file_and_json(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "params", PARAMS)
    (workdir / "vars.yaml").write_text("env: staging\ncount: 5\n")
    got = plan_params(capsys, "-e", "count=2 env=prod", "-e", '{"tag": "v1"}')
    assert got == {"count": 2, "env": "prod", "tag": "v1"}
    assert plan_params(capsys, "-e", "@vars.yaml", "-p", "count=3") == {
        "count": 5,  # -e wins over -p, as in Ansible
        "env": "staging",
        "tag": "none",
    }
    assert main(["plan", "params", "-e", "cuont=2"]) == 2
    assert "unknown param 'cuont' (did you mean 'count'?)" in capsys.readouterr().err


def test_bare_runbook_prints_an_overview(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "runbook plan RUNBOOK -i INVENTORY" in out
    assert "runbook COMMAND --help" in out


def test_did_you_mean_for_runbooks_checklists_and_steps(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir, "health-check", PARAMS.replace("runbook: params", "runbook: health-check")
    )
    write_checklist(workdir)
    assert main(["plan", "helth-check"]) == 2
    assert (
        "no runbook named 'helth-check' (did you mean 'health-check'?)" in capsys.readouterr().err
    )
    assert main(["checklist", "status", "dialy"]) == 2
    assert "no checklist named 'dialy' (did you mean 'daily'?)" in capsys.readouterr().err
    assert main(["run", "health-check", "--from", "secnod", "--yes"]) == 2
    assert "has no step 'secnod' (did you mean 'second'?)" in capsys.readouterr().err


def _every_parser(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [p]
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                out += _every_parser(sub)
    return out


def test_every_option_and_positional_is_described() -> None:
    words = [w for c in cli.COMMANDS for w in c.words]
    undescribed = []
    for route in (words, ["plan", "approve"], ["plan", "show"]):
        for p in _every_parser(cli._parser(route)):
            for a in p._actions:
                if isinstance(a, argparse._SubParsersAction | argparse._HelpAction):
                    continue
                if not a.help:
                    undescribed.append(f"{p.prog} {a.option_strings or a.dest}")
    assert undescribed == []


def test_plan_out_prints_the_plan_and_plan_show_renders_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "params", PARAMS)
    assert main(["plan", "params", "-o", "plan.json"]) == 0
    out, err = capsys.readouterr()
    assert "echo 1 dev none" in out
    assert "plan saved to plan.json" in err
    assert main(["plan", "show", "plan.json"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(out.rstrip("\n"))  # the same text as `plan` printed
    assert main(["plan", "show", "plan.json", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Plan: params")
    assert main(["plan", "show", "plan.json", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["runbook"] == "params"


def test_plan_approve_has_its_own_help_and_a_runbook_may_be_called_approve(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", "approve", "--help"])
    assert exc.value.code == 0
    helptext = capsys.readouterr().out
    assert "usage: runbook plan approve [-h]" in helptext
    assert "--by BY" in helptext and "--check" not in helptext
    write_runbook(workdir, "approve", PARAMS.replace("runbook: params", "runbook: approve"))
    assert main(["plan", "--", "approve"]) == 0
    assert "plan: approve" in capsys.readouterr().out
    assert main(["plan", "runbooks/approve.yaml"]) == 0


def test_missing_host_var_without_inventory_says_to_pass_one(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "needs",
        "runbook: needs\nhost_vars: {app_dir: root}\nsteps:\n  - id: a\n    run: ls {{ app_dir }}\n",
    )
    assert main(["run", "needs", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "no variable 'app_dir'" in err
    assert "pass it with -i INVENTORY" in err


def test_bad_since_is_an_error_naming_the_accepted_forms(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "list", "--since", "last tuesday"]) == 2
    assert "accepted: 2026-11-24, 2026-11-24T18:00" in capsys.readouterr().err
    write_runbook(workdir, "params", PARAMS)
    assert main(["run", "params", "--yes", "--quiet"]) == 0
    capsys.readouterr()
    for since in ("yesterday", "today", "1h", "2020-01-01"):
        assert main(["--json", "audit", "list", "--since", since]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 1, since
    assert main(["--json", "audit", "list", "--until", "yesterday"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_runbook_path_lists_each_file_once(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = workdir / "ops" / "runbooks"
    flat.mkdir(parents=True)
    (flat / "one.yaml").write_text("runbook: one\ntitle: One\nsteps: [{id: a, run: 'true'}]\n")
    (flat / "daily.yaml").write_text("checklist: daily\ntitle: Daily\nitems: [{id: a, title: A}]\n")
    monkeypatch.setenv("RUNBOOK_PATH", str(flat))
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["kind"]) for r in rows] == [("one", "runbook"), ("daily", "checklist")]


def test_list_is_a_table_of_id_kind_title_targets(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir, "deploy", "runbook: deploy\ntitle: Deploy it\ntargets: [web, db]\nsteps: []\n"
    )
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "TITLE", "TARGETS"]
    assert lines[1].split() == ["deploy", "runbook", "Deploy", "it", "web,", "db"]


def _limited(workdir: Path) -> None:
    (workdir / "hosts.yaml").write_text(INVENTORY)
    write_runbook(
        workdir,
        "touch",
        "runbook: touch\ntargets: [prod]\nsteps: [{id: t, run: 'touch {{ host }}.done'}]\n",
    )


def test_limit_with_ansible_patterns_and_list_hosts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _limited(workdir)
    cases = {
        "w1": ["w1"],
        "w*": ["w1", "w2"],
        "prod:&eu": ["w1", "d1"],
        "prod:!w2": ["w1", "d1"],
        "d1,w2": ["w2", "d1"],
        "web[0]": ["w1"],
        "~w\\d": ["w1", "w2"],
        "all:!d1": ["w1", "w2"],
    }
    for pattern, hosts in cases.items():
        for cmd in ("plan", "run"):
            args = [cmd, "touch", "-i", "hosts.yaml", "--limit", pattern, "--list-hosts"]
            assert main(args) == 0, pattern
            assert capsys.readouterr().out.split()[3:] == hosts, (cmd, pattern)
    assert not list(workdir.glob("*.done"))  # --list-hosts touches nothing
    write_runbook(workdir, "here", "runbook: here\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["plan", "here", "--limit", "all", "--list-hosts"]) == 0  # no -i: local only
    assert capsys.readouterr().out.split()[3:] == ["local"]
    assert main(["run", "touch", "-i", "hosts.yaml", "--limit", "prod:!eu", "--yes"]) == 0
    assert sorted(p.name for p in workdir.glob("*.done")) == ["w2.done"]


def test_targets_matching_no_host_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _limited(workdir)
    write_runbook(
        workdir, "nobody", "runbook: nobody\ntargets: [empty]\nsteps: [{id: t, run: 'true'}]\n"
    )
    assert main(["run", "nobody", "-i", "hosts.yaml", "--yes"]) == 2
    assert "the targets empty match no host" in capsys.readouterr().err
    assert main(["run", "touch", "-i", "hosts.yaml", "--limit", "eu:!prod", "--yes"]) == 2
    assert "match no host within --limit 'eu:!prod'" in capsys.readouterr().err
    assert main(["plan", "touch", "-i", "hosts.yaml", "--limit", "wbe"]) == 2
    assert "no host or group named 'wbe' (did you mean 'web'?)" in capsys.readouterr().err
    assert main(["plan", "touch", "-i", "hosts.yaml", "--limit", "~w[", "--list-hosts"]) == 2
    assert "cannot read the host pattern '~w['" in capsys.readouterr().err
    assert main(["plan", "touch", "-i", "hosts.yaml", "--limit", "~w(", "--list-hosts"]) == 2
    assert "host pattern '~w(': bad regular expression" in capsys.readouterr().err
    assert not list(workdir.glob("*.done"))


def test_inventory_graph_list_and_secrets_masked(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _limited(workdir)
    assert main(["inventory", "-i", "hosts.yaml", "--graph", "--limit", "eu"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "@all:",
        "  |--@eu:",
        "  |  |--d1",
        "  |  |--w1",
        "  |--@prod:",
        "  |  |--@db:",
        "  |  |  |--d1",
        "  |  |--@web:",
        "  |  |  |--w1",
    ]
    assert main(["inventory", "-i", "hosts.yaml", "--list"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    data = json.loads(out)
    assert data["_meta"]["hostvars"]["w2"] == {
        "ansible_connection": "local",
        "db_password": "***",
        "site": "us",
    }
    assert data["prod"] == {"children": ["web", "db"]}
    assert main(["inventory", "-i", "hosts.yaml", "--host", "d1"]) == 0
    assert json.loads(capsys.readouterr().out)["db_password"] == "***"
    assert main(["inventory", "-i", "hosts.yaml", "--host", "d2"]) == 2
    assert "no host named 'd2' (did you mean 'w2' or 'd1'?)" in capsys.readouterr().err


def test_completion_scripts_and_candidates(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for shell in ("bash", "zsh", "fish"):
        assert main(["completion", shell]) == 0
        assert "runbook __complete" in capsys.readouterr().out
    write_runbook(workdir, "params", PARAMS)
    write_checklist(workdir)
    assert main(["run", "params", "--yes", "--quiet"]) == 0
    capsys.readouterr()
    run_id = next((workdir / "state" / "runs").glob("*.jsonl")).stem

    def complete(*words: str) -> list[str]:
        assert main(["__complete", "--", *words]) == 0
        return capsys.readouterr().out.split()

    assert {"plan", "run", "inventory", "completion"} <= set(complete(""))
    assert complete("pl") == ["plan"]
    assert complete("run", "") == ["params"]
    assert complete("plan", "") == ["approve", "show", "params"]
    assert complete("checklist", "status", "") == ["daily"]
    assert complete("resume", "") == [run_id]
    assert complete("audit", "show", run_id[:6]) == [run_id]
    assert "--limit" in complete("run", "params", "--li")


def _completed(workdir: Path, shell: list[str], probe: str) -> list[str]:
    """The lines `probe` prints in a real shell, with a `runbook` on PATH that runs this
    checkout (as the completion scripts call it) and one runbook to complete, `params`."""
    write_runbook(workdir, "params", PARAMS)
    bindir = workdir / "bin"
    bindir.mkdir()
    (bindir / "runbook").write_text(f'#!/bin/sh\nexec {sys.executable} -m runner "$@"\n')
    (bindir / "runbook").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    done = subprocess.run([*shell, probe], capture_output=True, text=True, check=True, env=env)
    return done.stdout.splitlines()


def _script(shell: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "runner", "completion", shell],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_script_completes_in_a_real_bash(workdir: Path) -> None:
    probe = _script("bash") + "".join(
        f'\nCOMP_WORDS=({words}); COMP_CWORD={n}; _runbook; echo "${{COMPREPLY[@]}}"'
        for words, n in (("runbook plan pa", 2), ("runbook run params --li", 3))
    )
    assert _completed(workdir, ["bash", "-c"], probe) == ["params", "--limit --list-hosts"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh (make test installs it)")
def test_zsh_completion_script_completes_in_a_real_zsh(workdir: Path) -> None:
    """The script as `source <(runbook completion zsh)` loads it; compsys's compdef and compadd
    stand in for an interactive shell's (compadd prints what it was given)."""
    probe = "compdef() { :; }\ncompadd() { [[ $1 == -a ]] && print -r -- ${(P)2} }\n"
    probe += _script("zsh") + "".join(
        f"\nwords=({words}); CURRENT={n}; _runbook"
        for words, n in (("runbook plan pa", 3), ("runbook run params --li", 4))
    )
    assert _completed(workdir, ["zsh", "-fc"], probe) == ["params", "--limit --list-hosts"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish (make test installs it)")
def test_fish_completion_script_completes_in_a_real_fish(workdir: Path) -> None:
    probe = "runbook completion fish | source\n" + "".join(
        f'complete --do-complete "{line}"; echo ---\n'
        for line in ("runbook plan pa", "runbook run params --li")
    )
    expected = ["params", "---", "--limit", "--list-hosts", "---"]
    assert _completed(workdir, ["fish", "-c"], probe) == expected


def test_resume_keeps_the_limit_and_every_inventory_source(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _limited(workdir)
    (workdir / "more.ini").write_text("[web]\nw3 ansible_connection=local\n")
    write_runbook(
        workdir,
        "flaky",
        "runbook: flaky\ntargets: [web]\nsteps:\n  - id: a\n    run: touch {{ host }}.a\n"
        "  - id: b\n    run: test ! -e broken && touch {{ host }}.b\n",
    )
    (workdir / "broken").touch()
    args = ["-i", "hosts.yaml", "-i", "more.ini", "--limit", "web:!w1", "--yes", "--quiet"]
    assert main(["run", "flaky", *args, "--no-rollback"]) == 1
    (workdir / "broken").unlink()
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    assert main(["resume", log.stem, "--quiet"]) == 0
    assert sorted(p.name for p in workdir.glob("*.b")) == ["w2.b", "w3.b"]

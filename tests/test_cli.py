"""The command line: listing, schemas, params from every source, and exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, write_runbook

from runner.cli import main

TYPED = """
runbook: typed
params:
  count: {type: integer, default: 1}
  env: {type: string, choices: [staging, production], default: staging}
  dry: {type: boolean, default: false}
  tag: {type: string, pattern: "v[0-9]+", default: v1}
steps:
  - id: s
    run: echo {{ count }} {{ env }} {{ dry }} {{ tag }} > out
"""


def test_list_finds_runbooks(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["--json", "list"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["kind"], r["file"]) for r in rows] == [
        ("one", "runbook", "runbooks/one.yaml")
    ]


@pytest.mark.parametrize("kind", ["runbook", "checklist", "inventory"])
def test_schema_prints_the_file_in_schemas(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", kind]) == 0
    assert capsys.readouterr().out == (REPO / "schemas" / f"{kind}.schema.json").read_text()


def test_params_from_file_env_and_flags(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_runbook(workdir, "typed", TYPED)
    (workdir / "p.yaml").write_text("count: 3\nenv: production\n")
    monkeypatch.setenv("RUNBOOK_PARAM_TAG", "v7")
    assert main(["run", "typed", "--params", "p.yaml", "-p", "dry=yes"]) == 0
    assert (workdir / "out").read_text().split() == ["3", "production", "true", "v7"]


AS_WRITTEN = """
runbook: perm
params:
  mode: {type: string, default: "0640"}
  version: {type: string, default: "1.0"}
  answer: {type: string, default: "no"}
  at: {type: string, default: "now"}
  count: {type: integer, default: 1}
  ratio: {type: number, default: 1}
  dry: {type: boolean, default: false}
steps:
  - id: chmod
    run: "echo {{ mode }} {{ version }} {{ answer }} {{ at }} {{ count }} {{ ratio }} {{ dry }} > out"
"""


@pytest.mark.parametrize("how", [["-e", "@vars.yaml"], ["--params", "vars.yaml"]])
def test_a_string_param_from_a_yaml_file_is_the_text_as_written(
    workdir: Path, how: list[str]
) -> None:
    """YAML 1.1 reads `0755` as 493, `1.10` as 1.1 and `yes` as true; a string param gets
    what the file says. Typed params keep YAML's reading."""
    write_runbook(workdir, "perm", AS_WRITTEN)
    (workdir / "vars.yaml").write_text(
        "mode: 0755\nversion: 1.10\nanswer: yes\nat: 2024-05-01 10:00:00\n"
        "count: 12\nratio: 1.50\ndry: yes\n"
    )
    assert main(["run", "perm", *how, "--yes"]) == 0
    assert (workdir / "out").read_text().split() == [
        "0755",
        "1.10",
        "yes",
        "2024-05-01",
        "10:00:00",
        "12",
        "1.5",
        "true",
    ]


def test_a_string_params_default_and_choices_are_the_text_as_written(workdir: Path) -> None:
    write_runbook(
        workdir,
        "defaults",
        "runbook: defaults\nparams:\n  mode: {type: string, default: 0755}\n"
        "  version: {type: string, choices: [1.9, 1.10], default: 1.10}\n"
        "steps: [{id: s, run: 'echo {{ mode }} {{ version }} > out'}]\n",
    )
    assert main(["validate", "defaults"]) == 0
    assert main(["run", "defaults", "--yes"]) == 0
    assert (workdir / "out").read_text().split() == ["0755", "1.10"]
    assert main(["run", "defaults", "-p", "version=1.9", "--yes"]) == 0
    assert (workdir / "out").read_text().split() == ["0755", "1.9"]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("count=many", "'many' is not a valid integer"),
        ("env=prod", "is not one of: staging, production"),
        ("tag=x1", "does not match v[0-9]+"),
        ("nope=1", "unknown param 'nope'"),
        ("novalue", "-p expects NAME=VALUE"),
    ],
)
def test_bad_params_exit_2_before_anything_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str], arg: str, message: str
) -> None:
    write_runbook(workdir, "typed", TYPED)
    assert main(["run", "typed", "-p", arg]) == 2
    assert message in capsys.readouterr().err
    assert not (workdir / "out").exists() and not (workdir / "state").exists()


def test_missing_secret_without_terminal_is_refused(
    workdir: Path, no_tty: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "sec",
        "runbook: sec\nparams: {token: {type: string, secret: true}}\nsteps: [{id: a, run: 'true'}]\n",
    )
    assert main(["run", "sec"]) == 2
    assert "param 'token' is required" in capsys.readouterr().err


def test_unknown_runbook_is_usage_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "ghost"]) == 2
    assert "no runbook named 'ghost'" in capsys.readouterr().err


def test_missing_host_var_in_inventory_names_host_and_var(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "hv",
        "runbook: hv\nhost_vars: {app_dir: root}\nsteps: [{id: a, run: 'ls {{ app_dir }}'}]\n",
    )
    (workdir / "inv.yaml").write_text("hosts: {local: {connection: local}}\n")
    assert main(["run", "hv", "-i", "inv.yaml"]) == 2
    assert (
        "host 'local': the inventory gives host 'local' no variable 'app_dir'"
        in capsys.readouterr().err
    )


def test_a_runbook_with_a_control_character_is_refused_at_its_place(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NUL (a binary file, a bad paste) is reported with file:line:col like any YAML error."""
    (workdir / "runbooks" / "nul.yaml").write_bytes(b"runbook: nul\nsteps:\n  - id: a\x00\n")
    assert main(["run", "nul"]) == 2
    err = capsys.readouterr().err
    assert "runbooks/nul.yaml:3:10: YAML error: unacceptable character #x0000" in err, err


def test_a_directory_is_not_offered_as_a_runbook(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "runbooks" / "dir.yaml").mkdir()
    assert main(["run", "dir"]) == 2
    err = capsys.readouterr().err
    assert "no runbook named 'dir'" in err and "did you mean" not in err, err


@pytest.mark.parametrize("forks", ["0", "-3", "x"])
def test_forks_must_be_a_positive_number(
    workdir: Path, forks: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'touch ran'}]\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", "one", "--forks", forks])
    assert exc.value.code == 2 and "--forks" in capsys.readouterr().err
    assert not (workdir / "ran").exists()


@pytest.mark.parametrize("where", [["--ticket", "CHG-caf\udce9"], ["-p", "who=J\udcfcrgen"]])
def test_an_argument_that_is_not_utf8_is_refused_before_anything_is_written(
    workdir: Path, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Latin-1 bytes typed in a UTF-8 locale reach Python as surrogate escapes, which canonical
    JSON (the audit log) cannot hold: refused, not a traceback and an empty run log."""
    write_runbook(
        workdir, "one", "runbook: one\nparams: {who: {type: string, default: x}}\n"
        "steps: [{id: a, run: 'touch ran'}]\n",
    )  # fmt: skip
    assert main(["run", "one", *where]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err
    assert not (workdir / "ran").exists()
    assert not list((workdir / "state").glob("runs/*"))
    assert main(["audit", "verify"]) == 0


def test_an_empty_run_log_is_a_crash_at_its_start_not_a_forgery(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["run", "one", "--quiet"]) == 0
    (workdir / "state" / "runs" / "20261130T000000Z-one-000000.jsonl").touch()
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0, capsys.readouterr().out


def test_validate_json_is_one_document_with_every_problem_placed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "good", "runbook: good\nsteps: [{id: a, run: 'true'}]\n")
    write_runbook(workdir, "bad", "runbook: bad\nsteps:\n  - {id: a, rum: 'true'}\n")
    assert main(["validate", "--json"]) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and doc["valid"] == ["runbooks/good.yaml"]
    places = [(p["file"], p["line"], p["col"], p["path"]) for p in doc["problems"]]
    assert ("runbooks/bad.yaml", 3, 13, "steps[0].rum") in places
    assert all(p["message"] for p in doc["problems"])
    assert err == ""


def test_run_json_is_the_result_alone_on_stdout(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: --json was accepted and the human progress went to stdout."""
    write_runbook(
        workdir, "two", "runbook: two\non_failure: halt\nsteps:\n"
        "  - {id: a, run: 'echo hello'}\n  - {id: b, run: 'exit 3'}\n",
    )  # fmt: skip
    assert main(["--json", "run", "two", "--yes"]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["state"] == "failed" and doc["exit_code"] == 1 and doc["log_verifies"]
    assert doc["hosts"] == {"local": {"ok": ["a"], "failed": ["b"]}}
    assert Path(doc["audit_log"]).is_file() and doc["run_id"] in doc["audit_log"]
    assert "hello" in err  # the progress, output included, is on stderr


def test_the_on_key_needs_no_quotes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: YAML 1.1 read a plain `on:` as the key True: "unknown key 'True'"."""
    write_runbook(
        workdir, "only", "runbook: only\nsteps:\n  - {id: a, on: [local], run: touch ran}\n"
    )
    assert main(["validate", "only"]) == 0, capsys.readouterr().err
    assert main(["run", "only", "--quiet"]) == 0
    assert (workdir / "ran").exists()

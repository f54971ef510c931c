"""`runbook import`: the seed (tests/fixtures/maintenance-runbook.md, a copy of the shared seed)
and a file of edge cases become runbooks and checklists that validate and plan, with nothing
lost; `--check` notices a section edited since the import; `show --format md` reads like the source.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from demo_target import Demo

from runner.cli import main

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "tests" / "fixtures" / "maintenance-runbook.md"
EDGE = REPO / "tests" / "fixtures" / "import-edge-cases.md"
DEMO_INVENTORY = REPO / "inventories" / "demo.yaml"


def run_import(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--json", "import", *args]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def shell_fences(text: str) -> list[tuple[int, str]]:
    """(opening line, code) of every bash/sh/shell fence, counted here with a plain scan of the
    lines, independently of the importer's parser."""
    out, lines = [], text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```|~~~)\s*(bash|sh|shell)\s*$", lines[i])
        if m:
            start, indent, code = i + 1, len(m.group(1)), []
            i += 1
            while not lines[i].strip().startswith(m.group(2)):
                code.append(lines[i][indent:])
                i += 1
            out.append((start, "\n".join(code)))
        i += 1
    return out


def steps_text(out: Path, lifted: list[dict[str, Any]]) -> str:
    """Every step's run/manual text of every imported runbook, with the lifted values put back."""
    texts = []
    for f in sorted((out / "runbooks").glob("*.yaml")):
        for step in yaml.safe_load(f.read_text())["steps"]:
            texts.append(step.get("run") or step["manual"])
    text = "\n".join(texts)
    for x in lifted:
        text = re.sub(r"{{ " + x["name"] + r"( \| raw)? }}", x["value"], text)
    return re.sub(r"{{ '([{%#][{%#]?)'( \| raw)? }}", r"\1", text)


def assert_no_command_lost(source: str, text: str) -> None:
    for _, code in shell_fences(source):
        for line in code.split("\n"):
            line = line.strip()
            if line and not line.startswith("#"):
                bare = re.sub(r"^sudo (-u \S+ )?", "", line)  # lifted into `sudo:`
                assert line in text or bare in text, line


@pytest.fixture(scope="module")
def seed_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    import contextlib
    import io

    out = tmp_path_factory.mktemp("imported")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["--json", "import", str(SEED), "-o", str(out)]) == 0
    return out, json.loads(buf.getvalue())


def test_seed_imports_into_files_that_validate(
    seed_import: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = seed_import
    runbooks = sorted((out / "runbooks").glob("*.yaml"))
    checklists = sorted((out / "checklists").glob("*.yaml"))
    assert len(runbooks) == report["summary"]["runbooks"] == 36
    assert len(checklists) == report["summary"]["checklists"] == 5
    assert main(["validate", str(out / "runbooks"), str(out / "checklists")]) == 0
    assert "problem" not in capsys.readouterr().err


def test_seed_every_shell_fence_and_checklist_item_is_accounted_for(
    seed_import: tuple[Path, dict[str, Any]],
) -> None:
    out, report = seed_import
    source = SEED.read_text()
    fences = shell_fences(source)
    assert len(fences) == 36
    entries = report["report"]
    assert {e["fence"] for e in entries if e["fence"]} == {line for line, _ in fences}
    assert report["summary"]["shell_fences"] == report["summary"]["shell_fences_accounted"] == 36
    # each part of a shell fence became a run or a manual step (never silently skipped)
    from_fences = [e for e in entries if e["fence"]]
    assert {e["outcome"] for e in from_fences} == {"run", "manual"}
    assert all(e["target"].startswith("runbooks/") for e in from_fences)
    assert_no_command_lost(source, steps_text(out, report["lifted"]))

    boxes = [n for n, line in enumerate(source.split("\n"), 1) if re.match(r"\s*- \[ \]", line)]
    assert len(boxes) == 25
    items = [e for e in entries if e["outcome"] == "checklist-item"]
    assert sorted(e["lines"][0] for e in items) == boxes
    assert report["summary"]["checklist_items"] == 25
    periods = {
        f.stem: yaml.safe_load(f.read_text())["period"] for f in (out / "checklists").glob("*")
    }
    assert periods == {
        "daily-checklist": "daily",
        "weekly-checklist": "weekly",
        "monthly-checklist": "monthly",
        "quarterly-checklist": "quarterly",
        "incident-review-checklist": "once",
    }
    daily = yaml.safe_load((out / "checklists" / "daily-checklist.yaml").read_text())
    assert daily["items"][0] == {
        "id": "health-checks",
        "title": "Health Checks",
        "description": "Run comprehensive health monitoring",
    }
    skipped = [e for e in entries if e["outcome"] == "skipped"]
    assert skipped and all(e["detail"] for e in skipped)
    assert any("a `json` fence is not shell" in e["detail"] for e in skipped)


def test_seed_prose_instructions_interactive_commands_and_sudo(
    seed_import: tuple[Path, dict[str, Any]],
) -> None:
    out, report = seed_import

    def steps(name: str) -> dict[str, dict[str, Any]]:
        doc = yaml.safe_load((out / "runbooks" / f"{name}.yaml").read_text())
        return {s["id"]: s for s in doc["steps"]}

    pre = steps("pre-update-checklist")
    assert pre["check-current-system-status"] == {
        "id": "check-current-system-status",
        "name": "Check current system status",
        "shell": "bash",  # every fence of the seed is a `bash` one
        "run": "scripts/health_monitor.sh {{ env_name }} comprehensive",
        "sudo": True,
    }
    every = [
        s for f in (out / "runbooks").glob("*.yaml") for s in yaml.safe_load(f.read_text())["steps"]
    ]
    assert {s.get("shell") for s in every if "run" in s} == {"bash"}
    assert not [s for s in every if "manual" in s and "shell" in s]
    # `source` (a bash builtin dash lacks) runs under bash: pip installs into the venv
    security = steps("security-update-process")["check-for-vulnerabilities"]
    assert security["shell"] == "bash" and "source /tmp/check_env/bin/activate" in security["run"]
    assert list(pre) == [
        "check-current-system-status",
        "verify-backup-integrity",
        "check-available-resources",
        "verify-update-package",
    ]
    rolling = steps("rolling-update-execution")["monitor-update-progress"]
    assert "tail -f {{ app_dir }}/logs/update_production.log" in rolling["manual"]
    assert "follows the output" in rolling["manual"]
    assert "run" not in rolling
    config = steps("configuration-update-process")
    assert "nano {{ app_dir }}/.env" in config["apply-configuration-changes"]["manual"]
    assert "'{{ app_dir | raw }}'" in config["validate-configuration"]["run"]
    assert steps("circuit-breaker-recovery")["apply-fix"]["manual"] == (
        "Apply fix (manual intervention based on investigation)"
    )
    assert steps("sqlite-vacuum-operation")["check-database-integrity"]["sudo"] == "polymarket-bot"
    # sudo that covers only the first command of a pipeline is kept as written
    cron = steps("automated-security-scanning")["weekly-security-scan"]
    assert cron["run"].startswith("sudo crontab -u polymarket-bot -l") and "sudo" not in cron
    level1 = steps("level-1-response-system-administrator")
    assert (
        level1["acknowledge-alert-within-5-minutes"]["manual"]
        == "**Acknowledge alert** within 5 minutes"
    )
    assert len(level1) == 4
    lifted = {x["name"]: x for x in report["lifted"]}
    assert lifted["app_dir"]["value"] == "/home/polymarket-bot/polymarket-copy-bot"
    assert lifted["app_dir"]["host"] and lifted["env_name"]["value"] == "production"
    for f in (out / "runbooks").glob("*.yaml"):
        body = yaml.safe_load(f.read_text())
        for s in body["steps"]:
            assert "/home/polymarket-bot/polymarket-copy-bot" not in s.get("run", "")
        if "{{ app_dir" in f.read_text():
            assert "app_dir" in body["host_vars"]


def test_seed_headers_name_source_and_lines(seed_import: tuple[Path, dict[str, Any]]) -> None:
    out, _ = seed_import
    lines = SEED.read_text().split("\n")
    for f in [*(out / "runbooks").glob("*.yaml"), *(out / "checklists").glob("*.yaml")]:
        text = f.read_text()
        meta = json.loads(re.search(r"^# source: (.*)$", text, re.M).group(1))
        assert meta["file"] == "maintenance-runbook.md"
        start, end = meta["lines"]
        assert f"lines {start}-{end}:" in text.split("\n")[0]
        heading = lines[start - 1]
        assert heading.startswith("#") and heading.lstrip("# ") == meta["section"][-1]
        assert yaml.safe_load(text)["title"] == meta["section"][-1]


def test_seed_plan_each_imported_runbook_against_the_demo_inventory(
    seed_import: tuple[Path, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, _ = seed_import
    monkeypatch.setenv("RUNBOOK_STATE_DIR", "/nonexistent/state-must-not-be-made")
    runbooks = sorted((out / "runbooks").glob("*.yaml"))
    assert len(runbooks) == 36
    for f in runbooks:
        capsys.readouterr()
        assert main(["plan", str(f), "-i", str(DEMO_INVENTORY)]) == 0, f.name
        plan = capsys.readouterr().out
        assert "{{" not in plan.replace("{{ .", ""), f.name
        if "{{ app_dir" in f.read_text():
            assert ".demo/polymarket-copy-bot" in plan, f.name
        if "{{ env_name" in f.read_text():
            assert "production" not in plan.replace("update_production", ""), f.name


def test_show_md_reads_like_the_source_section(
    seed_import: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = seed_import
    capsys.readouterr()
    assert (
        main(["show", str(out / "runbooks" / "manual-rollback-steps.yaml"), "--format", "md"]) == 0
    )
    md = capsys.readouterr().out
    source = SEED.read_text()
    section = source[source.index("#### Manual Rollback Steps") : source.index("### Configuration")]
    assert md.startswith("# Manual Rollback Steps\n")
    # the numbered comments of the source, in their order, are the document's numbered steps
    titles = re.findall(r"^# (\d+)\. (.+)$", section, re.M)
    assert len(titles) == 5
    found = [re.search(rf"^### {n}\. {re.escape(t)} \(`", md, re.M) for n, t in titles]
    assert all(found) and [m.start() for m in found] == sorted(m.start() for m in found)
    # the fences are the source's `bash` ones: the steps run under bash (`shell: bash`)
    assert "```bash\nsystemctl stop polymarket-bot\n```" in md
    assert md.count("*with sudo*") == 5
    assert "```bash\ncp -r {{ backup_path }}/* {{ app_dir }}/\n```" in md


def test_edge_cases_import_without_loss(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crlf = workdir / "edge.md"
    crlf.write_bytes(EDGE.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    report = run_import(capsys, str(crlf), "-o", str(workdir / "lib"))
    out = workdir / "lib"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert files == [
        "checklists/weekly-checks.yaml",
        "runbooks/edit-and-watch.yaml",
        "runbooks/restart-the-service.yaml",
    ]
    for f in out.rglob("*.yaml"):
        assert b"\r" not in f.read_bytes()
    assert main(["validate", str(out / "runbooks"), str(out / "checklists")]) == 0
    source = EDGE.read_text()
    assert_no_command_lost(source, steps_text(out, report["lifted"]))
    assert report["summary"]["shell_fences"] == len(shell_fences(source)) == 4
    assert report["summary"]["shell_fences_accounted"] == 4

    restart = yaml.safe_load((out / "runbooks/restart-the-service.yaml").read_text())
    steps = {s["id"]: s for s in restart["steps"]}
    # a code block inside a numbered list item is a step named by the item
    assert steps["drain-the-node"]["run"] == "{{ app_dir }}/bin/drain --wait"
    assert steps["drain-the-node"]["sudo"] == "svc"
    # a numbered item without code is a manual step, with its nested lists
    manual = steps["check-the-load-balancer-by-hand-it-has-no-api"]["manual"]
    assert "- wait for `drained`" in manual and "1. nested deeper: the node is grey" in manual
    assert steps["stop"]["description"] == "Restart:"
    # prose keeps its words: only values from shell code are lifted into variables
    assert steps["tell-the-owners-of-srv-shop-app-that-it-is-back"]["manual"] == (
        "Tell the owners of /srv/shop/app that it is back."
    )
    # non-shell fences, a level-5 heading and an indented block are kept in the description
    desc = restart["description"]
    for kept in ('print("not shell")', '{"kept": true}', "a fence without a language"):
        assert kept in desc
    assert "##### A level-5 heading" in desc and "an indented code block" in desc
    skipped = {e["detail"] for e in report["report"] if e["outcome"] == "skipped"}
    assert "a `python` fence is not shell: kept in the description" in skipped
    assert "'Background': no shell code, numbered instructions or checkboxes" in skipped
    assert "an empty shell fence: nothing to run" in skipped
    assert "'Links only': no shell code, numbered instructions or checkboxes" in skipped

    edit = yaml.safe_load((out / "runbooks/edit-and-watch.yaml").read_text())
    e = {s["id"]: s for s in edit["steps"]}
    assert next(iter(e)) == "edit-the-configuration"  # the #! line names no step
    assert "vim {{ app_dir }}/shop.conf" in e["edit-the-configuration"]["manual"]
    assert "tail -F" in e["then-follow-the-log"]["manual"]
    checklist = yaml.safe_load((out / "checklists/weekly-checks.yaml").read_text())
    assert checklist["period"] == "weekly"
    assert [i["title"] for i in checklist["items"]] == ["Disk", "Logs rotated"]
    assert "nested under an item" in checklist["items"][0]["description"]
    assert "a plain bullet in the same list" in checklist["description"]

    # what looked like a template renders back to the source text
    inv = workdir / "inv.json"
    inv.write_text(
        json.dumps({"hosts": {"local": {"connection": "local"}}, "vars": {"app_dir": "/a b"}})
    )
    capsys.readouterr()
    assert main(["plan", str(out / "runbooks/edit-and-watch.yaml"), "-i", str(inv)]) == 0
    plan = capsys.readouterr().out
    assert "docker inspect --format '{{ .State.Status }}' shop" in plan
    assert 'echo "${#arr[@]} items"' in plan and "Welcome to {% the shop %}" in plan
    assert "sudo tee '/a b'/motd <<EOF" in plan


def test_check_notices_an_edited_section(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = workdir / "maintenance-runbook.md"
    md.write_text(SEED.read_text())
    run_import(capsys, str(md), "-o", "lib")
    assert main(["import", "--check", str(md), "-o", "lib"]) == 0
    assert "0 section(s) drifted" in capsys.readouterr().out

    # converting the file to CRLF changes no section
    md.write_bytes(md.read_bytes().replace(b"\n", b"\r\n"))
    assert main(["import", "--check", str(md), "-o", "lib"]) == 0
    capsys.readouterr()

    text = md.read_bytes().decode().replace("free -h\r\n\r\n# 4.", "free -m\r\n\r\n# 4.")
    text = text.replace("### Backup Verification", "### Backup Checks")
    md.write_bytes(text.encode())
    assert main(["--json", "import", "--check", str(md), "-o", "lib"]) == 1
    drift = json.loads(capsys.readouterr().out)
    states = {(d["state"], d["file"]) for d in drift["drift"]}
    assert states == {
        ("changed", "runbooks/pre-update-checklist.yaml"),
        ("removed", "runbooks/backup-verification.yaml"),
        ("new", "runbooks/backup-checks.yaml"),
    }
    assert drift["in_step"] == 41 - 2
    assert main(["import", "--check", str(md), "-o", "lib"]) == 1
    lines = capsys.readouterr().out.splitlines()
    changed = next(x for x in lines if x.startswith("changed  runbooks/pre-update-checklist.yaml"))
    assert "edited since" not in changed
    # a file automated by hand since the import is flagged: the two must be reconciled by hand
    yml = workdir / "lib" / "runbooks" / "pre-update-checklist.yaml"
    yml.write_text(yml.read_text() + "  safe: true\n")
    assert main(["import", "--check", str(md), "-o", "lib"]) == 1
    out = capsys.readouterr().out
    assert "pre-update-checklist.yaml" in out and "(the file was edited since the import)" in out


def test_import_never_overwrites_a_file_it_did_not_write(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = workdir / "runbooks" / "pre-update-checklist.yaml"
    mine.write_text("runbook: pre-update-checklist\nsteps: [{id: a, run: 'true'}]\n")
    assert main(["import", str(SEED), "--dry-run"]) == 2
    assert main(["import", str(SEED)]) == 2
    err = capsys.readouterr().err
    assert f"{mine.relative_to(workdir)}: exists and was not imported" in err
    assert sorted(p.name for p in (workdir / "runbooks").iterdir()) == [mine.name]
    assert not (workdir / "checklists").exists()
    mine.unlink()
    report = run_import(capsys, str(SEED), "--dry-run")
    assert report["dry_run"] and not any((workdir / "runbooks").iterdir())
    run_import(capsys, str(SEED))
    assert len(list((workdir / "runbooks").iterdir())) == 36
    run_import(capsys, str(SEED))  # again: its own files are replaced
    # a file edited since (a step automated by hand) is never replaced
    edited = workdir / "runbooks" / "backup-commands.yaml"
    edited.write_text(
        edited.read_text().replace("name: Full backup", "name: Full backup\n  safe: false")
    )
    assert main(["import", str(SEED)]) == 2
    assert "backup-commands.yaml: edited since it was imported" in capsys.readouterr().err
    assert "safe: false" in edited.read_text()
    assert main(["import", "--check", str(SEED)]) == 0  # the Markdown has not changed


def test_an_imported_seed_section_runs_on_the_demo_target(
    seed_import: tuple[Path, dict[str, Any]],
    demo: Demo,
    no_tty: None,
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
) -> None:
    """The seed's *Configuration Update Process*, imported as it is, run the first time with a
    person at its manual step (`nano .env`): it waits (exit 5), is confirmed, and completes.
    The seed's `scripts/…` are relative to the deployment, and `systemctl` is the demo's botctl."""
    out, _ = seed_import
    shim = workdir / "bin" / "systemctl"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {demo.ctl} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}:{os.environ['PATH']}")
    monkeypatch.chdir(demo.app)
    runbook = str(out / "runbooks" / "configuration-update-process.yaml")
    assert main(["run", runbook, "-i", str(demo.inv)]) == 5  # waits at apply-configuration-changes
    assert (demo.app / ".env.backup").read_bytes() == (demo.app / ".env").read_bytes()
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    assert (
        main(["resume", log.stem, "--confirm", "apply-configuration-changes", "--by", "ana"]) == 0
    )
    events = [json.loads(line) for line in log.read_text().splitlines()]
    done = [e["step"] for e in events if e["event"] == "step.outcome" and e["status"] == "ok"]
    assert done == [
        "backup-current-configuration",
        "validate-configuration",
        "reload-service",
        "monitor-for-issues",
    ]
    resumed = next(e for e in events if e["event"] == "run.resumed")
    (confirmation,) = resumed["confirmed"]  # also when, meaning and run: what ana vouches for
    assert {k: confirmation[k] for k in ("by", "host", "step")} == {
        "by": "ana", "host": "local", "step": "apply-configuration-changes"
    }  # fmt: skip
    assert events[-1]["outcome"] == "succeeded"
    assert main(["audit", "verify"]) == 0


STOPS = """\
# Setup

## Install

```sh
# 1. Install the configuration
mkdir -p etc
cp missing.conf etc/app.conf
touch etc/installed
```
"""


def test_an_imported_step_stops_at_its_first_failing_command(
    workdir: Path, no_tty: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A person following the page stops at a command that fails; so does the imported step,
    which fails, whatever its later commands do (before: the step's status was its last
    command's, so `touch` after a failed `cp` "succeeded")."""
    md = workdir / "setup.md"
    md.write_text(STOPS)
    run_import(capsys, str(md), "-o", "lib")
    install = workdir / "lib" / "runbooks" / "install.yaml"
    assert main(["run", str(install)]) == 1
    assert (workdir / "etc").is_dir() and not (workdir / "etc" / "installed").exists()
    assert yaml.safe_load(install.read_text())["steps"][0]["run"].startswith("set -e\n")


SHELLS = """\
# Shells

## Activate

```bash
# 1. Use the venv
source ./activate
echo "MARK=${MARK:-unset}" > mark.txt
```

## Scripts

```sh
#!/usr/bin/env bash
arr=(a b); echo "${arr[1]}" > b.txt
```

```shell
#!/bin/zsh
print -r -- $ZSH_NAME
```

```sh
echo posix
```

```zsh
print zsh
```

```ksh
print ksh
```
"""


def test_a_bash_fence_runs_under_bash(
    workdir: Path, no_tty: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `bash` fence (or an sh fence whose first line is a bash `#!`) is imported with
    `shell: bash`, and runs as the page meant: before, /bin/sh ran it, and where that is dash
    `source` was not found. sh and shell fences run under sh, as every `run:` does by default."""
    md = workdir / "shells.md"
    md.write_text(SHELLS)
    run_import(capsys, str(md), "-o", "lib")
    activate = workdir / "lib" / "runbooks" / "activate.yaml"
    assert yaml.safe_load(activate.read_text())["steps"][0]["shell"] == "bash"
    (workdir / "activate").write_text("MARK=activated\n")
    assert main(["run", str(activate)]) == 0
    assert (workdir / "mark.txt").read_text() == "MARK=activated\n"

    steps = yaml.safe_load((workdir / "lib" / "runbooks" / "scripts.yaml").read_text())["steps"]
    assert [s.get("shell") for s in steps] == ["bash", "zsh", None, "zsh", "ksh"]
    assert steps[0]["run"] == 'arr=(a b); echo "${arr[1]}" > b.txt'  # `shell:` says what #! said
    assert main(["validate", str(workdir / "lib" / "runbooks")]) == 0


def test_files_imported_before_shell_existed_are_in_step_and_a_new_import_adds_it(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files imported before `shell:` existed (their `bash` fences ran under /bin/sh) come from
    sections that have not changed: `--check` finds them in step. Importing again gives the ones
    not edited since their `shell: bash`; one edited by hand stops it, as any edited file does."""
    from runner.importer import build

    md = workdir / "shells.md"
    md.write_text(SHELLS)
    with monkeypatch.context() as m:  # what the importer wrote before
        m.setattr(build, "fence_shell", lambda lang, code: "sh")
        run_import(capsys, str(md), "-o", "lib")
    activate = workdir / "lib" / "runbooks" / "activate.yaml"
    scripts = workdir / "lib" / "runbooks" / "scripts.yaml"
    assert "shell:" not in activate.read_text() + scripts.read_text()
    assert main(["import", "--check", str(md), "-o", "lib"]) == 0
    assert "0 section(s) drifted from shells.md; 2 file(s) in step" in capsys.readouterr().out

    scripts.write_text(scripts.read_text().replace("echo posix", "echo posix  # by hand"))
    assert main(["import", str(md), "-o", "lib"]) == 2  # nothing is written
    assert "scripts.yaml: edited since it was imported" in capsys.readouterr().err
    assert "shell:" not in activate.read_text()
    scripts.unlink()  # moved away, to be reconciled by hand
    run_import(capsys, str(md), "-o", "lib")
    assert yaml.safe_load(activate.read_text())["steps"][0]["shell"] == "bash"
    assert main(["import", "--check", str(md), "-o", "lib"]) == 0

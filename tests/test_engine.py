"""Engine semantics against real subprocesses and files, through `main([...])` in-process."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, alive, run_events, write_runbook
from demo_target import Demo
from slow_server import Starting, Trickle

from runner.cli import main


def test_failure_at_step_3_rolls_back_in_reverse_order(workdir: Path) -> None:
    write_runbook(
        workdir,
        "four",
        """
runbook: four
steps:
  - id: s1
    run: echo s1 >> trail
    rollback: [{run: echo undo-s1 >> trail}]
  - id: s2
    run: echo s2 >> trail
    rollback: [{run: echo undo-s2 >> trail}]
  - id: s3
    run: echo s3 >> trail; exit 1
    rollback: [{run: echo undo-s3 >> trail}]
  - id: s4
    run: echo s4 >> trail
""",
    )
    assert main(["run", "four"]) == 1
    assert (workdir / "trail").read_text().split() == [
        "s1",
        "s2",
        "s3",
        "undo-s3",
        "undo-s2",
        "undo-s1",
    ]
    last = run_events(workdir / "state")[-1]
    assert (
        last["event"] == "run.finished"
        and last["outcome"] == "rolled-back"
        and last["exit_code"] == 1
    )


def test_failed_rollback_exits_3_and_stops_unwinding(workdir: Path) -> None:
    write_runbook(
        workdir,
        "badundo",
        """
runbook: badundo
steps:
  - {id: a, run: "true", rollback: [{run: echo undo-a >> trail}]}
  - {id: b, run: "true", rollback: [{run: "exit 7"}]}
  - {id: c, run: "false"}
""",
    )
    assert main(["run", "badundo"]) == 3
    assert not (workdir / "trail").exists()  # a's rollback did not run after b's failed
    assert run_events(workdir / "state")[-1]["outcome"] == "rollback-failed"


def test_verify_is_retried_until_healthy(workdir: Path) -> None:
    # each verification attempt bumps a counter; healthy from the third attempt on
    write_runbook(
        workdir,
        "wait",
        """
runbook: wait
steps:
  - id: start
    run: echo 0 > counter
    verify:
      - name: healthy
        run: n=$(($(cat counter) + 1)); echo $n > counter; test $n -ge 3
        retries: 5
        delay: 0.05
""",
    )
    assert main(["run", "wait"]) == 0
    assert (workdir / "counter").read_text().strip() == "3"
    checks = [e for e in run_events(workdir / "state") if e["event"] == "check"]
    assert [c["ok"] for c in checks] == [False, False, True]


def test_verify_exhausted_fails_the_step(workdir: Path) -> None:
    write_runbook(
        workdir,
        "never",
        """
runbook: never
steps:
  - id: s
    run: "true"
    verify: [{run: "false", retries: 2, delay: 0}]
""",
    )
    assert main(["run", "never"]) == 1
    assert len([e for e in run_events(workdir / "state") if e["event"] == "check"]) == 3


def test_timeout_kills_a_child_that_ignores_sigterm(workdir: Path) -> None:
    write_runbook(
        workdir,
        "slow",
        """
runbook: slow
steps:
  - id: hang
    run: "trap '' TERM; echo $$ > pid; sleep 30 & echo $! > child; wait"
    timeout: 0.5
""",
    )
    start = time.monotonic()
    assert main(["run", "slow"]) == 1
    assert time.monotonic() - start < 10
    for name in ("pid", "child"):
        assert not alive(int((workdir / name).read_text())), name
    finished = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    assert finished[0]["timed_out"] is True


@pytest.mark.parametrize(
    "payload", ["x; touch pwned", "$(touch pwned)", "`touch pwned`", "a' ; touch pwned; '"]
)
def test_param_injection_is_one_argument(workdir: Path, payload: str) -> None:
    write_runbook(
        workdir,
        "inject",
        """
runbook: inject
params: {name: {type: string, required: true}}
steps:
  - id: echo
    run: printf '%s' {{ name }} > out
""",
    )
    assert main(["run", "inject", "-p", f"name={payload}"]) == 0
    assert not (workdir / "pwned").exists()
    assert (workdir / "out").read_text() == payload


def test_raw_opts_out_of_quoting(workdir: Path) -> None:
    write_runbook(
        workdir,
        "rawq",
        """
runbook: rawq
vars: {cmd: "echo a > out; echo b >> out"}
steps: [{id: s, run: "{{ cmd | raw }}"}]
""",
    )
    assert main(["run", "rawq"]) == 0
    assert (workdir / "out").read_text().split() == ["a", "b"]


def test_secret_never_reaches_terminal_or_state(
    workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "hunter2-s3cr3t"
    write_runbook(
        workdir,
        "sec",
        """
runbook: sec
params: {token: {type: string, secret: true, required: true}}
steps:
  - id: use
    run: echo "token is" {{ token }}; echo {{ token }} >&2
  - id: fail
    run: echo {{ token }}; exit 1
""",
    )
    assert main(["run", "sec", "-p", f"token={secret}"]) == 1
    out, err = capfd.readouterr()
    assert secret not in out + err
    assert "***" in out
    for path in (workdir / "state").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_step_printing_200mb_keeps_memory_flat(workdir: Path) -> None:
    write_runbook(
        workdir,
        "big",
        """
runbook: big
steps:
  - id: flood
    run: head -c 200000000 /dev/zero | tr '\\0' 'x'
    expect: {that: "result.stdout | length > 0"}
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "big", "--quiet"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert os.waitstatus_to_exitcode(status) == 0
    assert usage.ru_maxrss / 1024 < 150, f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB"
    finished = next(e for e in run_events(workdir / "state") if e["event"] == "step.finished")
    assert finished["stdout"]["bytes"] == 200_000_000
    assert len(finished["stdout"]["head"]) == 4096 and len(finished["stdout"]["tail"]) == 4096


def test_capture_feeds_later_steps_and_when_skips(workdir: Path) -> None:
    write_runbook(
        workdir,
        "cap",
        """
runbook: cap
params: {mode: {type: string, choices: [quick, full], default: quick}}
steps:
  - {id: get, run: echo 1.2.3, capture: version}
  - {id: use, run: "echo {{ version }} > out"}
  - {id: deep, run: touch deep, when: "mode == 'full'"}
""",
    )
    assert main(["run", "cap"]) == 0
    assert (workdir / "out").read_text().strip() == "1.2.3"
    assert not (workdir / "deep").exists()
    skipped = [e for e in run_events(workdir / "state") if e["event"] == "step.skipped"]
    assert skipped[0]["reason"] == "when is false: mode == 'full', where mode='quick'"


def test_a_skip_reason_masks_a_secret_it_looked_at(workdir: Path) -> None:
    write_runbook(
        workdir,
        "sec",
        """
runbook: sec
params: {token: {type: string, secret: true, required: true}}
steps:
  - {id: a, run: "true", when: "token == 'other'"}
""",
    )
    assert main(["run", "sec", "-p", "token=tok-s3cret"]) == 0
    [skipped] = [e for e in run_events(workdir / "state") if e["event"] == "step.skipped"]
    assert skipped["reason"] == "when is false: token == 'other', where token='***'"
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    assert "s3cret" not in log.read_text()


def test_failed_runbook_precondition_aborts_before_any_step(workdir: Path) -> None:
    write_runbook(
        workdir,
        "pre",
        """
runbook: pre
preconditions: [{name: disk ok, run: "false"}]
steps: [{id: s, run: touch changed}]
""",
    )
    assert main(["run", "pre"]) == 1
    assert not (workdir / "changed").exists()
    assert run_events(workdir / "state")[-1]["outcome"] == "aborted"


def test_manual_step_without_terminal_waits(
    workdir: Path, no_tty: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """Do-nothing scripting: the run stops resumable at the manual step, nothing is rolled back."""
    write_runbook(
        workdir,
        "man",
        """
runbook: man
steps:
  - {id: a, run: echo a >> trail, rollback: [{run: echo undo-a >> trail}]}
  - {id: watch, manual: Watch the dashboard for 15 minutes.}
""",
    )
    assert main(["run", "man", "--yes"]) == 5
    out, _ = capfd.readouterr()
    assert "--confirm watch --by NAME" in out
    assert (workdir / "trail").read_text().split() == ["a"]
    assert run_events(workdir / "state")[-1]["outcome"] == "waiting"


def test_confirm_needs_yes_without_terminal(workdir: Path, no_tty: None) -> None:
    write_runbook(
        workdir,
        "conf",
        """
runbook: conf
steps: [{id: s, run: touch done, confirm: Restart the service?}]
""",
    )
    assert main(["run", "conf"]) == 1
    assert not (workdir / "done").exists()
    assert main(["run", "conf", "--yes"]) == 0
    assert (workdir / "done").exists()


def test_call_runs_another_runbook_and_rolls_it_back(workdir: Path) -> None:
    write_runbook(
        workdir,
        "child",
        """
runbook: child
params: {word: {type: string, required: true}}
steps:
  - {id: c1, run: "echo {{ word }} >> trail", rollback: [{run: echo undo-c1 >> trail}]}
""",
    )
    write_runbook(
        workdir,
        "parent",
        """
runbook: parent
steps:
  - {id: sub, call: child, with: {word: hello}}
  - {id: boom, run: "false"}
""",
    )
    assert main(["run", "parent"]) == 1
    assert (workdir / "trail").read_text().split() == ["hello", "undo-c1"]


def test_http_action_and_expect_that(workdir: Path) -> None:
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "degraded"}'
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        write_runbook(
            workdir,
            "web",
            f"""
runbook: web
steps:
  - id: ok
    http: {{url: "http://127.0.0.1:{srv.server_port}/health"}}
    expect: {{that: "result.json.status in ['healthy', 'degraded']"}}
  - id: strict
    http: {{url: "http://127.0.0.1:{srv.server_port}/health"}}
    expect: {{that: "result.json.status == 'healthy'"}}
""",
        )
        assert main(["run", "web"]) == 1
        outcomes = {
            e["step"]: e["status"]
            for e in run_events(workdir / "state")
            if e["event"] == "step.outcome"
        }
        assert outcomes == {"ok": "ok", "strict": "failed"}
    finally:
        srv.shutdown()
        srv.server_close()


def test_demo_health_check_end_to_end(demo: Demo) -> None:
    """The seed's health checks against the demo target, as `make demo` runs them."""
    rb = str(REPO / "runbooks/health-check.yaml")
    assert main(["run", rb, "-i", str(demo.inv)]) == 0
    (demo.app / ".health_override").write_text("unhealthy\n")
    assert main(["run", rb, "-i", str(demo.inv), "-p", "mode=quick"]) == 1
    assert main(["audit", "verify"]) == 0


def test_cwd_failure_stops_a_multiline_command(workdir: Path) -> None:
    write_runbook(
        workdir,
        "cwd",
        """
runbook: cwd
steps:
  - id: s
    cwd: /nonexistent-dir
    run: |
      echo first
      touch second-line-ran
""",
    )
    assert main(["run", "cwd"]) == 1
    assert not (workdir / "second-line-ran").exists()


def test_plan_shows_commands_and_defers_capture_fed_calls(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(
        workdir,
        "child2",
        """
runbook: child2
params: {word: {type: string, required: true}}
steps: [{id: c, run: "echo {{ word }} > out"}]
""",
    )
    write_runbook(
        workdir,
        "parent2",
        """
runbook: parent2
params: {token: {type: string, secret: true, required: true}}
steps:
  - {id: get, run: echo hi, capture: word}
  - {id: sub, call: child2, with: {word: "{{ word }}"}}
  - {id: use, run: "deploy --token {{ token }} {{ word }}"}
""",
    )
    assert main(["plan", "parent2", "-p", "token=s3cret-value"]) == 0
    out = capsys.readouterr().out
    assert "get: will-run" in out and "run: echo hi" in out
    assert "sub: decided-at-run-time (params wait for word)" in out
    assert "use: decided-at-run-time" in out
    assert "s3cret-value" not in out
    assert not (workdir / "out").exists() and not (workdir / "state").exists()  # nothing ran


def test_a_var_that_is_one_expression_keeps_its_type(workdir: Path) -> None:
    write_runbook(
        workdir,
        "native",
        """
runbook: native
params: {severity: {type: string, default: high}}
vars:
  levels: {high: {minutes: 15, page: "L1, L2, L3"}}
  chosen: "{{ levels[severity] }}"
  label: "sev-{{ severity }}"
steps:
  - id: show
    run: echo {{ chosen.minutes }} {{ chosen.page }} {{ label }} > out
""",
    )
    assert main(["run", "native"]) == 0
    assert (workdir / "out").read_text().split() == ["15", "L1,", "L2,", "L3", "sev-high"]


def test_a_rollback_retry_waits_its_delay(workdir: Path) -> None:
    write_runbook(
        workdir,
        "retryundo",
        """
runbook: retryundo
steps:
  - id: a
    run: "true"
    rollback:
      - run: "date +%s.%N >> tries; [ $(wc -l < tries) -ge 3 ]"
        retries: 2
        delay: 0.3
  - id: b
    run: exit 1
""",
    )
    assert main(["run", "retryundo"]) == 1
    tries = [float(t) for t in (workdir / "tries").read_text().split()]
    assert len(tries) == 3
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(tries))


def test_a_health_check_on_result_json_waits_out_answers_that_are_not_json(
    workdir: Path, starting: Starting
) -> None:
    """ "Wait until healthy" while the service starts: a 502 HTML page and an empty body are
    attempts that fail ("not JSON"), and the check is retried until the JSON answer holds."""
    write_runbook(
        workdir,
        "health",
        f"""
runbook: health
steps:
  - id: restart
    run: echo restarted
    verify:
      - name: healthy
        http: {{url: "http://127.0.0.1:{starting.port}/health", status: [200, 502]}}
        expect: {{that: "result.json.status == 'ok'"}}
        retries: 5
        delay: 0.05
""",
    )
    assert main(["run", "health"]) == 0
    assert starting.requests == 3
    checks = [e for e in run_events(workdir / "state") if e["event"] == "check"]
    assert [c["ok"] for c in checks] == [False, False, True]
    assert checks[0]["reason"].startswith("not JSON: '<html><body>502 Bad Gateway")
    assert checks[1]["reason"].startswith("not JSON: empty")


def test_a_step_whose_that_cannot_be_evaluated_yet_is_retried_and_recorded(
    workdir: Path,
) -> None:
    """Output that is not JSON, then JSON without the key: each attempt fails with its reason
    and has its step.finished record; the third attempt holds."""
    write_runbook(
        workdir,
        "wait",
        """
runbook: wait
steps:
  - id: wait
    run: |
      n=$(($(cat n 2>/dev/null || echo 0) + 1)); echo $n > n
      case $n in 1) echo starting;; 2) echo '{}';; *) echo '{"status": "ok"}';; esac
    expect: {that: "result.json.status == 'ok'"}
    retries: 5
    delay: 0.05
""",
    )
    assert main(["run", "wait"]) == 0
    finished = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    assert [(f["attempt"], f["ok"], f["exit"]) for f in finished] == [
        (1, False, 0),
        (2, False, 0),
        (3, True, 0),
    ]
    assert finished[0]["reason"] == "not JSON: 'starting' (expect.that: result.json.status == 'ok')"
    assert "has no attribute 'status'" in finished[1]["reason"]


def test_a_step_whose_that_never_holds_fails_and_is_rolled_back(workdir: Path) -> None:
    """The action ran: its failure on an expectation that cannot be evaluated is a failure
    like any other, so its rollback runs."""
    write_runbook(
        workdir,
        "never",
        """
runbook: never
steps:
  - id: s
    run: echo '<html>502</html>'
    expect: {that: "result.json.status == 'ok'"}
    retries: 1
    rollback: [{run: echo undone > trail}]
""",
    )
    assert main(["run", "never"]) == 1
    events = run_events(workdir / "state")
    assert len([e for e in events if e["event"] == "step.finished"]) == 2
    (outcome,) = [e for e in events if e["event"] == "step.outcome"]
    assert outcome["reason"].startswith("not JSON: '<html>502</html>'")
    assert (workdir / "trail").read_text() == "undone\n"


def test_the_timeout_of_an_http_step_bounds_a_body_that_trickles(
    workdir: Path, trickle: Trickle
) -> None:
    """A server that sends its body one byte a second, without end: each attempt ends at its
    timeout, as a timeout (and is retried); a check's timeout likewise."""
    url = f"http://127.0.0.1:{trickle.port}/"
    write_runbook(
        workdir,
        "slow",
        f"""
runbook: slow
steps:
  - id: fetch
    http: {{url: "{url}"}}
    timeout: 1.5s
    retries: 1
    continue_on_error: true
  - id: probe
    run: "true"
    verify: [{{http: {{url: "{url}"}}, timeout: 1s}}]
""",
    )
    began = time.monotonic()
    assert main(["run", "slow"]) == 1
    assert time.monotonic() - began < 8  # 1.5 + 1.5 + 1, and some slack for a busy machine
    events = run_events(workdir / "state")
    fetch = [e for e in events if e["event"] == "step.finished" and e["step"] == "fetch"]
    assert [(f["ok"], f["timed_out"], f["reason"]) for f in fetch] == [
        (False, True, "timed out after 1.5s")
    ] * 2
    assert all(f["duration"] < 2.5 for f in fetch)
    (check,) = [e for e in events if e["event"] == "check"]
    assert check["timed_out"] and check["reason"] == "timed out after 1s"
    assert trickle.connections == 3


def test_the_reason_not_json_quotes_no_secret(
    workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The reason quotes the output that is not JSON, whole: a secret in it is masked (repr()
    would have escaped its quotes, and a cut would have shown its start)."""
    secret = "a'b\"c-s3cr3t"
    write_runbook(
        workdir,
        "sec",
        """
runbook: sec
params: {token: {type: string, secret: true, required: true}}
steps:
  - id: one
    run: echo {{ token }}
    expect: {that: "result.json.ok"}
    continue_on_error: true
  - id: long
    run: printf '%s%0100d\\n' {{ token }} 0
    expect: {that: "result.json.ok"}
    continue_on_error: true
""",
    )
    assert main(["run", "sec", "-p", f"token={secret}"]) == 0  # both continue on error
    out, err = capfd.readouterr()
    assert secret not in out + err and "s3cr3t" not in out + err
    assert "not JSON: '***'" in out and "not JSON: 112 characters" in out
    for path in (workdir / "state").rglob("*"):
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path

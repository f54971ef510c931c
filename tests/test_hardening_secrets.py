"""Issue 18, secrets: masked in every form the product itself derives from one, never stored as
a guessable hash, never sent to another host by a redirect (real CLI, real HTTP servers)."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import subprocess
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import write_runbook
from test_hardening_limits import run

from runner.cli import main
from runner.errors import InvalidInput

SECRET = "Pa'ss-" + "k3y" * 30  # a quote inside, and longer than any excerpt cut


def leaks(text: str, secret: str = SECRET, n: int = 8) -> list[str]:
    """Every n-character piece of the secret found in text (its URL-encoded form too)."""
    forms = {secret, secret.replace("'", "%27")}
    return sorted(
        {f[i : i + n] for f in forms for i in range(len(f) - n + 1) if f[i : i + n] in text}
    )


def everything_written(workdir: Path, proc: subprocess.CompletedProcess[str]) -> str:
    files = [p for p in (workdir / "state").rglob("*") if p.is_file()]
    return proc.stdout + proc.stderr + "".join(p.read_text(errors="replace") for p in files)


def secret_run(workdir: Path, step: str) -> str:
    write_runbook(
        workdir,
        "s",
        "runbook: s\nparams: {token: {type: string, secret: true, required: true}}\n"
        f"steps:\n{step}",
    )
    proc = run(workdir, "run", "s", "-p", f"token={SECRET}")
    return everything_written(workdir, proc)


@pytest.mark.parametrize(
    "step",
    [
        # an http URL http.client rejects: its error message quotes the URL
        "  - {id: u, http: {url: 'http://127.0.0.1:9/a b/{{ token }}'}}\n",
        # a `when:` reason shows the values it looked at, shortened
        "  - {id: w, run: 'true', when: \"token == 'x'\"}\n",
        # the secret inside a larger quoted value: each ' becomes '\"'\"'
        "  - {id: q, run: \"echo {{ 'user:' ~ token }}\"}\n",
        # | urlencode
        "  - {id: e, run: 'echo {{ token | urlencode }}'}\n",
        # the 4 KiB head of the output ends in the middle of the secret
        "  - {id: h, run: \"head -c 4080 /dev/zero | tr '\\\\0' x; echo {{ token }}\"}\n",
    ],
    ids=["invalid-url", "when-reason", "inside-quotes", "urlencode", "head-cut"],
)
def test_no_derived_form_of_a_secret_is_written_or_shown(workdir: Path, step: str) -> None:
    assert leaks(secret_run(workdir, step)) == []


def test_a_plan_file_holds_nothing_a_secret_can_be_guessed_from(workdir: Path) -> None:
    """A 6-digit PIN: every SHA-256 in the plan is checked against the PIN with every string of
    the file as a salt (the old format: sha256(salt:pin), brute-forced in under a second)."""
    write_runbook(
        workdir,
        "p",
        "runbook: p\nparams: {pin: {type: string, secret: true, required: true}}\n"
        "steps:\n  - {id: a, run: 'echo {{ pin }}'}\n",
    )
    assert run(workdir, "plan", "p", "-p", "pin=402913", "-o", "plan.json").returncode == 0
    text = (workdir / "plan.json").read_text()
    digests = set(re.findall(r"[0-9a-f]{64}", text))
    strings = {s for s in re.findall(r'"([^"]*)"', text)} | {""}
    guesses = {hashlib.sha256(f"{s}:402913".encode()).hexdigest() for s in strings}
    guesses |= {hashlib.sha256(f"{s}402913".encode()).hexdigest() for s in strings}
    assert not digests & guesses
    assert "secret_hmac" in json.loads(text)["params"]["pin"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []
    redirect_to = ""

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **dict(self.headers)})
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """Two HTTP servers on loopback: two origins."""
    started = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in started]
    for t in threads:
        t.start()
    _Recorder.seen = []
    try:
        yield started[0].server_address[1], started[1].server_address[1]
    finally:
        for s in started:
            s.shutdown()
            s.server_close()


@pytest.mark.parametrize("same_origin", [False, True])
def test_a_redirect_to_another_host_drops_the_credentials(
    workdir: Path, servers: tuple[int, int], same_origin: bool
) -> None:
    first, second = servers
    _Recorder.redirect_to = f"http://127.0.0.1:{first if same_origin else second}/landing"
    out = secret_run(
        workdir,
        f"  - id: g\n    http:\n      url: http://127.0.0.1:{first}/start\n"
        "      headers: {Authorization: 'Bearer {{ token }}'}\n",
    )
    assert "succeeded" in out
    start, landing = _Recorder.seen
    assert start["Authorization"] == f"Bearer {SECRET}"
    if same_origin:
        assert landing["Authorization"] == f"Bearer {SECRET}"
    else:
        assert "Authorization" not in landing


class _Screen:
    """A subscriber that keeps what it was given to show."""

    shows_output = True

    def __init__(self) -> None:
        self.text = ""

    def event(self, e: object) -> None:
        pass

    def sync(self) -> None:
        pass

    def output(self, host: str, step: str, stream: str, text: str) -> None:
        self.text += text


def test_a_secret_across_a_64_kib_cut_of_live_output_is_masked() -> None:
    """Live output with no newline is passed on in 64 KiB pieces: a piece may end mid-secret
    (as a pipe read of 64 KiB does), and each half would pass the redactor unmasked."""
    from runner.execution.events import Bus
    from runner.format.redact import Redactor

    screen = _Screen()
    bus = Bus(Redactor([SECRET]), [screen])
    data = b"x" * 65500 + SECRET.encode() + b"\n"
    bus.output("local", "a", "stdout", data[:65536])  # the chunks a 64 KiB read returns
    bus.output("local", "a", "stdout", data[65536:])
    bus.flush("local", "a")
    assert leaks(screen.text) == [] and screen.text.endswith("***\n")


BOTH_QUOTES = "Pa'ss\"" + "k3y" * 30  # repr() escapes it: \' (a form the masker did not know)


@pytest.mark.parametrize(
    ("secret", "steps"),
    [
        # `| arg` refuses a value starting with '-', and its message quoted the value
        ("-" + SECRET, "steps:\n  - {id: a, run: 'some-client -- {{ token | arg }}'}\n"),
        # Jinja's message for a missing key quotes the key: `has no attribute '...'`
        (
            BOTH_QUOTES,
            "vars: {table: {a: 1}}\nsteps:\n  - {id: a, run: 'echo {{ table[token] }}'}\n",
        ),
        # the same error in a called runbook, whose param is secret (the caller's is not)
        (
            BOTH_QUOTES,
            "steps:\n  - {id: c, call: inner, with: {pw: '{{ token }}'}}\n",
        ),
    ],
    ids=["arg", "lookup", "lookup-in-call"],
)
@pytest.mark.parametrize("command", ["plan", "run", "--debug"])
def test_an_error_found_while_planning_shows_no_secret(
    workdir: Path, capsys: pytest.CaptureFixture[str], secret: str, steps: str, command: str
) -> None:
    """Every `run` plans first: these stopped it with exit 2, printing the value."""
    secret_in = "false" if "call:" in steps else "true"
    write_runbook(
        workdir,
        "s",
        f"runbook: s\nparams: {{token: {{type: string, secret: {secret_in}, required: true}}}}\n"
        + steps,
    )
    write_runbook(
        workdir,
        "inner",
        "runbook: inner\nparams: {pw: {type: string, secret: true, required: true}}\n"
        "vars: {table: {a: 1}}\nsteps:\n  - {id: a, run: 'echo {{ table[pw] }}'}\n",
    )
    args = ["-p", f"token={secret}"]
    if command == "--debug":  # the traceback, not the one line
        with pytest.raises(InvalidInput) as caught:
            main(["--debug", "plan", "s", *args])
        shown = "".join(traceback.format_exception(caught.value))
    else:
        assert main([command, "s", *args, *(["--yes"] if command == "run" else [])]) == 2
        shown = "".join(capsys.readouterr())
    assert "***" in shown
    assert leaks(shown, secret) == []


@pytest.mark.parametrize(
    ("secret", "var"),
    [
        (BOTH_QUOTES, "'{{ token }}'"),  # repr escapes its ' as \'
        (SECRET + "\x7f", "'{{ token }}'"),  # repr writes \x7f, JSON \u007f
        (SECRET, "'said \"{{ token }}\"'"),  # a ' of the secret escaped by the value's quotes
    ],
    ids=["both-quotes", "control-char", "inside-a-value"],
)
def test_a_when_reason_shows_no_secret_whatever_repr_makes_of_it(
    workdir: Path, capsys: pytest.CaptureFixture[str], secret: str, var: str
) -> None:
    write_runbook(
        workdir,
        "s",
        "runbook: s\nparams: {token: {type: string, secret: true, required: true}}\n"
        f"vars: {{v: {var}}}\n"
        "steps:\n  - {id: w, run: 'true', when: \"v == 'x'\"}\n",
    )
    assert main(["plan", "s", "-p", f"token={secret}"]) == 0
    assert main(["run", "s", "--yes", "-p", f"token={secret}"]) == 0
    shown = "".join(capsys.readouterr())
    files = "".join(p.read_text() for p in (workdir / "state").rglob("*.jsonl"))
    assert "where v=" in shown and "where v=" in files
    assert leaks(shown + files.replace("\\\\", "\\"), secret) == []


@pytest.mark.parametrize(
    ("secret", "command"),
    [
        # one line of 70,000 characters with the secret after the 64 Ki cut's start: before, the
        # terminal showed `...aaaSECRE` then `TVALUE...`, each half unmasked (no quote in this
        # secret: no longer quoted form of it made the old cut hold back enough)
        (
            "TOKEN" + "k3y" * 30,
            'python3 -c \'import os,sys; os.write(1, b"a" * 70000 + sys.argv[1].encode()'
            ' + b"b" * 5)\' {{ token }}',
        ),
        # a key of several lines, printed a line at a time: each chunk ended inside it
        (
            "-----BEGIN KEY-----\n" + SECRET + "\n-----END KEY-----",
            "printf '%s\\n' {{ token }} | while IFS= read -r l; do printf '%s\\n' \"$l\";"
            " sleep 0.05; done",
        ),
    ],
    ids=["64k-cut", "multi-line"],
)
def test_live_output_masks_a_secret_whatever_chunks_it_comes_in(
    workdir: Path, capsys: pytest.CaptureFixture[str], no_tty: None, secret: str, command: str
) -> None:
    write_runbook(
        workdir,
        "s",
        "runbook: s\nparams: {token: {type: string, secret: true, required: true}}\n"
        f"steps:\n  - id: a\n    run: {json.dumps(command)}\n",
    )
    assert main(["run", "s", "--yes", "-p", f"token={secret}"]) == 0
    shown = "".join(capsys.readouterr())
    assert "***" in shown
    assert leaks(shown, secret) == []

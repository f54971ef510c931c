"""Issue 18, item 3: state files are never opened through a symlink someone planted in the state
dir, and everything the runner creates has its own mode whatever the umask (real CLI, real files)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_runbook

from runner.cli import main

RUNBOOK = "runbook: rb\nsteps:\n  - {id: a, run: echo a}\n"


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_planted_ledger_symlink_is_refused_and_the_victim_untouched(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "rb", RUNBOOK)
    victim = workdir / "victim"
    victim.write_bytes(b"root:x:0:0\nhalf a line")
    (workdir / "state").mkdir()
    (workdir / "state" / "ledger.jsonl").symlink_to(victim)
    code = main(["run", "rb"])
    assert code == 2
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_bytes() == b"root:x:0:0\nhalf a line"


@pytest.mark.parametrize("planted", ["runs", "ledger.lock", "locks"])
def test_a_planted_directory_or_lock_symlink_is_refused(
    workdir: Path, planted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_runbook(workdir, "rb", RUNBOOK)
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (workdir / "state").mkdir()
    (workdir / "state" / planted).symlink_to(elsewhere)
    assert main(["run", "rb"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_modes_hold_under_umask_000(workdir: Path, umask_000: None) -> None:
    write_runbook(workdir, "rb", RUNBOOK)
    (workdir / "plans").mkdir()
    assert main(["plan", "rb", "-o", str(workdir / "plans" / "p.json")]) == 0
    assert main(["run", "rb"]) == 0
    state = workdir / "state"
    (log,) = (state / "runs").glob("*.jsonl")
    assert main(["audit", "export", log.stem, "--format", "md", "-o", str(workdir / "r.md")]) == 0
    for d in (state / "runs", state / "locks"):
        assert mode(d) == 0o700, d
    for f in (log, state / "ledger.jsonl", state / "ledger.lock", workdir / "plans" / "p.json"):
        assert mode(f) == 0o600, f
    assert mode(workdir / "r.md") == 0o644


# Output files the operator names (`plan -o`, exports, reports, checkpoints, keys) often go to a
# directory others may write: a shared review dir, /tmp. Another local user (nobody, through
# setpriv) plants what it can there before the operator (root) writes.
as_root_with_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)


def as_nobody(*argv: str) -> subprocess.CompletedProcess[bytes]:
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    return subprocess.run(command, capture_output=True, check=False)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory like /tmp: sticky, world-writable, reachable by nobody."""
    d = Path(tempfile.mkdtemp(prefix="runbook-shared-", dir="/tmp"))
    d.chmod(0o1777)
    try:
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture
def a_run(workdir: Path) -> str:
    write_runbook(workdir, "rb", RUNBOOK)
    assert main(["audit", "keygen", "--out", str(workdir / "key")]) == 0
    assert main(["--signing-key", str(workdir / "key"), "run", "rb"]) == 0
    (log,) = (workdir / "state" / "runs").glob("*.jsonl")
    return log.stem


# (name of the file in the shared dir, the command writing it, the mode it must have)
OUTPUTS = {
    "plan": ("p.json", ["plan", "rb", "-o", "{out}"], 0o600),
    "keygen": ("k.pub", ["audit", "keygen", "--out", "{dir}/k"], 0o644),
    "checkpoint": (
        "cp.json",
        ["--signing-key", "key", "audit", "checkpoint", "-o", "{out}"],
        0o644,
    ),
    "export": ("r.md", ["audit", "export", "{run}", "-o", "{out}"], 0o644),
    "report-md": ("q4.md", ["audit", "report", "--format", "md", "-o", "{out}"], 0o644),
    "report-html": ("q4.html", ["audit", "report", "--format", "html", "-o", "{out}"], 0o644),
    "report-json": ("q4.json", ["audit", "report", "--format", "json", "-o", "{out}"], 0o644),
    "report-csv": ("q4.csv", ["audit", "report", "--format", "csv", "-o", "{out}"], 0o644),
    "report-pdf": ("q4.pdf", ["audit", "report", "--format", "pdf", "-o", "{out}"], 0o644),
}
CHROMIUM = shutil.which("chromium")  # the PDF is printed by Chromium (pdf.py), when installed


def outputs() -> list[object]:
    return [
        pytest.param(
            w, marks=pytest.mark.skipif(w == "report-pdf" and not CHROMIUM, reason="no Chromium")
        )
        for w in OUTPUTS
    ]


def write_output(what: str, shared: Path, run_id: str) -> Path:
    name, argv, _ = OUTPUTS[what]
    out = shared / name
    args = [a.format(out=out, dir=shared, run=run_id) for a in argv]
    assert main(args) == 0
    return out


def assert_ours(out: Path, mode: int) -> None:
    st = out.lstat()
    assert stat.S_ISREG(st.st_mode), f"{out} is not a regular file"
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), mode), (
        st.st_uid,
        oct(st.st_mode),
    )
    before = out.read_bytes()
    assert as_nobody("sh", "-c", f"echo tampered >> {out}").returncode != 0
    assert out.read_bytes() == before


@as_root_with_setpriv
@pytest.mark.parametrize("what", outputs())
def test_a_temp_file_planted_by_another_user_does_not_become_the_output(
    what: str, a_run: str, shared: Path
) -> None:
    """The temp file's name was `.NAME.PID.tmp`, and an existing one was opened and used: nobody
    created it (0666) for the coming pids, and the saved plan was nobody's, mode 0666. (The
    reports used no temp file; they go through the same code now.)"""
    name, _, mode = OUTPUTS[what]
    planted = shared / f".{name}.{os.getpid()}.tmp"  # main() runs in this process
    assert as_nobody("sh", "-c", f"umask 0; : > {planted}").returncode == 0
    out = write_output(what, shared, a_run)
    assert_ours(out, mode)


@as_root_with_setpriv
@pytest.mark.parametrize("what", outputs())
def test_an_output_path_planted_as_a_symlink_is_replaced_not_followed(
    what: str, workdir: Path, a_run: str, shared: Path
) -> None:
    """`audit report -o` wrote through a symlink nobody planted there (Chromium too, for a
    PDF): a root-owned file elsewhere was overwritten with the report."""
    victim = workdir / "victim"
    victim.write_text("root's own\n")
    victim.chmod(0o600)
    name, _, mode = OUTPUTS[what]
    assert as_nobody("ln", "-s", str(victim), str(shared / name)).returncode == 0
    out = write_output(what, shared, a_run)
    assert victim.read_text() == "root's own\n"
    assert_ours(out, mode)
    assert out.stat().st_size > 0


@as_root_with_setpriv
def test_import_replaces_a_planted_symlink_not_the_file_it_points_to(
    workdir: Path, shared: Path
) -> None:
    """`import -o DIR` wrote through a symlink planted in DIR/runbooks: the file it points to (the
    operator's own library, imported from the same document earlier) was rewritten."""
    md = workdir / "ops.md"
    md.write_text("# Ops\n\n## Restart\n\n```bash\necho one\n```\n")
    assert main(["import", str(md), "-o", str(workdir / "repo")]) == 0
    (mine,) = (workdir / "repo" / "runbooks").glob("*.yaml")
    before = mine.read_text()
    md.write_text(md.read_text().replace("echo one", "echo two"))
    planted = shared / "runbooks" / mine.name
    assert as_nobody("mkdir", str(shared / "runbooks")).returncode == 0
    assert as_nobody("ln", "-s", str(mine), str(planted)).returncode == 0
    assert main(["import", str(md), "-o", str(shared)]) == 0
    assert mine.read_text() == before
    assert not planted.is_symlink() and "echo two" in planted.read_text()


@as_root_with_setpriv
@pytest.mark.parametrize("planted", ["file", "symlink"])
def test_keygen_refuses_a_private_key_path_someone_else_took(
    workdir: Path, shared: Path, planted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The private key is only ever a new file; a name taken first was a traceback (exit 1)."""
    key = shared / "k"
    victim = workdir / "victim"
    victim.write_text("root's own\n")
    make = ["touch", str(key)] if planted == "file" else ["ln", "-s", str(victim), str(key)]
    assert as_nobody(*make).returncode == 0
    assert main(["audit", "keygen", "--out", str(key)]) == 2
    assert f"{key}: File exists" in capsys.readouterr().err
    assert victim.read_text() == "root's own\n" and not (shared / "k.pub").exists()

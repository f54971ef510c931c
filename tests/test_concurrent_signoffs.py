"""Two people approving one plan, or reviewing one run, at the same moment (four eyes: they often
do it in the same meeting). Each appends to the same sealed journal; both records must land on
one chain, both sealed, and the journal must verify. Real processes released together by a
barrier, many rounds."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

from conftest import write_runbook

from runner.audit.chain import verify_run
from runner.cli import main

ROUNDS, PEOPLE = 12, 4


def _sign(argv: list[str], workdir: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    os.chdir(workdir)
    barrier.wait()
    os._exit(main(argv))


def all_at_once(workdir: Path, argvs: list[list[str]]) -> list[int]:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(argvs))
    procs = [ctx.Process(target=_sign, args=(a, str(workdir), barrier)) for a in argvs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    return [p.exitcode or 0 for p in procs]


def sealed_and_whole(workdir: Path, journal: Path, people: int) -> None:
    verdict = verify_run(journal, keep=True)
    assert verdict.ok, verdict.line()
    assert len(verdict.events) == people
    ledger = [
        json.loads(line) for line in (workdir / "state" / "ledger.jsonl").read_text().splitlines()
    ]
    seals = [e for e in ledger if e.get("journal", "").endswith(journal.name)]
    assert sorted(s["records"] for s in seals) == list(range(1, people + 1))


def test_approvals_of_one_plan_at_once(workdir: Path) -> None:
    for n in range(ROUNDS):  # a plan of its own each round: its own approvals journal
        write_runbook(workdir, "one", f"runbook: one\nsteps: [{{id: a, run: 'true {n}'}}]\n")
        plan = workdir / f"plan-{n}.json"
        assert main(["plan", "one", "-o", str(plan)]) == 0
        codes = all_at_once(
            workdir, [["plan", "approve", str(plan), "--by", f"p{i}"] for i in range(PEOPLE)]
        )
        assert codes == [0] * PEOPLE
        digest = json.loads(plan.read_text())["plan_hash"]
        sealed_and_whole(
            workdir, workdir / "state" / "approvals" / f"approval-{digest}.jsonl", PEOPLE
        )
    assert main(["audit", "verify"]) == 0


def test_reviews_of_one_run_at_once(workdir: Path) -> None:
    write_runbook(workdir, "one", "runbook: one\nsteps: [{id: a, run: 'true'}]\n")
    for _ in range(ROUNDS):
        before = set((workdir / "state" / "runs").glob("*.jsonl"))
        assert main(["run", "one", "--quiet"]) == 0
        (log,) = set((workdir / "state" / "runs").glob("*.jsonl")) - before
        run_id = log.stem
        codes = all_at_once(
            workdir,
            [["audit", "review", run_id, "--by", f"p{i}", "--note", "ok"] for i in range(PEOPLE)],
        )
        assert codes == [0] * PEOPLE
        sealed_and_whole(workdir, workdir / "state" / "reviews" / f"review-{run_id}.jsonl", PEOPLE)
    assert main(["audit", "verify"]) == 0


def _key_of(state: str, barrier: multiprocessing.synchronize.Barrier, out: str) -> None:
    from runner.planning.planfile import _key

    barrier.wait()
    try:
        Path(out).write_bytes(_key(Path(state)))
    except Exception as exc:  # the test reports what went wrong
        Path(out).write_text(f"error: {exc}")
    os._exit(0)


def test_the_first_plans_of_a_state_dir_at_once_share_one_key(tmp_path: Path) -> None:
    """The key for secret params is made on first use: made by one process while another
    reads it, the other read it empty and was told to delete it ("not a key of 32 bytes")."""
    ctx = multiprocessing.get_context("fork")
    for n in range(ROUNDS * 2):
        state = tmp_path / f"state-{n}"
        barrier = ctx.Barrier(PEOPLE)
        outs = [tmp_path / f"key-{n}-{i}" for i in range(PEOPLE)]
        procs = [ctx.Process(target=_key_of, args=(str(state), barrier, str(out))) for out in outs]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        keys = {out.read_bytes() for out in outs}
        assert len(keys) == 1 and len(next(iter(keys))) == 32, keys
        assert (state / "plan-secrets.key").read_bytes() in keys


def test_a_busy_journal_says_who_holds_it_then_waits(workdir: Path) -> None:
    """`checklist run` holds its instance while its runbooks run (minutes, a prompt maybe): a
    colleague's `checklist sign` meanwhile waited without a word. Now it says who holds the
    journal and since when, then goes on as soon as it is free."""
    import subprocess
    import sys
    import time

    (workdir / "checklists").mkdir(exist_ok=True)
    (workdir / "checklists" / "daily.yaml").write_text(
        "checklist: daily\ntitle: Daily\nperiod: daily\nitems:\n  - {id: look, title: Look}\n"
    )
    assert main(["checklist", "start", "daily"]) == 0
    (journal,) = (workdir / "state" / "checklists" / "daily").glob("*.jsonl")
    hold = (
        "import sys, time; from pathlib import Path; from runner.audit.ledger import journal_lock\n"
        f"with journal_lock(Path({str(journal)!r}), Path({str(workdir / 'state')!r})):\n"
        "    print('held', flush=True); time.sleep(1.5)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    start = time.monotonic()
    signer = subprocess.run(
        [sys.executable, "-m", "runner", "checklist", "sign", "daily", "look", "--by", "bob"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    holder.communicate()  # waits, and closes its pipe
    assert signer.returncode == 0, signer.stderr
    assert f"pid {holder.pid}" in signer.stderr and "waiting" in signer.stderr
    assert time.monotonic() - start > 0.5  # it did wait for the holder

#!/usr/bin/env bash
# SSH benchmark: runbook vs the peer-bench ssh ControlMaster baseline (W2, W3), paired runs.
#   W2: 50 `echo step-i` steps on root@127.0.0.1:2222
#   W3: 10 steps on each of 127.0.0.1..127.0.0.20:2222, hosts in parallel (--forks 20)
# Run from anywhere:  bash bench/ssh.sh
# Env: BENCH_N (pairs per comparison, default 5); BENCH_STEPS (steps per host, as peer-bench's
# run.sh reads it: default 50 for W2, 10 for W3); BENCH_ONLY=W2 or W3 (one workload).
# Starts the bench sshd (/work/shared/peer-bench/sshd.sh start 20) and stops it at the end.
# runbook runs as installed software does: with .pyc files for runner/ (compiled first; this
# shell's PYTHONDONTWRITEBYTECODE=1 would otherwise recompile runner/ on every start) and with
# its validation cache (in the temp dir; compare.py's warm-up run fills it).
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=/work/shared/peer-bench
COMPARE="python3 $PEER/compare.py -n ${BENCH_N:-5}"
RUNBOOK=$PWD/.venv/bin/runbook

T=$(mktemp -d /tmp/runbook-ssh-bench.XXXXXX)
export XDG_CACHE_HOME=$T/cache  # never the operator's ~/.cache
"$PWD/.venv/bin/python" -m compileall -q runner  # runner/__pycache__ (git-ignored), as a wheel has
bash "$PEER/sshd.sh" start 20 >/dev/null
trap 'bash "$PEER/sshd.sh" stop >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

python3 - "$T" <<'PY'
import json, os, pathlib, sys
d = pathlib.Path(sys.argv[1])
hosts = {f"w{i}": {"address": f"127.0.0.{i}"} for i in range(1, 21)}
(d / "inv.yaml").write_text(json.dumps({
    "ssh": {"key": "/tmp/bench-ssh/client_ed25519", "known_hosts": "/tmp/bench-ssh/known_hosts",
            "user": "root", "port": 2222},
    "hosts": hosts,
    "groups": {"one": ["w1"], "fan": list(hosts)},
}))
steps = os.environ.get("BENCH_STEPS")
for name, n, target in (("w2", int(steps or 50), "one"), ("w3", int(steps or 10), "fan")):
    lines = [f"runbook: {name}", f"targets: [{target}]", "steps:"]
    for i in range(1, n + 1):
        lines += [f"  - id: step-{i}", f"    run: echo step-{i}"]
    (d / f"{name}.yaml").write_text("\n".join(lines) + "\n")
PY

echo "== machine: $(nproc) cores, $(python3 --version), runbook $($RUNBOOK --version 2>&1), $(ssh -V 2>&1)"
WORKLOADS=${BENCH_ONLY:-W2 W3}
for w in $WORKLOADS; do
  lw=${w,,}
  echo; echo "== $w: A = runbook run (--forks 20), B = bash $PEER/run.sh baseline $w"
  $COMPARE --vs "bash $PEER/run.sh baseline $w" -- \
    "$RUNBOOK" --state-dir "$T/state" run "$T/$lw.yaml" -i "$T/inv.yaml" --forks 20 --quiet \
    | tee "$T/cmp-$w.txt"
done
echo
for w in $WORKLOADS; do
  target=$([ $w = W2 ] && echo 0.8 || echo 0.6)
  python3 - "$T/cmp-$w.txt" "$w" "$target" <<'PY'
import sys
text = open(sys.argv[1]).read().splitlines()
row = next(l for l in text if l.startswith("A/B wall"))
print(f"{sys.argv[2]}: {row.strip()}  (target <= {sys.argv[3]}x)")
PY
done

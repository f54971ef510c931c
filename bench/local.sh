#!/usr/bin/env bash
# Local-work benchmark: runbook vs the plain bash baseline (peer-bench W1), 200 and 1 steps,
# plus absolute start-up figures. Run from anywhere:  bash bench/local.sh
# Env: BENCH_N (pairs per comparison, default 5).  See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."                       # /work/main: `runbook validate runbooks/` is relative
PEER=${PEER_BENCH:-$(cd ../shared/peer-bench 2>/dev/null && pwd || echo /work/shared/peer-bench)}
COMPARE="python3 $PEER/compare.py -n ${BENCH_N:-5}"
BASELINE="bash $PEER/workloads/baseline/W1.sh"  # BENCH_STEPS=N: N x /bin/sh -c "echo step-$i", captured
RUNBOOK=$PWD/.venv/bin/runbook

T=$(mktemp -d /tmp/runbook-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
# as installed software runs (see bench/ssh_common.sh): compiled runner/, its cache in $T
export XDG_CACHE_HOME=$T/cache
"$PWD/.venv/bin/python" -m compileall -q runner
python3 bench/gen.py "$T" 1 200 >/dev/null

echo "== machine: $(nproc) cores, $(python3 --version), runbook $($RUNBOOK --version 2>&1)"
for n in 200 1; do
  echo; echo "== (${n}) $n step(s): A = runbook run, B = bash loop"
  BENCH_STEPS=$n $COMPARE --vs "$BASELINE" -- \
    "$RUNBOOK" --state-dir "$T/state" run "$T/bench-$n.yaml" --quiet | tee "$T/cmp-$n.txt"
done
echo; echo "== start-up: runbook validate runbooks/ (fresh process each run)"
$COMPARE -- "$RUNBOOK" validate runbooks/ | tee "$T/cmp-validate.txt"

python3 - "$T" <<'PY'
import pathlib, sys
t = pathlib.Path(sys.argv[1])

def med(name, label):
    for line in (t / f"cmp-{name}.txt").read_text().splitlines():
        if line.startswith(label):
            return float(line.split()[-2])        # min median max -> median
    raise SystemExit(f"no '{label}' row in cmp-{name}.txt")

a200, b200 = med("200", "A wall s"), med("200", "B wall s")
a1, b1 = med("1", "A wall s"), med("1", "B wall s")
val = med("validate", "A wall s")
rb = (a200 - a1) / 199 * 1000
sh = (b200 - b1) / 199 * 1000
ok = lambda c: "OK" if c else "MISSED"
print()
print("== summary (median wall seconds)")
print(f"runbook : T200 {a200:.3f}  T1 {a1:.3f}  per step {rb:.2f} ms")
print(f"bash    : T200 {b200:.3f}  T1 {b1:.3f}  per step {sh:.2f} ms")
print(f"paired ratio A/B wall, 200 steps {med('200', 'A/B wall'):.2f}, 1 step {med('1', 'A/B wall'):.2f}")
print(f"per-step ratio runbook/bash {rb / sh:.2f}  (target <= 1.30: {ok(rb / sh <= 1.3)})")
print(f"start-up: validate runbooks/ {val:.3f} s, 1-step run {a1:.3f} s  (target <= 0.5 s each: "
      f"{ok(val <= 0.5)}, {ok(a1 <= 0.5)})")
PY

# The per-step ratio above comes from medians of separate comparisons; on a shared, busy machine
# the paired figure is steadier: quadruples A(200) B(200) A(1) B(1), ratio taken within each.
echo; echo "== per step, paired quadruples (bench/perstep.py): A = runbook, B = bash loop"
PEER_BENCH=$PEER python3 bench/perstep.py -n "${BENCH_N:-5}" \
  --a "$RUNBOOK --state-dir $T/state run $T/bench-{n}.yaml --quiet" --b "env BENCH_STEPS={n} $BASELINE"


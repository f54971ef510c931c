# Sourced by bench/ssh.sh and bench/peers.sh: the peer-bench location, a temp dir, the bench
# sshd (127.0.0.1..20:2222, started here and stopped on exit), and the runbook side of W2/W3:
#   $T/inv.yaml  hosts w1..w20, groups one = [w1] and fan = all 20
#   $T/w2.yaml   BENCH_STEPS (default 50) `echo step-i` steps on `one`
#   $T/w3.yaml   BENCH_STEPS (default 10) steps on `fan`
# PEER_BENCH overrides where peer-bench is (default: ../shared/peer-bench beside the repository).
# runbook runs as installed software does: runner/ compiled to .pyc first (this shell's
# PYTHONDONTWRITEBYTECODE=1 would otherwise recompile it on every start), and its start-up cache
# in the temp dir (never the operator's ~/.cache; compare.py's warm-up run fills it).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PEER=${PEER_BENCH:-$(cd ../shared/peer-bench 2>/dev/null && pwd || echo /work/shared/peer-bench)}
[ -f "$PEER/compare.py" ] || { echo "no peer-bench at $PEER (set PEER_BENCH)" >&2; exit 2; }
COMPARE="python3 $PEER/compare.py -n ${BENCH_N:-5}"
RUNBOOK=$PWD/.venv/bin/runbook

T=$(mktemp -d /tmp/runbook-ssh-bench.XXXXXX)
export XDG_CACHE_HOME=$T/cache
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

runbook_cmd() {  # the runbook side of workload $1 (W2 or W3)
  local lw=${1,,}
  echo "$RUNBOOK --state-dir $T/state run $T/$lw.yaml -i $T/inv.yaml --forks 20 --quiet"
}

ratio_line() {  # FILE LABEL: the paired wall ratio row of a compare.py output
  python3 - "$1" "$2" <<'PY'
import sys
row = next(l for l in open(sys.argv[1]).read().splitlines() if l.startswith("A/B wall"))
print(f"{sys.argv[2]}: {row.strip()}")
PY
}

echo "== machine: $(nproc) cores, $(python3 --version), runbook $($RUNBOOK --version 2>&1), $(ssh -V 2>&1)"

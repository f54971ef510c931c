#!/usr/bin/env bash
# SSH benchmark: runbook vs the peer-bench ssh ControlMaster baseline (W2, W3), paired runs.
#   W2: 50 `echo step-i` steps on root@127.0.0.1:2222
#   W3: 10 steps on each of 127.0.0.1..127.0.0.20:2222, hosts in parallel (--forks 20)
# Run from anywhere:  bash bench/ssh.sh
# Env: BENCH_N (pairs per comparison, default 5); BENCH_STEPS (steps per host, as peer-bench's
# run.sh reads it: default 50 for W2, 10 for W3); BENCH_ONLY=W2 or W3 (one workload).
# The sshd, the files and how runbook is run: bench/ssh_common.sh.
set -euo pipefail
source "$(dirname "$0")/ssh_common.sh"

WORKLOADS=${BENCH_ONLY:-W2 W3}
for w in $WORKLOADS; do
  echo; echo "== $w: A = runbook run (--forks 20), B = bash $PEER/run.sh baseline $w"
  $COMPARE --vs "bash $PEER/run.sh baseline $w" -- $(runbook_cmd $w) | tee "$T/cmp-$w.txt"
done
echo
for w in $WORKLOADS; do
  target=$([ $w = W2 ] && echo 0.45 || echo 0.35)
  ratio_line "$T/cmp-$w.txt" "$w (target <= ${target}x)"
done

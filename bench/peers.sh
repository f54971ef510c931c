#!/usr/bin/env bash
# runbook against the tools operators already use, on the same SSH work: W2 (50 steps, one host)
# and W3 (10 steps on each of 20 hosts), paired runs, A = runbook, B = the peer; A/B < 1: we win.
# Optional: installs ansible-core, pyinfra and fabric (latest) into their own venv with
# peer-bench's peers.sh (PEERS_VENV, default /tmp/peers-venv), never into the project's .venv.
# Run from anywhere:  bash bench/peers.sh      (~6 min: Ansible takes 10-25 s a run)
# Env: BENCH_N (pairs, default 3), PEERS (default "ansible pyinfra fabric"), BENCH_ONLY=W2|W3.
set -euo pipefail
BENCH_N=${BENCH_N:-3}
source "$(dirname "$0")/ssh_common.sh"

bash "$PEER/peers.sh"
WORKLOADS=${BENCH_ONLY:-W2 W3}
for peer in ${PEERS:-ansible pyinfra fabric}; do
  for w in $WORKLOADS; do
    echo; echo "== $w: A = runbook run (--forks 20), B = bash $PEER/run.sh $peer $w"
    $COMPARE --vs "bash $PEER/run.sh $peer $w" -- $(runbook_cmd $w) | tee "$T/cmp-$peer-$w.txt"
  done
done
echo
for peer in ${PEERS:-ansible pyinfra fabric}; do
  for w in $WORKLOADS; do
    ratio_line "$T/cmp-$peer-$w.txt" "$w runbook/$peer"
  done
done

#!/usr/bin/env bash
# Issue 17: what an imperfect network and communication-saving gossip do to training
# (experiments/networks/fashion.yaml: Fashion-MNIST MLP, 16 nodes, 3 epochs, seeds 1-3;
# tables: mean ± sample std over the seeds, figures: mean curves with a ± std band).
#   1. lost messages: dmsgd and gt on ring, dmsgd and sgp on onepeer_exp, network.drop 0,
#      0.01, 0.1: final test accuracy and consensus distance (rows: algorithm, cols: drop)
#   2. compressed gossip: choco with top_k 1%, qsgd (16 levels), sign (consensus_step
#      0.05) against dmsgd on onepeer_exp: final accuracy, bytes sent, bytes to reach 80%
#   3. figures: networks_drop.png (test_acc vs iteration at drop 0.1), networks_choco.png
#      (test_acc vs bytes_sent)
# Usage: experiments/networks/run.sh [RESULTS_DIR]   (prints the tables; figures go to
# RESULTS_DIR, default results/). Environment: EXPGRAPH, RUNS, EG_REPRO_SET as in
# experiments/reproduce.sh. Finished runs are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
runs=${RUNS:-$here/runs}
res=${1:-$here/results}
cd "$here"
mkdir -p "$res"
extra=()
IFS=';' read -r -a sets <<< "${EG_REPRO_SET:-}"
for s in "${sets[@]}"; do [ -n "$s" ] && extra+=(--set "$s"); done
spec=experiments/networks/fashion.yaml
# a point that diverges (sgp at drop 0.1 does) is a result, not a failure of the script
sw() { "$exe" sweep "$spec" "${extra[@]}" "$@" --quiet >/dev/null || true; }
sw --set graph=ring --set 'sweep={algorithm.name: [dmsgd, gt], network.drop: [0, 0.01, 0.1], seed: [1, 2, 3]}' --out "$runs/networks-ring"
sw --set graph=onepeer_exp --set 'sweep={algorithm.name: [dmsgd, sgp], network.drop: [0, 0.01, 0.1], seed: [1, 2, 3]}' --out "$runs/networks-onepeer"
one() { # one DIR SET...: one run unless finished
  local d=$1; shift
  [ -e "$d/summary.csv" ] || "$exe" run "$spec" "${extra[@]}" "$@" --out "$d" --quiet --force
}
ch=$runs/networks-choco
for seed in 1 2 3; do
  one "$ch/compress=none,seed=$seed" --set graph=onepeer_exp --set seed=$seed
  for c in "top_k|{name: top_k, ratio: 0.01}" "qsgd|{name: qsgd, levels: 16}" "sign|sign"; do
    one "$ch/compress=${c%%|*},seed=$seed" --set graph=onepeer_exp --set seed=$seed \
      --set "algorithm={name: choco, momentum: 0.9, weight_decay: 1.0e-4, compress: ${c#*|}, consensus_step: 0.05}"
  done
done
for g in ring onepeer; do
  for m in test_acc consensus; do
    echo "### $g: final $m (rows: algorithm, columns: network.drop)"
    echo
    "$exe" table "$runs/networks-$g" --rows algorithm --cols network.drop --metric "$m"
    echo
  done
done
for m in test_acc bytes_sent 'reach:test_acc>=0.8'; do
  echo "### onepeer_exp, compressed gossip: ${m} (compress=none: dmsgd)"
  echo
  if [ "$m" = 'reach:test_acc>=0.8' ]; then
    "$exe" table "$ch" --rows compress --metric "$m" --at bytes_sent
  else
    "$exe" table "$ch" --rows compress --metric "$m"
  fi
  echo
done
"$exe" plot "$runs"/networks-ring/*network.drop=0.1* "$runs"/networks-onepeer/*network.drop=0.1* \
  --y test_acc --x iter --title "Fashion-MNIST, 16 nodes, drop 0.1" -o "$res/networks_drop.png"
"$exe" plot "$ch" --y test_acc --x bytes_sent --title "Fashion-MNIST, onepeer_exp: accuracy vs bytes" \
  -o "$res/networks_choco.png"

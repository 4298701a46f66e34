#!/usr/bin/env bash
# Lost messages under label skew (experiments/networks/skew.yaml): dmsgd, qg_dmsgd, ed, sgp
# and gt on a 16-node ring, Fashion-MNIST split by dirichlet(0.1), network.drop 0 / 0.01 /
# 0.1, seeds 1-3 (45 runs, ~12 min on 2 cores), and psgd (all-reduce, reliable) as the
# reference. Prints the tables (final test accuracy of x_bar and the nodes' own, paired
# differences to the reliable network per algorithm with 95% t intervals, consensus) and
# writes RESULTS_DIR/networks_skew.png (test_acc per epoch at drop 0.01).
# Usage: experiments/networks/skew.sh [RESULTS_DIR]   (default results/). Environment:
# EXPGRAPH, RUNS as in experiments/reproduce.sh. Finished runs are skipped. A run that
# diverges is a result (a '-' cell: the run stopped with a non-finite loss), not a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
runs=${RUNS:-$here/runs}
res=${1:-$here/results}
cd "$here"
mkdir -p "$res"
spec=experiments/networks/skew.yaml
"$exe" sweep "$spec" --out "$runs/networks-skew" --quiet >/dev/null || true
"$exe" sweep "$spec" --set algorithm.name=psgd --set 'sweep={seed: [1, 2, 3]}' \
  --out "$runs/networks-skew-psgd" --quiet >/dev/null || true
t=("$exe" table "$runs/networks-skew")
echo "Fashion-MNIST, MLP 784-256-10, 16 nodes on a ring, dirichlet(0.1), 10 epochs, seeds 1-3."
echo
echo "### psgd (all-reduce over a reliable network): the reference"
echo
"$exe" table "$runs/networks-skew-psgd" --rows algorithm --metric test_acc
echo
for m in test_acc node_acc_mean; do
  echo "### final $m (rows: algorithm, columns: network.drop; mean ± std over 3 seeds, '-': diverged)"
  echo
  "${t[@]}" --rows algorithm --cols network.drop --metric "$m"
  echo
done
echo "### test_acc: paired difference to the reliable network (drop 0), same algorithm and seed"
echo
"${t[@]}" --rows algorithm --cols network.drop --metric test_acc --vs network.drop=0
echo
echo "### test_acc: paired difference to dmsgd (plain gossip), same drop rate and seed"
echo
"${t[@]}" --rows network.drop --cols algorithm --metric test_acc --vs algorithm=dmsgd
echo
echo "### final consensus distance"
echo
"${t[@]}" --rows algorithm --cols network.drop --metric consensus
echo
"$exe" plot "$runs"/networks-skew/*network.drop=0.01* --y test_acc --x epoch \
  --title "Fashion-MNIST MLP, ring of 16, dirichlet(0.1), 1% of messages lost" -o "$res/networks_skew.png"

#!/usr/bin/env bash
# Runs both algorithm sweeps (skipping finished points) and prints their tables:
# final test accuracy, test loss and consensus distance, algorithm x graph.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
cd "$here"
for s in synthetic mnist; do
  "$exe" sweep "experiments/algorithms/$s.yaml" --quiet >/dev/null
  root=runs/algos-$s
  if [ "$s" = synthetic ]; then metrics="train_loss consensus"; else metrics="test_acc consensus"; fi
  for m in $metrics; do
    echo "### $s: final $m (rows: algorithm, columns: graph)"
    echo
    "$exe" table "$root" --rows algorithm --cols graph --metric "$m"
    echo
  done
done

# The quick-start claim: DmSGD over one-peer exp vs all-reduce (psgd) on the quick-start
# spec, and ring / exp beside it at n = 16 and 64, with the final consensus distance.
"$exe" sweep experiments/quickstart.yaml --set 'sweep={graph: [onepeer_exp, exp, ring], nodes: [16, 64]}' \
  --out runs/quickstart-graphs --quiet >/dev/null
"$exe" sweep experiments/quickstart.yaml --set algorithm.name=psgd --set graph=full --set 'sweep={nodes: [16, 64]}' \
  --out runs/quickstart-psgd --quiet >/dev/null
echo "### quick-start MNIST MLP: final test accuracy (rows: graph, 'full' = psgd all-reduce)"
echo
"$exe" table runs/quickstart-graphs runs/quickstart-psgd --rows graph --cols nodes --metric test_acc
echo
echo "### quick-start MNIST MLP: final consensus distance"
echo
"$exe" table runs/quickstart-graphs --rows graph --cols nodes --metric consensus

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
  for m in test_acc test_loss consensus; do
    echo "### $s: final $m (rows: algorithm, columns: graph)"
    echo
    "$exe" table "$root" --rows algorithm --cols graph --metric "$m"
    echo
  done
done

#!/usr/bin/env bash
# Runs both algorithm sweeps (skipping finished points) and prints their tables:
# final test accuracy, test loss and consensus distance, algorithm x graph. The MNIST
# sweeps run three seeds (tables: mean ± sample std over them); the synthetic problem is
# full-batch, the setting of the theory, and runs one seed.
# Environment: EXPGRAPH (the binary), RUNS (run root, default runs/), EG_REPRO_SET (extra
# ';'-separated --set overrides for every sweep, as in experiments/reproduce.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
runs=${RUNS:-$here/runs}
cd "$here"
extra=()
IFS=';' read -r -a sets <<< "${EG_REPRO_SET:-}"
for s in "${sets[@]}"; do [ -n "$s" ] && extra+=(--set "$s"); done
for s in synthetic mnist; do
  root=$runs/algos-$s
  "$exe" sweep "experiments/algorithms/$s.yaml" "${extra[@]}" --out "$root" --quiet >/dev/null
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
"$exe" sweep experiments/quickstart.yaml --set 'sweep={graph: [onepeer_exp, exp, ring], nodes: [16, 64], seed: [1, 2, 3]}' \
  "${extra[@]}" --out "$runs/quickstart-graphs" --quiet >/dev/null
"$exe" sweep experiments/quickstart.yaml --set algorithm.name=psgd --set graph=full \
  --set 'sweep={nodes: [16, 64], seed: [1, 2, 3]}' "${extra[@]}" --out "$runs/quickstart-psgd" --quiet >/dev/null
echo "### quick-start MNIST MLP: final test accuracy (rows: graph, 'full' = psgd all-reduce; mean ± std over 3 seeds)"
echo
"$exe" table "$runs/quickstart-graphs" "$runs/quickstart-psgd" --rows graph --cols nodes --metric test_acc
echo
echo "### quick-start MNIST MLP: iterations until test accuracy >= 97% (evaluated every 200 iterations)"
echo
"$exe" table "$runs/quickstart-graphs" "$runs/quickstart-psgd" --rows graph --cols nodes --metric 'reach:test_acc>=0.97'
echo
echo "### quick-start MNIST MLP: final consensus distance"
echo
"$exe" table "$runs/quickstart-graphs" --rows graph --cols nodes --metric consensus

#!/usr/bin/env bash
# The paper's claim on its model class near convergence (experiments/resnet20/converged.yaml):
# ResNet-20 with batch norm in bf16 on Fashion-MNIST, 16 nodes of batch 32, 10 epochs.
#   1. runs, two processes side by side (one per partition, IID and dirichlet(0.1)), each:
#      psgd (all-reduce) seeds 1-3, then DmSGD over ring, exp and onepeer_exp seeds 1-3
#      (seed by seed), then psgd seed 1 at 16 epochs: the budget check. 26 runs, ~2.4 hours
#      on 2 cores (~1,100 samples/s per process; each 16-epoch run ~16 min of it).
#   2. tables (RESULTS_DIR/resnet20_converged.md): the budget check (all-reduce at 10 and at
#      16 epochs, per partition), then per partition the final test accuracy of x_bar and of
#      the nodes' own models (mean ± std over the seeds) and the paired differences to
#      all-reduce and to onepeer_exp (95% t intervals; table --vs);
#   3. figures: test accuracy per epoch (mean ± std over the seeds), one per partition
#      (RESULTS_DIR/resnet20_converged_{iid,dirichlet}.png).
# Usage: experiments/resnet20/converged.sh [RESULTS_DIR]   (default results/). Environment:
# EXPGRAPH, RUNS as in experiments/reproduce.sh. Finished runs are skipped and an
# interrupted one continues from its checkpoint, so the script can be rerun after a stop.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
runs=${RUNS:-$here/runs}/resnet20-converged
res=${1:-$here/results}
cd "$here"
mkdir -p "$res" "$runs"
spec=experiments/resnet20/converged.yaml
. experiments/lib.sh
. experiments/resnet20/lib.sh
psgd=(--set algorithm.name=psgd --set graph=full)
# two processes side by side, each with half the cores (one thread each on 2 cores: no
# OpenMP waits when the machine is shared); the thread count never changes the numbers (the
# times above are for 2 cores; more cores were not measured)
cores=$(nproc 2>/dev/null || echo 2)
export EXPGRAPH_THREADS=${EXPGRAPH_THREADS:-$((cores / 2 > 1 ? cores / 2 : 1))}
lane() { # lane PARTITION: its runs, in the order that leaves whole seeds if stopped early
  local p=$1
  "$exe" sweep "$spec" --quiet --set "data.partition=$p" "${psgd[@]}" \
    --set 'sweep={seed: [1, 2, 3]}' --out "$runs/$p-psgd" >/dev/null || true
  "$exe" sweep "$spec" --quiet --set "data.partition=$p" --out "$runs/$p" >/dev/null || true
  run_unless_done "$runs/$p-psgd-16ep" "$spec" --quiet --set "data.partition=$p" "${psgd[@]}" \
    --set 'sweep={}' --set train.epochs=16 >/dev/null || true
}
lane iid &
a=$!
lane dirichlet &
b=$!
wait $a $b

# the runs of one partition, in the tables' row order (rows come in the order of their first run)
runs_of() { # (finished or not: an unfinished run shows its last evaluation)
  local g
  for g in ring exp onepeer_exp; do ls -d "$runs/$1"/seed=*",graph=$g" 2>/dev/null || true; done
  ls -d "$runs/$1-psgd"/seed=* 2>/dev/null || true
}
title_of() { # title_of PARTITION: its name in the tables' headings
  case $1 in iid) echo "IID shards" ;; dirichlet) echo "dirichlet(0.1) label skew" ;; esac
}
mapfile -t iid < <(runs_of iid)
mapfile -t dir < <(runs_of dirichlet)
{
  echo "# ResNet-20 on Fashion-MNIST near convergence: graphs against all-reduce, IID and dirichlet(0.1)"
  echo
  made_by experiments/resnet20/converged.sh "${iid[@]}" "${dir[@]}" "$runs"/*-psgd-16ep
  echo "ResNet-20 (batch norm, each node's own running"
  echo "statistics; bf16 layers), Fashion-MNIST with crop + flip, 16 nodes of batch 32, DmSGD momentum"
  echo "0.9 (weight decay 5e-4 except on norms and biases), lr 0.2 with a half-epoch warm-up and"
  echo "cosine decay, 10 epochs (1,170 iterations); seeds 1-3; full is psgd (all-reduce)."
  echo
  echo "## The budget: all-reduce at 10 and at 16 epochs"
  echo
  echo "Final test accuracy of x_bar (16 epochs: seed 1 only), and the difference of seed 1 at"
  echo "16 epochs to the same seed at 10:"
  echo
  for p in iid dirichlet; do
    d16=$runs/$p-psgd-16ep
    [ -e "$d16/summary.csv" ] || continue
    echo "$(title_of "$p"):"
    echo
    "$exe" table "$runs/$p-psgd"/seed=* "$d16" --rows train.epochs --metric test_acc
    echo
    "$exe" table "$runs/$p-psgd/seed=1" "$d16" --rows train.epochs --metric test_acc --vs train.epochs=10
    echo
  done
  acc_section "$(title_of iid)" "${iid[@]}"
  acc_section "$(title_of dirichlet)" "${dir[@]}"
} > "$res/resnet20_converged.md"
for part in iid dirichlet; do
  case $part in iid) set -- "${iid[@]}"; what=IID ;; dirichlet) set -- "${dir[@]}"; what="dirichlet(0.1)" ;; esac
  [ -e "${1-}" ] || continue
  "$exe" plot "$@" --y test_acc --x epoch \
    --title "Fashion-MNIST ResNet-20, n = 16, $what: test accuracy of x_bar (mean ± std, 3 seeds)" \
    -o "$res/resnet20_converged_$part.png"
done
echo "wrote $res/resnet20_converged.md and $res/resnet20_converged_{iid,dirichlet}.png"

#!/usr/bin/env bash
# The base-graph question in the published Fashion-MNIST setup (experiments/basegraph/
# lenet_fashion.yaml: LeNet-5 with group norm, 25 nodes, dirichlet(0.1), 10% of each shard
# held out for validation, DmSGD momentum 0.9, cosine schedule with warm-up).
#   1. learning-rate choice: every graph (ring, onepeer_exp, exp, base with 1 peer) and psgd
#      at lr 0.1, 0.01, 0.001 with seed 1; the rate with the best final val_acc (x_bar on
#      the held-out data, never the test set) is chosen per graph;
#   2. seeds 1-8 at the chosen rates (seed 1 is the selection run itself);
#   3. twice the budget for base and onepeer_exp (the question this experiment asks), the
#      same seeds at the chosen rates;
#   4. tables: the choice, node_acc_mean (the nodes' own test accuracy at the last epoch, the
#      published metric) and test_acc of x_bar with mean ± std, and paired differences to
#      onepeer_exp with 95% t intervals (table --vs: each graph runs at its own chosen rate,
#      constant along its row, so the seed pairs the runs); a figure of node_acc_mean per epoch.
# Usage: experiments/basegraph/run.sh [RESULTS_DIR]   (writes RESULTS_DIR/basegraph.md and
#        basegraph_acc.png; default results/). Environment: EXPGRAPH, RUNS as in
#        experiments/reproduce.sh; EPOCHS (default 20, warm-up a tenth of it), SEEDS
#        (default "1 2 3 4 5 6 7 8"). Finished runs are skipped, so an interrupted run continues.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
runs=${RUNS:-$here/runs}/basegraph
res=${1:-$here/results}
epochs=${EPOCHS:-20}
seeds=${SEEDS:-1 2 3 4 5 6 7 8}
cd "$here"
mkdir -p "$res" "$runs"
spec=experiments/basegraph/lenet_fashion.yaml
warm=$(awk -v e="$epochs" 'BEGIN { printf "%g", e / 10 }')
ipe=67 # iterations per epoch: 25 nodes x 32 = 800 samples of the 54,000 kept for training
common=(--set "train.epochs=$epochs" --set "lr.warmup_epochs=$warm"
        --set "train.log_every=$ipe" --set "train.eval_every=$((ipe * 10))")
t0=$(date +%s)
step() { echo "[$(($(date +%s) - t0))s] $*" >&2; }
graphs=("ring" "onepeer_exp" "exp" "{name: base, peers: 1}" "full")
dirname_of() { # the sweep's directory name of a graph value
  case $1 in "{name: base, peers: 1}") echo namebase_peers1 ;; *) echo "$1" ;; esac
}
. experiments/lib.sh
one() { # one DIR SET...: a run unless finished (an interrupted one continues)
  local d=$1; shift
  run_unless_done "$d" "$spec" "${common[@]}" "$@" --quiet
}
final_val_acc() { # the last val_acc in DIR/metrics.csv
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "val_acc") c = i; next }
    c && $c != "" { v = $c } END { print v }' < "$1/metrics.csv"
}
algo_of() { [ "$1" = full ] && echo psgd || echo dmsgd; }

step "1. learning-rate choice (seed 1): 5 graphs x lr 0.1, 0.01, 0.001, $epochs epochs"
for g in "${graphs[@]}"; do
  for lr in 0.1 0.01 0.001; do
    one "$runs/select/graph=$(dirname_of "$g"),lr.base=$lr,seed=1" --set "graph=$g" \
      --set "algorithm.name=$(algo_of "$g")" --set "lr.base=$lr" --set seed=1
  done
done
declare -A chosen
for g in "${graphs[@]}"; do
  dn=$(dirname_of "$g")
  best=$(for lr in 0.1 0.01 0.001; do
    echo "$(final_val_acc "$runs/select/graph=$dn,lr.base=$lr,seed=1") $lr"
  done | sort -g -k1,1 | tail -1 | cut -d' ' -f2)
  chosen[$dn]=$best
  step "   $dn: lr $best"
done

step "2. seeds $seeds at the chosen rates"
mkdir -p "$runs/final"
for g in "${graphs[@]}"; do
  dn=$(dirname_of "$g")
  lr=${chosen[$dn]}
  for s in $seeds; do
    d="$runs/final/graph=$dn,seed=$s"
    if [ "$s" = 1 ] && [ ! -e "$d/summary.csv" ]; then
      rm -rf "$d"; cp -r "$runs/select/graph=$dn,lr.base=$lr,seed=1" "$d"
    fi
    one "$d" --set "graph=$g" --set "algorithm.name=$(algo_of "$g")" --set "lr.base=$lr" --set "seed=$s"
  done
done

long=$((epochs * 2))
step "3. base and onepeer_exp at $long epochs (the rates chosen above), seeds $seeds"
for g in onepeer_exp "{name: base, peers: 1}"; do
  dn=$(dirname_of "$g")
  for s in $seeds; do
    d="$runs/long/graph=$dn,seed=$s"
    [ -e "$d/summary.csv" ] || "$exe" run "$spec" --set "train.epochs=$long" \
      --set "lr.warmup_epochs=$(awk -v e="$long" 'BEGIN { printf "%g", e / 10 }')" \
      --set "train.log_every=$ipe" --set "train.eval_every=$((ipe * 10))" --set "graph=$g" \
      --set "lr.base=${chosen[$dn]}" --set "seed=$s" --out "$d" --quiet --force
  done
done

step "4. tables"
nseeds=$(echo $seeds | wc -w)
{
  echo "LeNet-5 with group norm (44,470 parameters) on Fashion-MNIST, 25 nodes, dirichlet(0.1),"
  echo "batch 32 per node, DmSGD (momentum 0.9; 'full' is psgd, all-reduce), cosine schedule with"
  echo "a $warm-epoch warm-up, $epochs epochs, 10% of each node's shard held out for validation."
  echo
  echo "Learning-rate choice (seed 1): final val_acc of x_bar on the held-out data."
  echo
  "$exe" table "$runs/select" --rows graph --cols lr.base --metric val_acc
  echo
  echo "Chosen: $(for g in "${graphs[@]}"; do dn=$(dirname_of "$g"); printf '%s %s; ' "$dn" "${chosen[$dn]}"; done)"
  echo
  echo "At the chosen rates, seeds $seeds: the nodes' own test accuracy at the last epoch"
  echo "(node_acc_mean, the published metric), mean ± sample std over $nseeds seeds:"
  echo
  "$exe" table "$runs/final" --rows graph --metric node_acc_mean
  echo
  echo "Paired differences to onepeer_exp (same seed: same data split and initialisation), mean"
  echo "and 95% t interval over the $nseeds pairs; '*': the interval excludes 0:"
  echo
  "$exe" table "$runs/final" --rows graph --metric node_acc_mean --vs graph=onepeer_exp
  echo
  echo "The same for x_bar's test accuracy (test_acc):"
  echo
  "$exe" table "$runs/final" --rows graph --metric test_acc --vs graph=onepeer_exp
  echo
  echo "Final consensus distance:"
  echo
  "$exe" table "$runs/final" --rows graph --metric consensus
  echo
  echo "Twice the budget ($long epochs, warm-up a tenth), base and onepeer_exp at the rates chosen"
  echo "above, seeds $seeds: paired differences to onepeer_exp (node_acc_mean, then test_acc):"
  echo
  "$exe" table "$runs/long" --rows graph --metric node_acc_mean --vs graph=onepeer_exp
  echo
  "$exe" table "$runs/long" --rows graph --metric test_acc --vs graph=onepeer_exp
} > "$res/basegraph.md"
"$exe" plot "$runs/final" --y node_acc_mean --x epoch \
  --title "LeNet-5 GN, Fashion-MNIST, n = 25, dirichlet(0.1): nodes' test accuracy ($nseeds seeds)" \
  -o "$res/basegraph_acc.png"
step "done: $res/basegraph.md"

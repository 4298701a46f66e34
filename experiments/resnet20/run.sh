#!/usr/bin/env bash
# ResNet-20 (batch norm, bf16) on Fashion-MNIST at a fixed budget, and the time each graph
# would take on a modelled GPU cluster (experiments/resnet20/fashion.yaml; the recursion is
# in docs/timemodel.md):
#   1. runs: ring, exp, onepeer_exp, base (1 peer) and psgd (all-reduce), seeds 1-3, 2 epochs,
#      IID shards: n = 16 (lr 0.1) and n = 64 (lr 0.2); 30 runs, two single-threaded
#      processes side by side (one per n), ~1.5-2 hours on 2 cores.
#   2. tables (RESULTS_DIR/resnet20.md): final accuracy with paired differences to psgd and
#      to onepeer_exp (95% t intervals over the seeds); the modelled time per iteration of
#      each graph on four clusters (expgraph graph --cluster); the modelled time to reach a
#      target test accuracy (TARGET16, TARGET64) on each cluster, paired to onepeer_exp;
#   3. figures: test accuracy against modelled hours, n = 16 and 64, at 25 and 1 Gbit/s.
# The four clusters (clusters/*.yaml): 8-GPU servers at 25 Gbit/s (the spec's own) and at
# 1 Gbit/s, each with and without 1% stragglers; table/plot --cluster recompute time_model_s
# from each run's spec for them, so one set of training runs serves all four.
# Usage: experiments/resnet20/run.sh [RESULTS_DIR]   (default results/). Environment:
# EXPGRAPH, RUNS as in experiments/reproduce.sh; TARGET16, TARGET64 (defaults 0.85 and 0.65, which
# every graph reaches within the budget).
# Finished runs are skipped, so an interrupted run continues.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
runs=${RUNS:-$here/runs}/resnet20
res=${1:-$here/results}
t16=${TARGET16:-0.85}
t64=${TARGET64:-0.65}
cd "$here"
mkdir -p "$res" "$runs"
spec=experiments/resnet20/fashion.yaml
. experiments/resnet20/lib.sh
clusters=experiments/resnet20/clusters
psgd=(--set algorithm.name=psgd --set graph=full --set 'sweep={seed: [1, 2, 3]}')
n64=(--set nodes=64 --set lr.base=0.2 --set train.log_every=10 --set train.eval_every=40
     --set train.checkpoint_every=60)
# one process per core, each single-threaded: the same numbers as one process on two
# threads, and no OpenMP waits when the machine is shared
export EXPGRAPH_THREADS=${EXPGRAPH_THREADS:-1}
sweep() { "$exe" sweep "$spec" --quiet "$@" >/dev/null || true; }
{
  sweep --out "$runs/n16-iid"
  sweep "${psgd[@]}" --out "$runs/n16-iid-psgd"
} &
a=$!
{
  sweep "${n64[@]}" --out "$runs/n64-iid"
  sweep "${n64[@]}" "${psgd[@]}" --out "$runs/n64-iid-psgd"
} &
b=$!
wait $a $b

params=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "bytes_sent") c = i; next }
  NR == 2 { print $c / $1 / 16 / 4; exit }' < "$runs/n16-iid/seed=1,graph=onepeer_exp/metrics.csv")
# the runs of one n, in the tables' row order (rows come in the order of their first run)
runs_of() {
  local g
  for g in ring exp onepeer_exp namebase_peers1; do
    ls -d "$runs/$1"/*",graph=$g"
  done
  ls -d "$runs/$1-psgd"/seed=*
}
mapfile -t iid16 < <(runs_of n16-iid)
mapfile -t iid64 < <(runs_of n64-iid)
{
  echo "# ResNet-20 on Fashion-MNIST: accuracy at a budget, and time on a modelled cluster"
  echo
  made_by experiments/resnet20/run.sh "${iid16[@]}" "${iid64[@]}"
  echo "ResNet-20 (batch norm, bf16), crop + flip, batch 16 per node,"
  echo "DmSGD momentum 0.9, cosine schedule with a quarter-epoch warm-up, 2 epochs;"
  echo "n = 16 at lr 0.1, n = 64 at lr 0.2; seeds 1-3; base is base with 1 peer, full is psgd."
  echo
  acc_section "n = 16, IID shards" "${iid16[@]}"
  acc_section "n = 64, IID shards" "${iid64[@]}"
  echo "## Modelled time per iteration (s) on the four clusters"
  echo
  echo "One dense f32 vector of $params parameters per message, batch 16 at 4,000 samples/s per"
  echo "GPU (4 ms of compute), 8 GPUs per server (\`expgraph graph NAME --nodes 16,64 --cluster F"
  echo "--params $params --batch 16\`; psgd_iter_s is the ring all-reduce's). With stragglers the"
  echo "mean over one period is shown; the training runs below draw them per iteration."
  echo
  echo "| cluster | graph | n = 16 | n = 64 | psgd, n = 16 | psgd, n = 64 |"
  echo "|---|---|---:|---:|---:|---:|"
  for c in 25g 25g-straggler 1g 1g-straggler; do
    for g in ring exp onepeer_exp "{name: base, peers: 1}"; do
      "$exe" graph "$g" --nodes 16,64 --cluster "$clusters/$c.yaml" --params "$params" \
        --batch 16 --iters 60 --format csv |
        awk -F, -v c="$c" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
          { g = $h["graph"]; t[$h["nodes"]] = $h["time_iter_s"]; p[$h["nodes"]] = $h["psgd_iter_s"] }
          END { printf "| %s | %s | %.4f | %.4f | %.4f | %.4f |\n", c, g, t[16], t[64], p[16], p[64] }'
    done
  done
  echo
  for part in iid16 iid64; do
    case $part in
      iid16) set -- "${iid16[@]}"; tgt=$t16; n=16 ;;
      iid64) set -- "${iid64[@]}"; tgt=$t64; n=64 ;;
    esac
    [ -e "${1-}" ] || continue
    echo "## n = $n: modelled seconds until x_bar first reaches test_acc >= $tgt"
    echo
    echo "(mean ± std over the seeds; '(k/m)': only k of m seeds reached it; then the paired"
    echo "difference to onepeer_exp with its 95% t interval.) The accuracy is known only at the"
    echo "evaluations (every $([ "$n" = 16 ] && echo 94 || echo 40) iterations), so a run reaches the target at one of them: seeds"
    echo "that reach it at the same evaluation have the same time without stragglers, and a"
    echo "zero-width interval means that, not a measurement without spread."
    echo
    for c in 25g 25g-straggler 1g 1g-straggler; do
      echo "### $c ($(sed -n 1p "$clusters/$c.yaml" | sed 's/^# //'))"
      echo
      "$exe" table "$@" --rows graph --metric "reach:test_acc>=$tgt" --at time_model_s \
        --cluster "$clusters/$c.yaml"
      echo
      "$exe" table "$@" --rows graph --metric "reach:test_acc>=$tgt" --at time_model_s \
        --cluster "$clusters/$c.yaml" --vs graph=onepeer_exp
      echo
    done
  done
} > "$res/resnet20.md"
for n in 16 64; do
  case $n in 16) set -- "${iid16[@]}" ;; 64) set -- "${iid64[@]}" ;; esac
  [ -e "${1-}" ] || continue
  for c in 25g 1g; do
    "$exe" plot "$@" --y test_acc --x time_model_s --cluster "$clusters/$c.yaml" \
      --title "Fashion-MNIST ResNet-20, n = $n, IID: test accuracy against modelled time ($c cluster)" \
      -o "$res/resnet20_time_n${n}_$c.png"
  done
done
echo "wrote $res/resnet20.md and $res/resnet20_time_n*.png"

#!/usr/bin/env bash
# Reproduces the paper's claims at laptop scale and writes tables and figures into
# results/. Every accuracy table runs three seeds (sweep: seed: [1, 2, 3]) and shows
# mean ± sample standard deviation over them (expgraph table aggregates seeds by default);
# the figures show the mean curve with a ± one-std band. Budget: under 45 minutes on the
# project's 2-core machine (estimate below; the measured time goes into the README).
#   1. rho_table.md       rho and degree of every graph, n = 4 .. 1024 (spectral claim)
#   2. consensus.md, consensus_n16.png, consensus_n64.png
#                         consensus distance vs iteration under pure averaging for ring,
#                         torus, exp, onepeer_exp (exact averaging in log2(n) steps;
#                         deterministic given the models: one seed)
#      topology_base.md, topology_base_n25.png, topology_base_n100.png
#                         the same at n = 6, 12, 24 for onepeer_exp vs base (Takezawa et
#                         al. 2023: exact averaging after one period at any n), and figures
#                         at n = 25, 100 with ring, exp, random_peers too (~20 s)
#   3. accuracy_iid.md, accuracy_dirichlet.md, fashion_acc_n16.png, fashion_acc_n16_dirichlet.png
#                         final test accuracy, graph x nodes (16, 64), DmSGD vs all-reduce,
#                         Fashion-MNIST CNN, 2 epochs, IID and dirichlet(0.1), 3 seeds; epochs
#                         and bytes to reach 85% (the training claim and its speed side)
#   4. traffic.md         bytes sent per node per iteration and training seconds per epoch
#                         for each graph (seed 1; the cost side of the claim)
#   5. algorithms.md      experiments/algorithms/run.sh: every algorithm on MNIST (3 seeds)
#                         and on a heterogeneous synthetic problem (full batch: one seed)
#   6. resnet20_iid.md, resnet20_dirichlet.md, resnet20_loss_n16.png: ResNet-20 (batch norm,
#                         bf16), ring / onepeer_exp vs psgd, n = 4, 16, 0.3 epochs, 3 seeds
#   7. networks.md, networks_drop.png, networks_choco.png: experiments/networks/run.sh:
#                         lost messages (dmsgd, gt, sgp at drop 0 / 0.01 / 0.1) and
#                         compressed gossip (choco top_k / qsgd / sign vs dmsgd), Fashion
#                         MLP, 16 nodes, seeds 1-3 (45 runs)
#   8. graphs_fashion25.md: experiments/graphs/run.sh: ring / exp / onepeer_exp / base vs
#                         psgd at n = 25 (not a power of two), dirichlet(0.1), 3 seeds
# Budget: under 45 minutes on the project's 2-core machine. Per-run wall times measured on
# 2026-12-06 (oneDNN kernels, the fused first CNN layer): Fashion CNN (2 epochs) ~8 s,
# ResNet-20 bf16 (0.3 epochs) ~13 s, Fashion/MNIST MLP runs 2-4 s. Step 3: 48 runs, ~7 min;
# step 5: 96 runs, ~4 min; step 6: 36 runs, ~8 min; steps 7 and 8: 60 MLP runs, ~3.5 min;
# steps 1, 2: ~15 s. The README gives the time of the last full run.
# Finished runs are skipped, so an interrupted reproduction continues where it stopped.
#
# With --full it then runs the findings experiments, each at a budget chosen so that its
# differences can be told from seed noise (paired 95% t intervals), about 3.3 hours more on 2 cores:
#   9. basegraph.md, basegraph_acc.png: experiments/basegraph/run.sh: the base graph's
#                         published Fashion-MNIST setup (LeNet-5 with group norm, 25 nodes,
#                         dirichlet(0.1), learning rate chosen on held-out data, 20 epochs,
#                         8 seeds, then base and onepeer_exp at 40 epochs; 66 LeNet runs,
#                         ~45 min)
#  10. networks_skew.md, networks_skew.png: experiments/networks/skew.sh: lost messages
#                         under label skew (dmsgd, qg_dmsgd, ed, sgp, gt on a ring, drop 0 /
#                         0.01 / 0.1, 3 seeds; 48 MLP runs, ~12 min)
#  11. resnet20_converged.md, resnet20_converged_{iid,dirichlet}.png:
#                         experiments/resnet20/converged.sh: the paper's model class near
#                         convergence (ResNet-20 bf16, 16 nodes, IID and dirichlet(0.1), ring /
#                         exp / onepeer_exp / psgd, 10 epochs, 3 seeds, and psgd at 16 epochs
#                         as the budget check; 26 runs, ~2.4 hours)
# Each findings file starts with the date, the expgraph commit and the command that made it.
# Not run by either: experiments/resnet20/run.sh (resnet20.md, resnet20_time_*.png; ResNet-20
# at n = 16 and 64 with its time on four modelled GPU clusters; 30 runs, ~2 hours).
#
# Usage: experiments/reproduce.sh [--full] [RESULTS_DIR]
# Environment: EXPGRAPH  the binary (default build/expgraph, else `expgraph` on PATH)
#              RUNS      the run root (default runs/)
#              EG_REPRO_SET  extra --set overrides for every training sweep, ';'-separated:
#                        a quick check of the whole pipeline in a minute or two:
#   RUNS=/tmp/r EG_REPRO_SET='train.iterations=20;sweep.nodes=[4, 16]' experiments/reproduce.sh /tmp/res
set -euo pipefail
full=0
if [ "${1:-}" = --full ]; then full=1; shift; fi
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${EXPGRAPH:-}" ]; then
  if [ -x "$here/build/expgraph" ]; then EXPGRAPH=$here/build/expgraph; else EXPGRAPH=$(command -v expgraph); fi
fi
exe=$EXPGRAPH
res=${1:-$here/results}
runs=${RUNS:-$here/runs}
mkdir -p "$res"
res=$(cd "$res" && pwd)
cd "$here"
export EXPGRAPH=$exe RUNS=$runs EG_REPRO_SET=${EG_REPRO_SET:-}
# the EG_REPRO_SET overrides as --set arguments
extra=()
IFS=';' read -r -a sets <<< "$EG_REPRO_SET"
for s in "${sets[@]}"; do [ -n "$s" ] && extra+=(--set "$s"); done
t0=$(date +%s)
step() { echo "[$(( $(date +%s) - t0 ))s] $*" >&2; }

step "1. spectral table"
bash experiments/topology/rho_table.sh > "$res/rho_table.md"

step "2. consensus under pure averaging"
bash experiments/topology/consensus.sh "$runs/consensus" > "$res/consensus.md"
for n in 16 64; do
  "$exe" plot "$runs"/consensus/graph=*,nodes=$n --y consensus --log-y \
    --title "pure averaging, n = $n: consensus distance" -o "$res/consensus_n$n.png"
done

RESULTS=$res EXPGRAPH=$exe bash experiments/topology/base.sh "$runs/topology_base" > "$res/topology_base.md"

step "3. Fashion-MNIST CNN: DmSGD over ring / exp / onepeer_exp, n = 16, 64, IID and dirichlet(0.1), seeds 1-3"
"$exe" sweep experiments/paper/fashion.yaml "${extra[@]}" --out "$runs/paper-fashion" --quiet
step "3. ... and all-reduce (psgd)"
"$exe" sweep experiments/paper/fashion.yaml --set algorithm.name=psgd --set 'sweep.graph=[full]' \
  "${extra[@]}" --out "$runs/paper-fashion-psgd" --quiet
for part in iid dirichlet; do
  both=("$runs"/paper-fashion/data.partition=$part,* "$runs"/paper-fashion-psgd/data.partition=$part,*)
  {
    echo "Final test accuracy of the averaged model, Fashion-MNIST, CNN c16-c32-h128, 2 epochs,"
    echo "batch 32 per node, partition $part (alpha 0.1). Rows: graph (DmSGD; 'full' is psgd, the"
    echo "all-reduce baseline); columns: nodes. Mean ± sample standard deviation over seeds 1, 2, 3."
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric test_acc
    echo
    echo "Paired differences to all-reduce (same seed: same data split and initialisation), mean"
    echo "and 95% t interval over the 3 pairs; '*': the interval excludes 0:"
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric test_acc --vs graph=full
    echo
    echo "Paired differences among the graphs, to the static exponential graph (exp):"
    echo
    "$exe" table "$runs"/paper-fashion/data.partition=$part,* --rows graph --cols nodes --metric test_acc --vs graph=exp
    echo
    echo "Epochs until the averaged model first reaches 85% test accuracy (evaluated every 60"
    echo "iterations; '(k/3)': only k seeds got there, the mean is over those; '-': none did):"
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric 'reach:test_acc>=0.85' --at epoch
    echo
    echo "Bytes sent (all nodes) until then:"
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric 'reach:test_acc>=0.85' --at bytes_sent
    echo
    echo "Final consensus distance (1/n) sum_i ||x_i - x_bar||^2:"
    echo
    "$exe" table "$runs"/paper-fashion/data.partition=$part,* --rows graph --cols nodes --metric consensus
    echo
    echo "Mean accuracy of the nodes' own models (node_acc_mean):"
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric node_acc_mean
  } > "$res/accuracy_$part.md"
done
"$exe" plot "$runs"/paper-fashion/data.partition=iid,*nodes=16,* "$runs"/paper-fashion-psgd/data.partition=iid,*nodes=16,* \
  --y test_acc --x epoch --title "Fashion-MNIST CNN, n = 16, IID (mean ± std, 3 seeds)" -o "$res/fashion_acc_n16.png"
"$exe" plot "$runs"/paper-fashion/data.partition=dirichlet,*nodes=16,* "$runs"/paper-fashion-psgd/data.partition=dirichlet,*nodes=16,* \
  --y test_acc --x epoch --title "Fashion-MNIST CNN, n = 16, dirichlet(0.1) (mean ± std, 3 seeds)" -o "$res/fashion_acc_n16_dirichlet.png"

step "4. traffic and time per graph"
{
  echo "Per graph, IID runs of seed 1: model bytes each node sends per iteration (bytes_sent /"
  echo "nodes / iterations) and training seconds per epoch, from each run's summary.csv."
  echo "All-reduce (psgd) is counted as a ring all-reduce, 2(n-1)/n model sizes per node per iteration."
  echo
  echo "| algorithm | graph | nodes | bytes/node/iter | MB/node/epoch | s/epoch | test_acc |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for f in "$runs"/paper-fashion/data.partition=iid,*,seed=1/summary.csv "$runs"/paper-fashion-psgd/data.partition=iid,*,seed=1/summary.csv; do
    awk -F, 'NR==1{for(i=1;i<=NF;i++) c[$i]=i; next}
      {n=$c["nodes"]; it=$c["iter"]; ep=$c["epoch"]; b=$c["bytes_sent"];
       printf "| %s | %s | %d | %.0f | %.1f | %.2f | %.4f |\n", $c["algorithm"], $c["graph"], n,
         b/n/it, b/n/ep/1e6, $c["train_time_s"]/ep, $c["test_acc"]}' "$f"
  done | sort -t'|' -k4,4n -k2,2 -k3,3
} > "$res/traffic.md"

step "5. algorithms: MNIST MLP (3 seeds) and the synthetic heterogeneous problem"
bash experiments/algorithms/run.sh > "$res/algorithms.md"

step "6. ResNet-20 (batch norm, bf16) on Fashion-MNIST: ring / onepeer_exp vs all-reduce, n = 4, 16, seeds 1-3"
"$exe" sweep experiments/paper/fashion_resnet.yaml "${extra[@]}" --out "$runs/paper-fashion-resnet" --quiet
"$exe" sweep experiments/paper/fashion_resnet.yaml --set algorithm.name=psgd --set 'sweep.graph=[full]' \
  "${extra[@]}" --out "$runs/paper-fashion-resnet-psgd" --quiet
for part in iid dirichlet; do
  both=("$runs"/paper-fashion-resnet/data.partition=$part,* "$runs"/paper-fashion-resnet-psgd/data.partition=$part,*)
  {
    echo "Final test accuracy of the averaged model, Fashion-MNIST, ResNet-20 with batch norm (bf16"
    echo "layers), 0.3 epochs, batch 16 per node, partition $part (alpha 0.1). Rows: graph (DmSGD;"
    echo "'full' is psgd, the all-reduce baseline); columns: nodes. Mean ± sample standard deviation"
    echo "over seeds 1, 2, 3."
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric test_acc
    echo
    echo "Paired differences to all-reduce (same seed), mean and 95% t interval over the 3 pairs;"
    echo "'*': the interval excludes 0:"
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric test_acc --vs graph=full
    echo
    echo "Final consensus distance:"
    echo
    "$exe" table "$runs"/paper-fashion-resnet/data.partition=$part,* --rows graph --cols nodes --metric consensus
    echo
    echo "Mean accuracy of the nodes' own models (node_acc_mean, each with its own batch-norm statistics):"
    echo
    "$exe" table "${both[@]}" --rows graph --cols nodes --metric node_acc_mean
  } > "$res/resnet20_$part.md"
done
"$exe" plot "$runs"/paper-fashion-resnet/data.partition=iid,*nodes=16* \
  "$runs"/paper-fashion-resnet-psgd/data.partition=iid,*nodes=16* --y train_loss --x epoch \
  --title "Fashion-MNIST ResNet-20, n = 16, IID: training loss (mean ± std, 3 seeds)" -o "$res/resnet20_loss_n16.png"

step "7. networks: lost messages and compressed gossip (Fashion-MNIST MLP, 16 nodes)"
bash experiments/networks/run.sh "$res" > "$res/networks.md"

step "8. graphs at n = 25: ring / exp / onepeer_exp / base vs psgd, dirichlet(0.1), seeds 1-3"
bash experiments/graphs/run.sh "$runs/graphs-fashion25" > "$res/graphs_fashion25.md"

if [ "$full" = 1 ]; then
  # the first line of a findings file: when, by which expgraph, with which command
  made_by() {
    echo "Made on $(date -u +%Y-%m-%d) by expgraph $("$exe" info | awk '/^  commit:/ { print $2 }') with \`$1\`."
    echo
  }
  step "9. the base graph in its published Fashion-MNIST setup (LeNet-5 GN, n = 25, dirichlet(0.1))"
  EXPGRAPH=$exe RUNS=$runs bash experiments/basegraph/run.sh "$res"
  { made_by "experiments/basegraph/run.sh"; cat "$res/basegraph.md"; } > "$res/basegraph.md.tmp"
  mv "$res/basegraph.md.tmp" "$res/basegraph.md"
  step "10. lost messages under label skew (ring of 16, dirichlet(0.1))"
  { made_by "experiments/networks/skew.sh"; EXPGRAPH=$exe RUNS=$runs bash experiments/networks/skew.sh "$res"; } \
    > "$res/networks_skew.md.tmp"
  mv "$res/networks_skew.md.tmp" "$res/networks_skew.md"
  step "11. ResNet-20 near convergence: graphs against all-reduce, IID and dirichlet(0.1) (n = 16, 10 epochs)"
  EXPGRAPH=$exe RUNS=$runs bash experiments/resnet20/converged.sh "$res" # its file names its date and commits
fi

step "done: results in $res"
ls -1 "$res"

#!/usr/bin/env bash
# Reproduces the paper's claims at laptop scale (about 20-30 minutes on 2 cores) and writes
# tables and figures into results/:
#   1. rho_table.md       rho and degree of every graph, n = 4 .. 1024 (spectral claim)
#   2. consensus.md, consensus_n16.png, consensus_n64.png
#                         consensus distance vs iteration under pure averaging for ring,
#                         torus, exp, onepeer_exp (exact averaging in log2(n) steps)
#      topology_base.md, topology_base_n25.png, topology_base_n100.png
#                         the same at n = 6, 12, 24 for onepeer_exp vs base (Takezawa et
#                         al. 2023: exact averaging after one period at any n), and figures
#                         at n = 25, 100 with ring, exp, random_peers too (~20 s)
#   3. accuracy_iid.md, accuracy_dirichlet.md, fashion_acc_n16.png
#                         final test accuracy, graph x nodes (4, 16, 64), DmSGD vs all-reduce,
#                         Fashion-MNIST CNN, IID and dirichlet(0.1) (the training claim)
#   4. traffic.md         bytes sent per node per iteration and training seconds per epoch
#                         for each graph (the cost side of the claim)
# Finished runs are skipped, so an interrupted reproduction continues where it stopped.
# Usage: experiments/reproduce.sh [RESULTS_DIR]   (env EXPGRAPH: the binary; RUNS: run root)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
res=${1:-$here/results}
runs=${RUNS:-$here/runs}
mkdir -p "$res"
cd "$here"
export EXPGRAPH=$exe
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

RESULTS=$res bash experiments/topology/base.sh "$runs/topology_base" > "$res/topology_base.md"

step "3. Fashion-MNIST CNN: DmSGD over ring / exp / onepeer_exp, n = 4, 16, 64, IID and dirichlet(0.1)"
"$exe" sweep experiments/paper/fashion.yaml --out "$runs/paper-fashion" --quiet
step "3. ... and all-reduce (psgd)"
"$exe" sweep experiments/paper/fashion.yaml --set algorithm.name=psgd --set 'sweep.graph=[full]' \
  --out "$runs/paper-fashion-psgd" --quiet
for part in iid dirichlet; do
  {
    echo "Final test accuracy of the averaged model, Fashion-MNIST, CNN c16-c32-h128, 3 epochs,"
    echo "batch 32 per node, partition $part (alpha 0.1). Rows: graph (DmSGD; 'full' is psgd, the"
    echo "all-reduce baseline); columns: nodes."
    echo
    "$exe" table "$runs"/paper-fashion/data.partition=$part,* "$runs"/paper-fashion-psgd/data.partition=$part,* \
      --rows graph --cols nodes --metric test_acc
    echo
    echo "Final consensus distance (1/n) sum_i ||x_i - x_bar||^2:"
    echo
    "$exe" table "$runs"/paper-fashion/data.partition=$part,* --rows graph --cols nodes --metric consensus
    echo
    echo "Mean accuracy of the nodes' own models (node_acc_mean):"
    echo
    "$exe" table "$runs"/paper-fashion/data.partition=$part,* "$runs"/paper-fashion-psgd/data.partition=$part,* \
      --rows graph --cols nodes --metric node_acc_mean
  } > "$res/accuracy_$part.md"
done
"$exe" plot "$runs"/paper-fashion/data.partition=iid,*nodes=16 "$runs"/paper-fashion-psgd/data.partition=iid,*nodes=16 \
  --y test_acc --x epoch --title "Fashion-MNIST CNN, n = 16, IID" -o "$res/fashion_acc_n16.png"
"$exe" plot "$runs"/paper-fashion/data.partition=dirichlet,*nodes=16 "$runs"/paper-fashion-psgd/data.partition=dirichlet,*nodes=16 \
  --y test_acc --x epoch --title "Fashion-MNIST CNN, n = 16, dirichlet(0.1)" -o "$res/fashion_acc_n16_dirichlet.png"

step "4. traffic and time per graph"
{
  echo "Per graph, IID runs: model bytes each node sends per iteration (bytes_sent / nodes /"
  echo "iterations) and training seconds per epoch, from each run's summary.csv. All-reduce"
  echo "(psgd) is counted as a ring all-reduce, 2(n-1)/n model sizes per node per iteration."
  echo
  echo "| algorithm | graph | nodes | bytes/node/iter | MB/node/epoch | s/epoch | test_acc |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for f in "$runs"/paper-fashion/data.partition=iid,*/summary.csv "$runs"/paper-fashion-psgd/data.partition=iid,*/summary.csv; do
    awk -F, 'NR==1{for(i=1;i<=NF;i++) c[$i]=i; next}
      {n=$c["nodes"]; it=$c["iter"]; ep=$c["epoch"]; b=$c["bytes_sent"];
       printf "| %s | %s | %d | %.0f | %.1f | %.2f | %.4f |\n", $c["algorithm"], $c["graph"], n,
         b/n/it, b/n/ep/1e6, $c["train_time_s"]/ep, $c["test_acc"]}' "$f"
  done | sort -t'|' -k4,4n -k2,2 -k3,3
} > "$res/traffic.md"
step "done: results in $res"
ls -1 "$res"

#!/usr/bin/env bash
# Consensus distance (1/n) sum_i ||x_i - x_bar||^2 after k pure-averaging iterations, for
# ring, torus, exp and onepeer_exp at n = 16 and 64 (experiments/topology/consensus.yaml).
# Prints a markdown table: rows = graph and n, columns = iterations 1..12.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
out=${1:-$here/runs/consensus}
"$exe" sweep "$here/experiments/topology/consensus.yaml" --out "$out" --quiet >/dev/null
printf '| graph | n |'
for k in $(seq 1 12); do printf ' k=%d |' "$k"; done
printf '\n|---|---:|'
for k in $(seq 1 12); do printf -- '---:|'; done
printf '\n'
for g in ring torus exp onepeer_exp; do
  for n in 16 64; do
    f="$out/graph=$g,nodes=$n/metrics.csv"
    printf '| %s | %d |' "$g" "$n"
    awk -F, 'NR>1 && $1<=12 {printf " %.2e |", $8}' "$f"
    printf '\n'
  done
done

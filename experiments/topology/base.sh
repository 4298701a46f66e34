#!/usr/bin/env bash
# Consensus distance (1/n) sum_i ||x_i - x_bar||^2 after k pure-averaging iterations of
# onepeer_exp, base (1 peer) and base (2 peers) at n = 6, 12, 24 (experiments/topology/
# base.yaml), with each graph's period from `expgraph graph`. Prints a markdown table.
#   experiments/topology/base.sh [RUNDIR] > results/topology_base.md     (~10 s)
# and the figures results/topology_base_n25.png, _n100.png (RESULTS: their directory).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
out=${1:-$here/runs/topology_base}
graphs=("onepeer_exp" "{name: base, peers: 1}" "{name: base, peers: 2}")
labels=("onepeer_exp" "base, peers 1" "base, peers 2")
nodes=(6 12 24)
printf '| graph | n | period | rho_period |'
for k in $(seq 1 12); do printf ' k=%d |' "$k"; done
printf '\n|---|---:|---:|---:|'
for k in $(seq 1 12); do printf -- '---:|'; done
printf '\n'
for i in "${!graphs[@]}"; do
  for n in "${nodes[@]}"; do
    d="$out/g$i-n$n"
    "$exe" run "$here/experiments/topology/base.yaml" --set "graph=${graphs[$i]}" \
      --set nodes="$n" --out "$d" --quiet --force >/dev/null
    facts=$("$exe" graph "${graphs[$i]}" --nodes "$n" --format csv 2>/dev/null | tail -1)
    printf '| %s | %d | %s | %s |' "${labels[$i]}" "$n" "$(echo "$facts" | cut -d, -f3)" \
      "$(echo "$facts" | awk -F, '{printf "%.2g", $7}')"
    awk -F, 'NR>1 && $1<=12 {printf " %.2e |", $8}' "$d/metrics.csv"
    printf '\n'
  done
done

# figures (FIG=0 skips them): consensus vs iteration at n = 25 and 100 for ring, exp,
# onepeer_exp, base (1 peer) and random_peers (1 peer), 30 iterations
if [ "${FIG:-1}" = 1 ]; then
  res=${RESULTS:-$here/results}
  for n in 25 100; do
    for g in ring exp onepeer_exp base random_peers; do
      "$exe" run "$here/experiments/topology/base.yaml" --set graph="$g" --set nodes="$n" \
        --set train.iterations=30 --out "$out/fig-n$n/$g" --quiet --force >/dev/null
    done
    "$exe" plot "$out/fig-n$n" --y consensus --log-y \
      --title "pure averaging, n = $n: consensus distance (base, random_peers: 1 peer)" \
      -o "$res/topology_base_n$n.png"
  done
fi

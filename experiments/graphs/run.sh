#!/usr/bin/env bash
# experiments/graphs/run.sh [RUNDIR] > results/graphs_fashion25.md
# DmSGD over ring / exp / onepeer_exp / base (1 peer) and psgd on Fashion-MNIST, 25 nodes,
# dirichlet(0.1), three seeds (experiments/graphs/fashion25.yaml; ~8 min on 2 busy cores).
# Prints a markdown table: mean +- standard deviation over the seeds of the final x_bar
# test accuracy, of node_acc_mean (each node's own model) and of the consensus distance.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
out=${1:-$here/runs/graphs-fashion25}
spec=$here/experiments/graphs/fashion25.yaml
extra=() # EG_REPRO_SET: ';'-separated --set overrides, as in experiments/reproduce.sh
IFS=';' read -r -a sets <<< "${EG_REPRO_SET:-}"
for s in "${sets[@]}"; do [ -n "$s" ] && extra+=(--set "$s"); done
"$exe" sweep "$spec" "${extra[@]}" --out "$out/dmsgd" --quiet >/dev/null
"$exe" sweep "$spec" --set algorithm.name=psgd --set 'sweep.graph=[full]' "${extra[@]}" \
  --out "$out/psgd" --quiet >/dev/null
# stats METRIC: "graph mean std" per graph from the per-seed csv table
stats() {
  "$exe" table "$out/dmsgd" "$out/psgd" --rows graph --cols seed --metric "$1" --format csv |
    awk -F, 'NR > 1 { s = 0; q = 0; k = 0
      for (i = 2; i <= NF; i++) if ($i != "") { s += $i; q += $i * $i; k++ }
      m = s / k; v = k > 1 ? (q - k * m * m) / (k - 1) : 0
      printf "%s %.17g %.17g %d\n", $1, m, (v > 0 ? sqrt(v) : 0), k }'
}
stats test_acc >"$out/acc.txt"
stats node_acc_mean >"$out/node.txt"
stats consensus >"$out/cons.txt"
echo "| graph | seeds | x_bar test accuracy | node_acc_mean | consensus distance |"
echo "|---|---:|---:|---:|---:|"
join <(sort "$out/acc.txt") <(sort "$out/node.txt") | join - <(sort "$out/cons.txt") |
  awk 'BEGIN { split("full exp onepeer_exp base ring", order, " ") }
    { line[$1] = $0 }
    END { for (i = 1; i <= 5; i++) { if (!(order[i] in line)) continue
        split(line[order[i]], f, " ")
        g = (f[1] == "full" ? "psgd (all-reduce)" : f[1] == "base" ? "base (1 peer)" : f[1])
        printf "| %s | %d | %.4f +- %.4f | %.4f +- %.4f | %.3g +- %.2g |\n", g, f[4], f[2], f[3], f[5], f[6], f[8], f[9] } }'

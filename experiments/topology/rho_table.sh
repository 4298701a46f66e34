#!/usr/bin/env bash
# rho_table.sh - the paper's topology table: rho = ||W - 11^T/n||_2 and degree for each
# graph family at n = 4, 8, ..., 1024, plus rho_period for the time-varying graphs.
# Prints markdown on stdout.
#
#   experiments/topology/rho_table.sh                 # uses build/expgraph
#   EXPGRAPH=/path/to/expgraph experiments/topology/rho_table.sh > rho_table.md
#   NODES=8,16,32 SEED=2 experiments/topology/rho_table.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EXPGRAPH=${EXPGRAPH:-$ROOT/build/expgraph}
NODES=${NODES:-4,8,16,32,64,128,256,512,1024}
# node counts that are not powers of two, for the contrast in the last table
OTHER=${OTHER:-6,12,24,25,48,100,1000}
SEED=${SEED:-1}
ER_P=${ER_P:-0.2}

if [ ! -x "$EXPGRAPH" ]; then
    echo "rho_table.sh: no expgraph binary at $EXPGRAPH (build it, or set EXPGRAPH)" >&2
    exit 2
fi

# static graphs (rho is the per-iteration contraction)
STATIC=(ring torus grid star erdos_renyi sym_exp exp hypercube full)
# time-varying graphs: every single W(k) is disconnected (rho = 1); what matters is the
# product over one period, rho_period
VARYING=(onepeer_exp onepeer_hypercube)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rho_table.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

graph_arg() {
    if [ "$1" = erdos_renyi ]; then
        echo "{name: erdos_renyi, p: $ER_P}"
    else
        echo "$1"
    fi
}

label() {
    if [ "$1" = erdos_renyi ]; then echo "erdos_renyi (p=$ER_P)"; else echo "$1"; fi
}

for g in "${STATIC[@]}" "${VARYING[@]}"; do
    "$EXPGRAPH" graph "$(graph_arg "$g")" --nodes "$NODES" --seed "$SEED" --format csv \
        >"$TMP/$g.csv"
done
for g in exp onepeer_exp; do
    "$EXPGRAPH" graph "$g" --nodes "$OTHER" --format csv >"$TMP/$g.other.csv"
done
# the Base-(k+1) graph (Takezawa et al., NeurIPS 2023): exact after one period for any n
for k in 1 2; do
    "$EXPGRAPH" graph "{name: base, peers: $k}" --nodes "$OTHER" --format csv \
        >"$TMP/base$k.other.csv"
done

# header TITLE N,N,...
header() {
    local line="| $1 |" sep="|---|" ns
    IFS=, read -r -a ns <<<"$2"
    for n in "${ns[@]}"; do
        line="$line n=$n |"
        sep="$sep---:|"
    done
    echo "$line"
    echo "$sep"
}

# row CSV LABEL AWK-EXPR: one markdown row, one cell per data row of CSV; the expression
# sees the csv fields ($4 degree, $5 rho, $7 rho_period, $3 period) and num(x) (0 for x
# below 1e-12, else 5 significant digits)
row() {
    local cells
    # shellcheck disable=SC2016
    cells=$(awk -F, 'function num(x) { return (x < 1e-12 ? "0" : sprintf("%.5g", x)) }
        NR > 1 { printf "%s | ", '"$3"' }' "$1")
    echo "| $2 | ${cells% }"
}

# closed N,N,...: the row 1 - 2/(1+tau)
closed() {
    local line="| 1 - 2/(1+tau) |" ns
    IFS=, read -r -a ns <<<"$1"
    for n in "${ns[@]}"; do
        line="$line $(awk -v n="$n" 'BEGIN { t = 0; while (2 ^ t < n) t++
            printf "%.5g", 1 - 2 / (1 + t) }') |"
    done
    echo "$line"
}

echo "## rho = ||W - 11^T/n||_2 (degree in parentheses)"
echo
echo "Static graphs; seed $SEED for erdos_renyi. The paper: exp has rho = 1 - 2/(1+tau),"
echo "tau = ceil(log2 n), for even n."
echo
header graph "$NODES"
for g in "${STATIC[@]}"; do
    # shellcheck disable=SC2016
    row "$TMP/$g.csv" "$(label "$g")" 'num($5) " (" $4 ")"'
done
closed "$NODES"
echo
echo "## Time-varying graphs: rho_period = ||W(tau-1)...W(0) - 11^T/n||_2 (degree 1)"
echo
echo "Every single W(k) of these graphs is disconnected (rho = 1); after one period of"
echo "tau = ceil(log2 n) iterations they average exactly when n is a power of two."
echo
header graph "$NODES"
for g in "${VARYING[@]}"; do
    # shellcheck disable=SC2016
    row "$TMP/$g.csv" "$g" 'num($7) " (tau=" $3 ")"'
done
echo
echo "## n not a power of two"
echo
echo "exp keeps rho = 1 - 2/(1+tau) for even n; onepeer_exp no longer averages exactly"
echo "after tau iterations (rho_period > 0). hypercube graphs need a power of two. The"
echo "Base-(k+1) graph (base, at most k peers per iteration) averages exactly after its"
echo "period at every n (rho_period at rounding level, shown as 0 below 1e-12)."
echo
header "" "$OTHER"
# shellcheck disable=SC2016
row "$TMP/exp.other.csv" "exp: rho (degree)" 'num($5) " (" $4 ")"'
closed "$OTHER"
# shellcheck disable=SC2016
row "$TMP/onepeer_exp.other.csv" "onepeer_exp: rho_period (tau)" 'num($7) " (tau=" $3 ")"'
for k in 1 2; do
    # shellcheck disable=SC2016
    row "$TMP/base$k.other.csv" "base, peers $k: rho_period (period)" 'num($7) " (" $3 ")"'
done

#!/usr/bin/env bash
# graph_cli.sh - end-to-end checks of `expgraph graph` (docs/graphs.md).
# Run by CTest with EXPGRAPH=path/to/expgraph. Exit 0 pass, 1 fail.
. "$(dirname "$0")/lib.sh"

# run CMD...: stdout -> $TMP/out, stderr -> $TMP/err, exit code -> $rc
run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}

# column NAME of data row ROW (1 = first after the header) of csv file
csv_field() {
    awk -F, -v col="$2" -v row="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        NR == row + 1 { print $c }' "$1"
}

# |a - b| <= tol ?
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
# a < b ?
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# 1. csv header, exact
run "$EXPGRAPH" graph exp --nodes 16 --format csv
header=$(head -n 1 "$TMP/out")
if [ "$rc" -eq 0 ] && [ "$header" = "graph,nodes,period,degree,rho,gap,rho_period" ]; then
    ok "csv header"
else
    bad "csv header: rc=$rc header='$header' stderr: $(cat "$TMP/err")"
fi

# 2. exp at n = 16: tau = 4, rho = 1 - 2/(1+4) = 0.6, degree 4, one row
rho=$(csv_field "$TMP/out" rho 1)
deg=$(csv_field "$TMP/out" degree 1)
rows=$(($(wc -l <"$TMP/out") - 1))
if [ -n "$rho" ] && near "$rho" 0.6 1e-9 && [ "$deg" = 4 ] && [ "$rows" = 1 ]; then
    ok "exp n=16 rho=$rho degree=$deg"
else
    bad "exp n=16: rho='$rho' (want 0.6) degree='$deg' (want 4) rows=$rows"
fi

# 3. one-peer exponential averages exactly after tau steps when n is a power of two
run "$EXPGRAPH" graph onepeer_exp --nodes 16,6 --format csv
rp=$(csv_field "$TMP/out" rho_period 1)
per=$(csv_field "$TMP/out" period 1)
rp6=$(csv_field "$TMP/out" rho_period 2)
if [ "$rc" -eq 0 ] && [ -n "$rp" ] && less "$rp" 1e-12 && [ "$per" = 4 ] && less 1e-3 "$rp6"; then
    ok "onepeer_exp n=16 rho_period=$rp period=$per; n=6 rho_period=$rp6"
else
    bad "onepeer_exp: rc=$rc n=16 rho_period='$rp' period='$per'; n=6 rho_period='$rp6'"
fi

# 4. --format matrix: one block per k of one period, rows summing to 1
run "$EXPGRAPH" graph onepeer_exp --nodes 8 --format matrix
blocks=$(grep -c '^# onepeer_exp nodes=8 k=' "$TMP/out")
bad=$(awk -F, '
    /^#/ { next }
    { n++; s = 0; for (i = 1; i <= NF; i++) s += $i
      if (NF != 8 || s < 1 - 1e-12 || s > 1 + 1e-12) bad++ }
    END { print (n == 24 ? bad + 0 : "rows=" n) }' "$TMP/out")
if [ "$rc" -eq 0 ] && [ "$blocks" = 3 ] && [ "$bad" = 0 ]; then
    ok "matrix: 3 blocks of 8 rows summing to 1"
else
    bad "matrix: rc=$rc blocks=$blocks (want 3) bad rows=$bad"
fi
if head -n 1 "$TMP/out" | grep -qx '# onepeer_exp nodes=8 k=0'; then
    ok "matrix header line"
else
    bad "matrix header line: '$(head -n 1 "$TMP/out")'"
fi
run "$EXPGRAPH" graph exp --nodes 5 --format matrix --iters 2
if [ "$rc" -eq 0 ] && [ "$(grep -c '^# exp nodes=5 k=' "$TMP/out")" = 2 ] &&
    [ "$(grep -vc '^#' "$TMP/out")" = 10 ]; then
    ok "matrix --iters 2"
else
    bad "matrix --iters 2: rc=$rc"
fi
run "$EXPGRAPH" graph random_match --nodes 6 --format matrix --seed 4
if [ "$rc" -eq 0 ] && grep -q '^# random_match nodes=6 k=0 (one realisation, seed 4)$' "$TMP/out" &&
    [ "$(grep -c '^#' "$TMP/out")" = 1 ]; then
    ok "random_match matrix marked as one realisation"
else
    bad "random_match matrix: rc=$rc $(head -n 1 "$TMP/out")"
fi

# 5. a graph that does not fit the node count
run "$EXPGRAPH" graph hypercube --nodes 12
if [ "$rc" -eq 2 ] && grep -q 'power of two' "$TMP/err" && [ ! -s "$TMP/out" ]; then
    ok "hypercube --nodes 12 -> exit 2: $(cat "$TMP/err")"
else
    bad "hypercube --nodes 12: rc=$rc stderr='$(cat "$TMP/err")' stdout='$(cat "$TMP/out")'"
fi
run "$EXPGRAPH" graph hypercube --nodes 8,12 --format csv
if [ "$rc" -eq 2 ] && [ ! -s "$TMP/out" ]; then
    ok "hypercube --nodes 8,12 prints nothing but the error"
else
    bad "hypercube --nodes 8,12: rc=$rc stdout='$(cat "$TMP/out")'"
fi

# 6. unknown graph
run "$EXPGRAPH" graph foo --nodes 4
if [ "$rc" -eq 2 ] && grep -q "foo" "$TMP/err" && grep -q '^expgraph: ' "$TMP/err"; then
    ok "unknown graph -> exit 2: $(cat "$TMP/err")"
else
    bad "unknown graph: rc=$rc stderr='$(cat "$TMP/err")'"
fi

# 7. bad command lines
for args in "ring --nodes 4,x" "ring --nodes 0" "ring --nodes 4 --format xml" "ring" \
    "ring --nodes 4 --bogus" "ring --nodes 4 --iters 0"; do
    # shellcheck disable=SC2086
    run "$EXPGRAPH" graph $args
    if [ "$rc" -eq 2 ] && [ -s "$TMP/err" ]; then
        ok "graph $args -> exit 2"
    else
        bad "graph $args: rc=$rc (want 2) stderr='$(cat "$TMP/err")'"
    fi
done
run "$EXPGRAPH" graph --help
if [ "$rc" -eq 0 ] && grep -q -- '--nodes' "$TMP/out" && grep -q 'default' "$TMP/out"; then
    ok "graph --help"
else
    bad "graph --help: rc=$rc"
fi

# 8. a flow mapping NAME, and a file graph
run "$EXPGRAPH" graph '{name: erdos_renyi, p: 0.5}' --nodes 12 --seed 3 --format csv
if [ "$rc" -eq 0 ] && [ "$(csv_field "$TMP/out" graph 1)" = erdos_renyi ]; then
    ok "erdos_renyi flow mapping"
else
    bad "erdos_renyi flow mapping: rc=$rc stderr='$(cat "$TMP/err")'"
fi
printf '# ring of 3, uniform\n0.5,0.25,0.25\n0.25, 0.5, 0.25\n0.25,0.25,0.5\n' >"$TMP/W.csv"
run "$EXPGRAPH" graph "{name: file, path: $TMP/W.csv}" --nodes 3 --format csv
rho=$(csv_field "$TMP/out" rho 1)
if [ "$rc" -eq 0 ] && [ -n "$rho" ] && near "$rho" 0.25 1e-12; then
    ok "file graph rho=$rho"
else
    bad "file graph: rc=$rc rho='$rho' (want 0.25) stderr='$(cat "$TMP/err")'"
fi
run "$EXPGRAPH" graph "{name: file, path: $TMP/W.csv}" --nodes 4
if [ "$rc" -eq 2 ] && grep -q 'has 3 rows, nodes is 4' "$TMP/err"; then
    ok "file graph with the wrong node count -> exit 2"
else
    bad "file graph wrong n: rc=$rc stderr='$(cat "$TMP/err")'"
fi

# 9. the paper-scale case answers quickly
start=$(date +%s.%N)
run "$EXPGRAPH" graph exp --nodes 1024 --format csv
end=$(date +%s.%N)
rho=$(csv_field "$TMP/out" rho 1)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
# tau = 10: rho = 1 - 2/11
if [ "$rc" -eq 0 ] && [ -n "$rho" ] && near "$rho" 0.818181818 1e-8; then
    ok "exp n=1024 rho=$rho in ${secs}s"
else
    bad "exp n=1024: rc=$rc rho='$rho' stderr='$(cat "$TMP/err")'"
fi

finish

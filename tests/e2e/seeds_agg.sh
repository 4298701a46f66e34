#!/usr/bin/env bash
# seeds_agg.sh - end-to-end: a sweep over seeds, `table` collapsing them into mean, sample
# std and n (checked against a direct computation from the metrics.csv files, a cell with
# one run included), `--metric reach:...` on hand-made metrics.csv files, clashes and bad
# input, and `plot` with bands. Run by CTest with EXPGRAPH. Exit 0 pass, 1 fail.
. "$(dirname "$0")/lib.sh"

run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
# cell (row label, column header) of a csv table
csv_cell() {
    awk -F, -v r="$2" -v h="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == h) c = i; next }
        $1 == r { print $c }' "$1"
}
# |a - b| <= tol * (1 + |b|) ?
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= t * (1 + m)) }'; }
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d\n", $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8 }'; }

cat >"$TMP/seeds.yaml" <<'EOF'
name: seeds
nodes: 4
graph: ring
algorithm: dmsgd
model: logreg
data: {name: synthetic, dim: 8, classes: 3, samples: 64, batch_size: 8, heterogeneity: 1.0}
train: {iterations: 40, log_every: 10}
lr: {base: 0.1}
sweep:
  seed: [1, 2, 3]
  graph: [ring, exp]
EOF

# 1. a sweep over seeds works as over any key
run "$EXPGRAPH" sweep "$TMP/seeds.yaml" --list
check "sweep --list has 6 points with seed=1..3" test "$(grep -c -- '--set seed=[123] --set graph=' "$TMP/out")" -eq 6
run "$EXPGRAPH" sweep "$TMP/seeds.yaml" --out "$TMP/sw" --quiet
check "sweep over seeds ran (rc $rc)" test "$rc" -eq 0 -a -s "$TMP/sw/seed=3,graph=exp/summary.csv"
run "$EXPGRAPH" run "$TMP/seeds.yaml" --set graph=star --out "$TMP/single/star" --quiet
check "a single star run" test "$rc" -eq 0

# 2. table --format csv: mean, std (n - 1), n per graph against awk over metrics.csv
run "$EXPGRAPH" table "$TMP/sw" "$TMP/single" --rows graph --format csv
cp "$TMP/out" "$TMP/t.csv"
check "aggregated csv header" test "$(head -n 1 "$TMP/t.csv")" = "graph,test_acc mean,test_acc std,test_acc n"
final_acc() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "test_acc") c = i; next } $c != "" { v = $c } END { print v }' "$1"; }
for g in ring exp star; do
    vals=""
    for f in "$TMP"/sw/seed=*,graph=$g/metrics.csv "$TMP"/single/$g/metrics.csv; do
        [ -f "$f" ] && vals="$vals $(final_acc "$f")"
    done
    read -r mean n sd < <(echo "$vals" | awk '{ for (i = 1; i <= NF; i++) s += $i; m = s / NF
        for (i = 1; i <= NF; i++) q += ($i - m) * ($i - m)
        sd = ""; if (NF > 1) sd = sprintf("%.17g", sqrt(q / (NF - 1)))
        printf "%.17g %d %s\n", m, NF, sd }')
    tm=$(csv_cell "$TMP/t.csv" "$g" "test_acc mean")
    ts=$(csv_cell "$TMP/t.csv" "$g" "test_acc std")
    tn=$(csv_cell "$TMP/t.csv" "$g" "test_acc n")
    if near "$tm" "$mean" 1e-8 && [ "$tn" = "$n" ] && { [ -z "$sd" ] && [ -z "$ts" ] || near "$ts" "$sd" 1e-7; }; then
        ok "$g: mean $tm std '${ts}' n $tn match the metrics files ($vals)"
    else
        bad "$g: table mean '$tm' std '$ts' n '$tn'; direct: $mean '$sd' $n ($vals)"
    fi
done
check "the star cell has one run: n = 1, std empty" test "$(csv_cell "$TMP/t.csv" star "test_acc n")" = 1

# 3. md and latex: 'mean ± std', '$mean \pm std$', std '-' for one run; seed is the default
run "$EXPGRAPH" table "$TMP/sw" "$TMP/single" --rows graph
check "md: ring is 'mean ± std'" grep -qE '^\| ring +\| +0\.[0-9]{4} ± 0\.[0-9]{4} \|$' "$TMP/out"
check "md: star (one run) shows std '-'" grep -qE '^\| star +\| +0\.[0-9]{4} ± - \|$' "$TMP/out"
run "$EXPGRAPH" table "$TMP/sw" --rows graph --format latex
check "latex: \$mean \\pm std\$" grep -qE '^ring & \$0\.[0-9]{4} \\pm 0\.[0-9]{4}\$ \\\\$' "$TMP/out"
run "$EXPGRAPH" table "$TMP/sw" "$TMP/single" --rows graph --format latex
check "latex: one run shows '\$mean \\pm\$ --'" grep -qE '^star & \$0\.[0-9]{4} \\pm\$ -- \\\\$' "$TMP/out"
run "$EXPGRAPH" table "$TMP/sw" --rows graph --agg none
check "--agg none: seeds clash again (exit 2)" test "$rc" -eq 2
run "$EXPGRAPH" table "$TMP/sw" --cols graph --agg none
check "--agg none: seed becomes the rows" test "$(grep -c '^| [123] ' "$TMP/out")" -eq 3

# 4. runs that differ in another key still clash with the usual message
run "$EXPGRAPH" run "$TMP/seeds.yaml" --set graph=ring --set nodes=8 --out "$TMP/other/n8" --quiet
run "$EXPGRAPH" table "$TMP/sw" "$TMP/other" --rows graph
check "a clash in nodes: exit 2" test "$rc" -eq 2
check "the clash names nodes" grep -q "differ in 'nodes': use it as --rows or --cols" "$TMP/err"

# 5. bad --agg, bad reach, --at without reach: exit 2 naming the option
run "$EXPGRAPH" table "$TMP/sw" --agg nosuchkey
check "bad --agg: exit 2 naming --agg" bash -c "[ $rc -eq 2 ] && grep -q '^expgraph: --agg: no run has the spec key' '$TMP/err'"
for m in 'reach:test_acc>0.5' 'reach:test_acc>=' 'reach:>=1' 'reach:test_acc>=abc'; do
    run "$EXPGRAPH" table "$TMP/sw" --metric "$m"
    check "bad reach '$m': exit 2 naming --metric" bash -c "[ $rc -eq 2 ] && grep -q '^expgraph: --metric: ' '$TMP/err'"
done
run "$EXPGRAPH" table "$TMP/sw" --metric 'reach:nosuch>=1'
check "reach on an unknown column: exit 2" test "$rc" -eq 2
run "$EXPGRAPH" table "$TMP/sw" --at epoch
check "--at without reach: exit 2" bash -c "[ $rc -eq 2 ] && grep -q -- '--at applies to --metric reach' '$TMP/err'"

# 6. reach on hand-made metrics.csv files (keys from key=value directory names)
H="$TMP/hand"
HDR="iter,epoch,time_s,lr,train_loss,test_loss,test_acc,consensus,bytes_sent"
mk() { mkdir -p "$H/$1"; printf '%s\n' "$HDR" "${@:2}" >"$H/$1/metrics.csv"; }
mk "graph=first,seed=1" "10,0.5,1,0.1,2.0,1.0,0.90,0.5,100" "20,1.0,2,0.1,1.0,0.8,0.95,0.25,200"
mk "graph=last,seed=1" "10,0.5,1,0.1,2.0,1.0,0.50,0.5,100" "20,1.0,2,0.1,1.5,,,0.4,200" "30,1.5,3,0.1,0.9,0.7,0.88,0.1,300"
mk "graph=never,seed=1" "10,0.5,1,0.1,2.0,,,0.5,100" "20,1.0,2,0.1,1.9,1.0,0.80,0.4,200"
mk "graph=empty,seed=1" "10,0.5,1,0.1,2.0,,,0.5,100" "20,1.0,2,0.1,1.0,,,0.25,200" "30,1.5,3,0.1,0.9,0.7,0.91,0.1,300"
run "$EXPGRAPH" table "$H" --rows graph --metric 'reach:test_acc>=0.88' --format csv --agg none
cp "$TMP/out" "$TMP/r.csv"
col="iter at test_acc>=0.88"
check "reach: at the first row" test "$(csv_cell "$TMP/r.csv" first "$col")" = 10
check "reach: at the last row" test "$(csv_cell "$TMP/r.csv" last "$col")" = 30
check "reach: never reached is empty" test -z "$(csv_cell "$TMP/r.csv" never "$col")"
check "reach: empty cells skipped" test "$(csv_cell "$TMP/r.csv" empty "$col")" = 30
run "$EXPGRAPH" table "$H" --rows graph --metric 'reach:test_acc>=0.88' --agg none
check "reach md: never reached shows '-'" grep -qE '^\| never +\| +- \|$' "$TMP/out"
run "$EXPGRAPH" table "$H" --rows graph --metric 'reach:test_acc>=0.88' --at epoch --format csv --agg none
check "reach --at epoch" test "$(csv_cell "$TMP/out" last "epoch at test_acc>=0.88")" = 1.5
run "$EXPGRAPH" table "$H" --rows graph --metric 'reach:consensus<=0.25' --at bytes_sent --format csv --agg none
check "reach <= form with --at bytes_sent" test "$(csv_cell "$TMP/out" first "bytes_sent at consensus<=0.25")" = 200
check "reach <= never" test -z "$(csv_cell "$TMP/out" never "bytes_sent at consensus<=0.25")"
# aggregated like any metric: two seeds of 'first', one reaching at 10, one at 30
mk "graph=first,seed=2" "10,0.5,1,0.1,2.0,1.0,0.10,0.5,100" "30,1.5,3,0.1,1.0,0.8,0.89,0.25,300"
run "$EXPGRAPH" table "$H" --rows graph --metric 'reach:test_acc>=0.88' --format csv
check "reach aggregated over seeds: mean 20, std 14.1421356, n 2" \
    test "$(grep '^first,' "$TMP/out")" = "first,20,14.1421356,2"
run "$EXPGRAPH" table "$TMP/sw" --rows graph --metric 'reach:test_acc>=0' --format csv
check "reach on a sweep root" test "$(csv_cell "$TMP/out" ring "iter at test_acc>=0 n")" = 3

# 7. plot with bands (mean over seeds), x = iter, epoch, time_s, bytes_sent
for x in iter epoch time_s bytes_sent; do
    run "$EXPGRAPH" plot "$TMP/sw" "$TMP/single" --y test_acc --x "$x" --width 640 --height 400 -o "$TMP/band_$x.png"
    size=$([ -s "$TMP/band_$x.png" ] && png_size "$TMP/band_$x.png")
    check "plot --x $x with bands: a 640x400 PNG (rc $rc, $size)" test "$rc" -eq 0 -a "$size" = 640x400
done
run "$EXPGRAPH" plot "$TMP/sw" --y consensus --log-y --band minmax -o "$TMP/minmax.png"
check "plot --band minmax --log-y" test "$rc" -eq 0 -a -s "$TMP/minmax.png"
run "$EXPGRAPH" plot "$TMP/sw" --y test_acc --band wide -o "$TMP/x.png"
check "plot: bad --band exit 2" bash -c "[ $rc -eq 2 ] && grep -q -- '--band' '$TMP/err'"
run "$EXPGRAPH" plot "$TMP/sw" --y test_acc --agg nosuchkey -o "$TMP/x.png"
check "plot: bad --agg exit 2" bash -c "[ $rc -eq 2 ] && grep -q -- '--agg' '$TMP/err'"
finish

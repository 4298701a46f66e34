#!/usr/bin/env bash
# table_vs.sh - end-to-end: `table --vs KEY=VALUE`, paired differences to a reference over
# seeds: the mean difference and its 95% Student-t interval against a direct computation
# from the metrics.csv files (csv), md and latex forms, unpaired runs (exit 2 naming them),
# bad --vs forms, and `plot --agg` still drawing its bands. Exit 0 pass, 1 fail.
. "$(dirname "$0")/lib.sh"

run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
csv_cell() {
    awk -F, -v r="$2" -v h="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == h) c = i; next }
        $1 == r { print $c }' "$1"
}
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && d <= t * (1 + m)) }'; }
final_acc() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "test_acc") c = i; next } $c != "" { v = $c } END { print v }' "$1"; }

cat >"$TMP/vs.yaml" <<'EOF'
name: vs
nodes: 4
graph: ring
algorithm: dmsgd
model: logreg
data: {name: synthetic, dim: 8, classes: 3, samples: 64, batch_size: 8, heterogeneity: 1.0}
train: {iterations: 30, log_every: 10}
lr: {base: 0.1}
sweep:
  seed: [1, 2, 3]
  graph: [ring, exp, full]
EOF
run "$EXPGRAPH" sweep "$TMP/vs.yaml" --out "$TMP/sw" --quiet
check "sweep over 3 seeds x 3 graphs ran (rc $rc)" test "$rc" -eq 0 -a -s "$TMP/sw/seed=3,graph=full/summary.csv"

# 1. csv: per graph the mean of the per-seed differences to exp and mean +- t_{0.975,2} sd / sqrt 3
run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs graph=exp --format csv
cp "$TMP/out" "$TMP/t.csv"
check "csv header: diff, lo, hi, n, sig" test "$(head -n 1 "$TMP/t.csv")" = \
    "graph,test_acc diff,test_acc lo,test_acc hi,test_acc n,test_acc sig"
check "csv: the reference row is marked ref" test "$(csv_cell "$TMP/t.csv" exp "test_acc sig")" = ref
T2=4.302652729749464 # t_{0.975,2} = sqrt(2 / (4 p (1 - p)) - 2), p = 0.975
for g in ring full; do
    ds=""
    for s in 1 2 3; do
        a=$(final_acc "$TMP/sw/seed=$s,graph=$g/metrics.csv")
        b=$(final_acc "$TMP/sw/seed=$s,graph=exp/metrics.csv")
        ds="$ds $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.17g", a - b }')"
    done
    read -r mean lo hi sig < <(echo "$ds" | awk -v t="$T2" '{ for (i = 1; i <= NF; i++) s += $i; m = s / NF
        for (i = 1; i <= NF; i++) q += ($i - m) * ($i - m); h = t * sqrt(q / (NF - 1)) / sqrt(NF)
        printf "%.17g %.17g %.17g %d\n", m, m - h, m + h, (m - h > 0 || m + h < 0) }')
    tm=$(csv_cell "$TMP/t.csv" "$g" "test_acc diff")
    tl=$(csv_cell "$TMP/t.csv" "$g" "test_acc lo")
    th=$(csv_cell "$TMP/t.csv" "$g" "test_acc hi")
    ts=$(csv_cell "$TMP/t.csv" "$g" "test_acc sig")
    if near "$tm" "$mean" 1e-8 && near "$tl" "$lo" 1e-7 && near "$th" "$hi" 1e-7 &&
        [ "$ts" = "$sig" ] && [ "$(csv_cell "$TMP/t.csv" "$g" "test_acc n")" = 3 ]; then
        ok "$g - exp: $tm [$tl, $th] sig $ts matches the metrics files ($ds)"
    else
        bad "$g - exp: table '$tm' ['$tl', '$th'] sig '$ts'; direct $mean [$lo, $hi] $sig ($ds)"
    fi
done

# 2. md and latex
run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs graph=exp
check "md: a difference with its interval" grep -qE '^\| ring +\| +[-+][0-9.]+ \[[-+][0-9.]+, [-+][0-9.]+\]( \*)? \|$' "$TMP/out"
check "md: the reference row shows its mean ± std (ref)" grep -qE '^\| exp +\| +0\.[0-9]{4} ± 0\.[0-9]{4} \(ref\) \|$' "$TMP/out"
check "md: a note says what the numbers are" grep -q 'Paired differences to graph=exp' "$TMP/out"
sig=$(csv_cell "$TMP/t.csv" full "test_acc sig")
if [ "$sig" = 1 ]; then
    check "md: full's interval excludes 0, marked *" grep -qE '^\| full .*\] \* \|$' "$TMP/out"
else
    check "md: full's interval holds 0, no *" grep -qE '^\| full .*\] \|$' "$TMP/out"
fi
run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs graph=exp --format latex
check "latex: \$+d\\;[lo, hi]\$" grep -qE '^ring & \$[-+][0-9.]+\\;\[[-+][0-9.]+, [-+][0-9.]+\](\^\{\*\})?\$ \\\\$' "$TMP/out"
check "latex: the comment says paired" grep -q '^% paired differences to graph=exp' "$TMP/out"

# 3. unpaired input: a ring run with a seed exp lacks, then an exp seed ring lacks
run "$EXPGRAPH" run "$TMP/vs.yaml" --set seed=4 --out "$TMP/extra/seed=4,graph=ring" --quiet
run "$EXPGRAPH" table "$TMP/sw" "$TMP/extra" --rows graph --vs graph=exp
check "unpaired ring seed 4: exit 2 naming the run" bash -c \
    "[ $rc -eq 2 ] && grep -q 'unpaired' '$TMP/err' && grep -q 'seed=4,graph=ring' '$TMP/err' && grep -q 'graph=exp' '$TMP/err'"
run "$EXPGRAPH" run "$TMP/vs.yaml" --set seed=4 --set graph=exp --out "$TMP/extra2/seed=4,graph=exp" --quiet
run "$EXPGRAPH" table "$TMP/sw" "$TMP/extra2" --rows graph --vs graph=exp
check "a reference seed ring lacks: exit 2 naming the cell and the run" bash -c \
    "[ $rc -eq 2 ] && grep -q 'unpaired' '$TMP/err' && grep -q 'seed=4,graph=exp' '$TMP/err'"
run "$EXPGRAPH" table "$TMP/sw" "$TMP/extra" "$TMP/extra2" --rows graph --vs graph=exp
check "ring and exp seed 4 but no full seed 4: exit 2 naming the full cell" bash -c \
    "[ $rc -eq 2 ] && grep -q 'unpaired: the cell (full, ' '$TMP/err'"
run "$EXPGRAPH" run "$TMP/vs.yaml" --set seed=4 --set graph=full --out "$TMP/extra3/seed=4,graph=full" --quiet
run "$EXPGRAPH" table "$TMP/sw" "$TMP/extra" "$TMP/extra2" "$TMP/extra3" --rows graph --vs graph=exp --format csv
check "with every seed-4 run: paired again, n = 4" test "$rc" -eq 0 -a "$(csv_cell "$TMP/out" ring "test_acc n")" = 4

# 4. bad --vs
for v in graph graph= =exp; do
    run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs "$v"
    check "--vs '$v': exit 2" bash -c "[ $rc -eq 2 ] && grep -q -- '--vs' '$TMP/err'"
done
run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs graph=torus
check "--vs graph=torus (no such reference): exit 2" bash -c "[ $rc -eq 2 ] && grep -q 'graph=torus' '$TMP/err'"
run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs nosuch=1
check "--vs with an unknown key: exit 2" test "$rc" -eq 2
run "$EXPGRAPH" table "$TMP/sw" --rows graph --vs seed=1
check "--vs along the aggregated key: exit 2" test "$rc" -eq 2

# 5. plot --agg keeps its bands
run "$EXPGRAPH" plot "$TMP/sw" --y test_acc -o "$TMP/band.png"
check "plot with bands over seeds (rc $rc)" test "$rc" -eq 0 -a -s "$TMP/band.png"
finish

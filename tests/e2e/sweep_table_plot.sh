#!/usr/bin/env bash
# sweep_table_plot.sh - end-to-end: `expgraph sweep` a tiny 2x2 spec, then `table` and
# `plot` its results; resume of an interrupted sweep; the error exits of table and plot
# (docs/spec.md). Run by CTest with EXPGRAPH=path/to/expgraph.
# Exit 0 pass, 1 fail.
. "$(dirname "$0")/lib.sh"

# run CMD...: stdout -> $TMP/out, stderr -> $TMP/err, exit code -> $rc
run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}

# the value of column NAME in the last row of a csv file
last_value() {
    awk -F, -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) { sub(/\r$/, "", $i); if ($i == col) c = i }; next }
        NF > 0 { v = $c }
        END { sub(/\r$/, "", v); print v }' "$1"
}

# cell (row label, column header) of a csv table
csv_cell() {
    awk -F, -v r="$2" -v h="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == h) c = i; next }
        $1 == r { print $c }' "$1"
}

# |a - b| <= tol ?
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; }

# width and height from a PNG's IHDR (bytes 16..23, big-endian)
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d\n", $1*16777216 + $2*65536 + $3*256 + $4, $5*16777216 + $6*65536 + $7*256 + $8 }'
}

cat >"$TMP/spec.yaml" <<'EOF'
name: tiny
seed: 1
nodes: 4
graph: ring
algorithm: {name: dmsgd, momentum: 0.9}
model: logreg
data: {name: synthetic, dim: 8, classes: 3, samples: 64, batch_size: 8}
train: {iterations: 40, log_every: 10}
lr: {base: 0.1}
sweep:
  graph: [ring, exp]
  nodes: [4, 8]
EOF

SW="$TMP/sw"
POINTS="graph=ring,nodes=4 graph=ring,nodes=8 graph=exp,nodes=4 graph=exp,nodes=8"

# 1. the sweep writes four run directories
run "$EXPGRAPH" sweep "$TMP/spec.yaml" --out "$SW" --quiet
if [ "$rc" -ne 0 ]; then
    bad "sweep exited $rc: $(cat "$TMP/err")"
    finish
    exit 1
fi
missing=""
for p in $POINTS; do
    for f in metrics.csv summary.csv spec.yaml; do
        [ -s "$SW/$p/$f" ] || missing="$missing $p/$f"
    done
done
if [ -z "$missing" ]; then ok "sweep wrote 4 run directories"; else bad "sweep: missing$missing"; fi

# 2. table --format csv: a 2x2 table whose cells are each run's final test_acc
run "$EXPGRAPH" table "$SW" --rows graph --cols nodes --format csv
cp "$TMP/out" "$TMP/table.csv"
header=$(head -n 1 "$TMP/table.csv")
nlines=$(wc -l <"$TMP/table.csv")
if [ "$rc" -eq 0 ] && [ "$header" = "graph,nodes=4,nodes=8" ] && [ "$nlines" -eq 3 ]; then
    ok "csv table is 2x2 with header '$header'"
else
    bad "csv table: rc=$rc header='$header' lines=$nlines stderr: $(cat "$TMP/err")"
fi
bad=""
for g in ring exp; do
    for n in 4 8; do
        want=$(last_value "$SW/graph=$g,nodes=$n/metrics.csv" test_acc)
        got=$(csv_cell "$TMP/table.csv" "$g" "nodes=$n")
        near "$got" "$want" 1e-9 || bad="$bad ($g,$n: table '$got' vs metrics.csv '$want')"
    done
done
if [ -z "$bad" ]; then ok "csv cells equal the final test_acc of each run"; else bad "csv cells:$bad"; fi
# rows sorted: exp, ring (first appearance in path order); columns numeric 4 < 8
rows=$(awk -F, 'NR > 1 { printf "%s ", $1 }' "$TMP/table.csv")
if [ "$rows" = "exp ring " ]; then ok "row order"; else bad "row order: '$rows'"; fi

# 3. md and latex
run "$EXPGRAPH" table "$SW" --rows graph --cols nodes
md_ok=1
head -n 1 "$TMP/out" | grep -q '^| graph *| nodes=4 *| nodes=8 *|$' || md_ok=0
sed -n 2p "$TMP/out" | grep -q '^| :-* | -*: | -*: |$' || md_ok=0
[ "$(grep -c '^| ' "$TMP/out")" -eq 4 ] || md_ok=0
ring4=$(last_value "$SW/graph=ring,nodes=4/metrics.csv" test_acc)
want4=$(awk -v v="$ring4" 'BEGIN { printf "%.4f", v }')
grep -q "^| ring .*| *$want4 |" "$TMP/out" || md_ok=0
if [ "$rc" -eq 0 ] && [ "$md_ok" -eq 1 ]; then
    ok "md table"
else
    bad "md table (rc=$rc, want ring/4 = $want4): $(cat "$TMP/out" "$TMP/err")"
fi
run "$EXPGRAPH" table "$SW" --rows graph --cols nodes --format latex
if [ "$rc" -eq 0 ] && grep -q '^\\begin{tabular}{lrr}$' "$TMP/out" &&
    grep -q '^\\end{tabular}$' "$TMP/out" && grep -q "^ring & $want4 & " "$TMP/out" &&
    grep -q 'multicolumn{2}{c}{nodes}' "$TMP/out"; then
    ok "latex table"
else
    bad "latex table: rc=$rc $(cat "$TMP/out" "$TMP/err")"
fi
# default layout: one row per run labelled by the differing keys
run "$EXPGRAPH" table "$SW"
if [ "$rc" -eq 0 ] && grep -q '^| graph=ring, nodes=4 ' "$TMP/out" && [ "$(grep -c '^| graph=' "$TMP/out")" -eq 4 ]; then
    ok "default rows label every differing key"
else
    bad "default table: rc=$rc $(cat "$TMP/out" "$TMP/err")"
fi
# max: over rows is at least the final value
run "$EXPGRAPH" table "$SW" --rows graph --cols nodes --metric max:test_acc --format csv
mx=$(csv_cell "$TMP/out" ring nodes=4)
if [ "$rc" -eq 0 ] && awk -v a="$mx" -v b="$ring4" 'BEGIN { exit !(a + 0 >= b + 0) }'; then
    ok "max:test_acc ($mx >= final $ring4)"
else
    bad "max:test_acc: rc=$rc '$mx' $(cat "$TMP/err")"
fi

# 4. plot: a PNG of the default size
run "$EXPGRAPH" plot "$SW" --y consensus --log-y -o "$TMP/c.png"
size=$([ -f "$TMP/c.png" ] && png_size "$TMP/c.png")
if [ "$rc" -eq 0 ] && [ "$size" = "900x560" ]; then
    ok "plot wrote a 900x560 PNG"
else
    bad "plot: rc=$rc size='$size' $(cat "$TMP/err")"
fi
run "$EXPGRAPH" plot "$SW" --y test_acc --x epoch --width 640 --height 400 --title "tiny" -o "$TMP/a.png"
size=$([ -f "$TMP/a.png" ] && png_size "$TMP/a.png")
if [ "$rc" -eq 0 ] && [ "$size" = "640x400" ]; then
    ok "plot --width/--height"
else
    bad "plot size: rc=$rc size='$size' $(cat "$TMP/err")"
fi

# 5. an interrupted sweep: re-running it runs only the unfinished point
gone="graph=exp,nodes=4"
declare -A before
for p in $POINTS; do
    before[$p]=$(stat -c %y "$SW/$p/metrics.csv")
done
rm -rf "$SW/$gone/summary.csv" "$SW/$gone/metrics.csv" "$SW/$gone/ckpt"
sleep 1
run "$EXPGRAPH" sweep "$TMP/spec.yaml" --out "$SW" --quiet
changed=""
for p in $POINTS; do
    [ "$p" = "$gone" ] && continue
    [ "$(stat -c %y "$SW/$p/metrics.csv")" = "${before[$p]}" ] || changed="$changed $p"
done
if [ "$rc" -eq 0 ] && [ -z "$changed" ] && [ -s "$SW/$gone/summary.csv" ] &&
    [ -s "$SW/$gone/metrics.csv" ]; then
    ok "re-run sweep redid only $gone"
else
    bad "re-run sweep: rc=$rc rewritten:'$changed' $(cat "$TMP/err")"
fi
# the re-run point gives the same final numbers (same spec and seed)
run "$EXPGRAPH" table "$SW" --rows graph --cols nodes --format csv
if [ "$rc" -eq 0 ] && cmp -s "$TMP/out" "$TMP/table.csv"; then
    ok "table unchanged after the re-run"
else
    bad "table after re-run differs: $(cat "$TMP/out") vs $(cat "$TMP/table.csv")"
fi

# 6. an unfinished run (no summary.csv) is still placed by its spec.yaml
cp -r "$SW" "$TMP/part"
rm "$TMP/part/graph=ring,nodes=8/summary.csv"
run "$EXPGRAPH" table "$TMP/part" --rows graph --cols nodes --format csv
if [ "$rc" -eq 0 ] && cmp -s "$TMP/out" "$TMP/table.csv"; then
    ok "keys of an unfinished run come from spec.yaml"
else
    bad "unfinished run: rc=$rc $(cat "$TMP/out" "$TMP/err")"
fi

# 7. errors exit 2 with an expgraph: message
mkdir -p "$TMP/empty"
run "$EXPGRAPH" table "$TMP/empty"
if [ "$rc" -eq 2 ] && grep -q '^expgraph: .*no run directories' "$TMP/err"; then
    ok "table on an empty directory exits 2"
else
    bad "table empty dir: rc=$rc $(cat "$TMP/err")"
fi
run "$EXPGRAPH" table "$SW" --metric nosuch
if [ "$rc" -eq 2 ] && grep -q "^expgraph: .*'nosuch'.*test_acc" "$TMP/err"; then
    ok "unknown --metric exits 2 listing the columns"
else
    bad "--metric nosuch: rc=$rc $(cat "$TMP/err")"
fi
run "$EXPGRAPH" table "$SW" --rows graph
if [ "$rc" -eq 2 ] && grep -q "^expgraph: runs .* both fall into the cell" "$TMP/err"; then
    ok "two runs in one cell exit 2 naming both"
else
    bad "cell clash: rc=$rc $(cat "$TMP/out" "$TMP/err")"
fi
run "$EXPGRAPH" plot "$SW" --y nosuch -o "$TMP/x.png"
if [ "$rc" -eq 2 ] && [ ! -e "$TMP/x.png" ]; then ok "plot unknown column exits 2"; else bad "plot --y nosuch: rc=$rc"; fi
run "$EXPGRAPH" plot "$SW" --y test_acc
if [ "$rc" -eq 2 ] && grep -q '^expgraph: .*-o' "$TMP/err"; then ok "plot without -o exits 2"; else bad "plot without -o: rc=$rc $(cat "$TMP/err")"; fi
run "$EXPGRAPH" plot "$TMP/empty" --y test_acc -o "$TMP/x.png"
if [ "$rc" -eq 2 ]; then ok "plot with no runs exits 2"; else bad "plot no runs: rc=$rc"; fi
# corrupt metrics.csv: a row with a missing field -> exit 2 naming file:line
bad="$TMP/part/graph=ring,nodes=4/metrics.csv"
printf '50,6.25,1.0,0.1,0.3,0.4\n' >>"$bad"
line=$(wc -l <"$bad")
run "$EXPGRAPH" table "$TMP/part" --rows graph --cols nodes
if [ "$rc" -eq 2 ] && grep -q "^expgraph: .*metrics.csv:$line:" "$TMP/err"; then
    ok "corrupt metrics.csv exits 2 with file:line"
else
    bad "corrupt metrics.csv: rc=$rc $(cat "$TMP/err")"
fi
run "$EXPGRAPH" plot "$TMP/part" --y test_acc -o "$TMP/x.png"
if [ "$rc" -eq 2 ]; then ok "plot on a corrupt metrics.csv exits 2"; else bad "plot corrupt: rc=$rc"; fi
run "$EXPGRAPH" table --help
if [ "$rc" -eq 0 ] && grep -q 'default test_acc' "$TMP/out"; then ok "table --help"; else bad "table --help: rc=$rc"; fi
run "$EXPGRAPH" plot --help
if [ "$rc" -eq 0 ] && grep -q 'default 900' "$TMP/out"; then ok "plot --help"; else bad "plot --help: rc=$rc"; fi

# 8. names with commas, quotes and line breaks: summary.csv quotes them (RFC 4180) and
#    table reads them back (a name "a,b" used to give 42 fields under 41 columns)
run "$EXPGRAPH" run "$TMP/spec.yaml" --set 'name="a,b \"c\""' --out "$TMP/names/r1" --quiet
rc1=$rc
run "$EXPGRAPH" run "$TMP/spec.yaml" --set 'name="x\ny, z"' --set seed=2 --out "$TMP/names/r,2 \"q\"" --quiet
if [ "$rc1" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$(sed -n 2p "$TMP/names/r1/summary.csv" | cut -c1-13)" = '"a,b ""c""",1' ]; then
    ok "summary.csv quotes a name with a comma and quotes"
else
    bad "runs with tricky names: rc=$rc1,$rc $(head -c 300 "$TMP/names/r1/summary.csv") $(cat "$TMP/err")"
fi
run "$EXPGRAPH" table "$TMP/names" --rows name --format csv
# rows in path order: "r,2 ..." sorts before "r1"
printf 'name,test_acc\n"x\ny, z",%s\n"a,b ""c""",%s\n' \
    "$(last_value "$TMP/names/r,2 \"q\"/metrics.csv" test_acc)" \
    "$(last_value "$TMP/names/r1/metrics.csv" test_acc)" >"$TMP/want.csv"
if [ "$rc" -eq 0 ] && cmp -s "$TMP/out" "$TMP/want.csv"; then
    ok "table reads the names back (csv output quoted)"
else
    bad "table on tricky names: rc=$rc $(cat "$TMP/out" "$TMP/err") want $(cat "$TMP/want.csv")"
fi
run "$EXPGRAPH" table "$TMP/names" --rows name
if [ "$rc" -eq 0 ] && grep -q '^| a,b "c" *| ' "$TMP/out" && grep -q '^| x y, z *| ' "$TMP/out" &&
    [ "$(wc -l <"$TMP/out")" -eq 4 ]; then
    ok "md table keeps one line per row (a line break in a name becomes a space)"
else
    bad "md table on tricky names: rc=$rc $(cat "$TMP/out" "$TMP/err")"
fi
run "$EXPGRAPH" plot "$TMP/names" --y train_loss -o "$TMP/names.png"
if [ "$rc" -eq 0 ] && [ -s "$TMP/names.png" ]; then ok "plot reads them too"; else bad "plot on tricky names: rc=$rc $(cat "$TMP/err")"; fi

finish

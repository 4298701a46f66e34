#!/usr/bin/env bash
# End-to-end (issue 28): the cluster: section and the metrics.csv column time_model_s
# (docs/timemodel.md). The column is the same on 1, 2 and 3 ranks and after a kill + resume
# (killed on 1 rank, resumed on 3) for psgd and onepeer_exp with stragglers, choco, gt on
# exp, and local steps + global averages + an imperfect network; without cluster: the file
# has no such column (existing metrics.csv files unchanged); psgd inside one host matches
# the formula by hand; stragglers only add time; samples_per_s: measured gives a column;
# table --metric reach:...  --at time_model_s and plot --x time_model_s read it; expgraph
# graph --cluster prints the modelled seconds per iteration (checked by hand for psgd and
# ring) and refuses what it cannot model.
. "$(dirname "$0")/lib.sh"

cat > "$TMP/n.yaml" <<'YAML'
name: n
seed: 7
nodes: 6
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: mlp, hidden: [12]}
data: {name: synthetic, dim: 12, classes: 3, samples: 96, batch_size: 4, heterogeneity: 0.5}
train: {iterations: 45, log_every: 5, eval_every: 15, checkpoint_every: 20}
lr: {base: 0.05, schedule: cosine}
YAML
CL='cluster={nodes_per_host: 2, latency_us: 10, bandwidth_gbps: 25, intra_latency_us: 2, intra_bandwidth_gbps: 200, samples_per_s: 400, straggler: {prob: 0.1, slowdown: 4}}'

col() { # col FILE NAME: column NAME of every row, one per line
  awk -F, -v n="$2" 'NR==1{for(i=1;i<=NF;i++)if($i==n)c=i;next}{print (c ? $c : "MISSING")}' "$1"
}
# same_model A B: the same iter and time_model_s columns (psgd: its train_loss already
# differs in the last digit between 1 and 3 ranks without cluster:, so psgd's runs compare
# the model's column only; the other methods compare the whole file)
same_model() {
  [ -s "$1" ] && [ -s "$2" ] || return 1
  diff <(col "$1" iter; col "$1" time_model_s) <(col "$2" iter; col "$2" time_model_s)
}
same_run() { # same_run TAG A B
  if [ "${1#psgd}" != "$1" ]; then same_model "$2" "$3"; else same_metrics "$2" "$3"; fi
}
increasing() { # rows, and every value > 0 and above the previous one
  [ -s "$1" ] && col "$1" time_model_s | awk 'BEGIN{p=0} !($1+0 > p){exit 1} {p=$1+0} END{exit NR < 2}'
}

cases=(
  "psgd-str|algorithm=psgd;$CL"
  "ope-str|$CL"
  "choco|algorithm={name: choco, compress: {name: top_k, ratio: 0.1}};$CL"
  "gt-exp|algorithm.name=gt;graph=exp;$CL"
  "ring-H-net|graph=ring;algorithm.local_steps=2;algorithm.global_every=30;network={drop: 0.1, offline: 0.2};$CL"
)
sets_of() { local IFS=';'; for s in $1; do printf '%s\0' --set "$s"; done; }

for c in "${cases[@]}"; do
  tag=${c%%|*}
  mapfile -d '' S < <(sets_of "${c#*|}")
  "$EXPGRAPH" run "$TMP/n.yaml" "${S[@]}" --out "$TMP/$tag-1" --quiet
  check "$tag: runs on 1 rank" test -s "$TMP/$tag-1/summary.csv"
  check "$tag: time_model_s is the last column" sh -c "head -1 '$TMP/$tag-1/metrics.csv' | grep -q ',msgs_lost,time_model_s\$'"
  check "$tag: time_model_s grows in every row" increasing "$TMP/$tag-1/metrics.csv"
  for np in 2 3; do
    mpi "$np" run "$TMP/n.yaml" "${S[@]}" --out "$TMP/$tag-$np" --quiet
    check "$tag: P=$np gives P=1's metrics.csv (time_model_s included)" same_run "$tag" "$TMP/$tag-1/metrics.csv" "$TMP/$tag-$np/metrics.csv"
  done
  at=$(( (RANDOM % 24) + 21 )) # after the first checkpoint (20), before the end (45)
  (EXPGRAPH_KILL_AT=$at exec "$EXPGRAPH" run "$TMP/n.yaml" "${S[@]}" --out "$TMP/$tag-k" --quiet 2>/dev/null)
  check "$tag: killed at $at (no summary)" test ! -e "$TMP/$tag-k/summary.csv"
  mpi 3 run "$TMP/n.yaml" "${S[@]}" --out "$TMP/$tag-k" --quiet --resume
  check "$tag: killed at $at, resumed on 3 ranks: same metrics.csv" same_run "$tag" "$TMP/$tag-1/metrics.csv" "$TMP/$tag-k/metrics.csv"
done

# the resolved spec.yaml (cluster: written out) reruns to the same file
"$EXPGRAPH" run "$TMP/ope-str-1/spec.yaml" --out "$TMP/rerun" --quiet
check "spec.yaml with its cluster: block reruns to the same metrics.csv" same_metrics "$TMP/ope-str-1/metrics.csv" "$TMP/rerun/metrics.csv"

# without cluster: the header of every run so far (no new column)
"$EXPGRAPH" run "$TMP/n.yaml" --out "$TMP/plain" --quiet
check "no cluster: no time_model_s column" test "$(head -1 "$TMP/plain/metrics.csv")" = \
  "iter,epoch,time_s,lr,train_loss,test_loss,test_acc,consensus,bytes_sent,node_acc_mean,bytes_inter,msgs_lost"
check "no cluster: spec.yaml has no cluster: section" sh -c "! grep -q '^cluster:' '$TMP/plain/spec.yaml'"
# the training itself does not change with cluster: (all columns but the new one)
check "cluster: changes nothing else" diff <(strip_time "$TMP/plain/metrics.csv") \
  <(strip_time "$TMP/ope-str-1/metrics.csv" | cut -d, -f1-11)

# psgd in one host, no stragglers, by hand: per iteration c + 2 (n-1) alpha + 2 (n-1)/n 8 b /
# beta = 4/400 + 10 x 2e-6 + 10/6 x 8 x 780 / 200e9 (the MLP 12-12-3 has 195 parameters)
"$EXPGRAPH" run "$TMP/n.yaml" --set algorithm=psgd --set 'cluster={nodes_per_host: 8, latency_us: 10, bandwidth_gbps: 25, intra_latency_us: 2, intra_bandwidth_gbps: 200, samples_per_s: 400}' --out "$TMP/psgd1" --quiet
want=$(awk 'BEGIN{printf "%.15g", 45 * (4/400 + 10*2e-6 + 10/6*8*780/200e9)}')
got=$(col "$TMP/psgd1/metrics.csv" time_model_s | tail -1)
check "psgd, one host: time_model_s at 45 = $got, by hand $want" \
  awk -v a="$got" -v b="$want" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 1e-12 + 1e-8*b)}'
# stragglers only add time; the same run without them is faster
"$EXPGRAPH" run "$TMP/n.yaml" --set "$CL" --set cluster.straggler.prob=0 --out "$TMP/nostr" --quiet
a=$(col "$TMP/nostr/metrics.csv" time_model_s | tail -1) b=$(col "$TMP/ope-str-1/metrics.csv" time_model_s | tail -1)
check "stragglers: $b > $a without them" awk -v a="$a" -v b="$b" 'BEGIN{exit !(b > a)}'
# summary.csv carries the cluster keys: a table by cluster.straggler.prob
t=$("$EXPGRAPH" table "$TMP/ope-str-1" "$TMP/nostr" --rows cluster.straggler.prob --metric time_model_s --format csv)
check "table --rows cluster.straggler.prob --metric time_model_s" test "$(echo "$t" | tail -2 | tr '\n' ' ')" = "0,$a 0.1,$b "

# samples_per_s: measured: this run's own speed (agreed by the ranks; not rank-invariant)
"$EXPGRAPH" run "$TMP/n.yaml" --set 'cluster={latency_us: 10, bandwidth_gbps: 1, samples_per_s: measured}' --out "$TMP/meas" --quiet
check "measured: time_model_s grows in every row" increasing "$TMP/meas/metrics.csv"
check "measured: spec.yaml says so" grep -q 'samples_per_s: measured' "$TMP/meas/spec.yaml"
mpi 2 run "$TMP/n.yaml" --set 'cluster={latency_us: 10, bandwidth_gbps: 1, samples_per_s: measured}' --out "$TMP/meas2" --quiet
check "measured on 2 ranks: a column" increasing "$TMP/meas2/metrics.csv"

# table: the first time_model_s at which test_acc >= V (V = the run's second evaluation)
m="$TMP/ope-str-1/metrics.csv"
V=$(awk -F, 'NR>1 && $7!="" {n++; if(n==2){print $7; exit}}' "$m")
want=$(awk -F, -v v="$V" 'NR>1 && $7!="" && $7+0 >= v+0 {print $13; exit}' "$m")
got=$("$EXPGRAPH" table "$TMP/ope-str-1" --metric "reach:test_acc>=$V" --at time_model_s --format csv | tail -1 | cut -d, -f2)
check "table reach:test_acc>=$V --at time_model_s: $got = $want" test -n "$want" -a "$got" = "$want"
"$EXPGRAPH" plot "$TMP/ope-str-1" "$TMP/psgd-str-1" --y test_acc --x time_model_s -o "$TMP/t.png" 2>"$TMP/err"
check "plot --x time_model_s writes a PNG" test -s "$TMP/t.png"
"$EXPGRAPH" plot "$TMP/plain" --y test_acc --x time_model_s -o "$TMP/u.png" 2>"$TMP/err"; rc=$?
check "plot --x time_model_s without cluster: exit 2 naming the column" \
  sh -c "[ $rc -eq 2 ] && grep -q time_model_s '$TMP/err'"

# expgraph graph --cluster: by hand with P = 1000 (b = 4000), batch 32, 400 samples/s
cat > "$TMP/c.yaml" <<'YAML'
cluster: {nodes_per_host: 8, latency_us: 10, bandwidth_gbps: 25, intra_latency_us: 2, intra_bandwidth_gbps: 200, samples_per_s: 400}
YAML
out=$("$EXPGRAPH" graph ring --nodes 8,16 --format csv --cluster "$TMP/c.yaml" --params 1000)
check "graph --cluster: csv header" test "$(echo "$out" | head -1)" = \
  "graph,nodes,period,degree,rho,gap,rho_period,time_iter_s,psgd_iter_s"
# 8 nodes, one host: psgd 0.08 + 14 x 2e-6 + 14/8 x 8 x 4000 / 200e9; ring (m = 2 messages
# per node) intra-host 0.08 + 2e-6 + 2 x 8 x 4000 / 200e9; 16 nodes over 2 hosts: the
# nodes at the hosts' edges pay the inter-host link 10e-6 + 2 x 8 x 4000 / 25e9
near() { awk -v a="$1" -v b="$2" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d <= 1e-8*b)}'; }
r8=$(echo "$out" | awk -F, '$2==8') r16=$(echo "$out" | awk -F, '$2==16')
check "graph --cluster: ring 8 psgd_iter_s" near "$(echo "$r8" | cut -d, -f9)" "$(awk 'BEGIN{printf "%.15g", 0.08 + 14*2e-6 + 14/8*8*4000/200e9}')"
check "graph --cluster: ring 8 time_iter_s" near "$(echo "$r8" | cut -d, -f8)" "$(awk 'BEGIN{printf "%.15g", 0.08 + 2e-6 + 2*8*4000/200e9}')"
check "graph --cluster: ring 16 time_iter_s" near "$(echo "$r16" | cut -d, -f8)" "$(awk 'BEGIN{printf "%.15g", 0.08 + 10e-6 + 2*8*4000/25e9}')"
check "graph without --cluster: the old columns" test "$("$EXPGRAPH" graph ring --nodes 8 --format csv | head -1)" = \
  "graph,nodes,period,degree,rho,gap,rho_period"
gerr() { # gerr TEXT ARGS...: exit 2 and TEXT on stderr
  local t=$1; shift
  "$EXPGRAPH" graph "$@" >/dev/null 2>"$TMP/err"; local rc=$?
  [ $rc -eq 2 ] && grep -q "$t" "$TMP/err" || { echo "rc=$rc: $(cat "$TMP/err")" >&2; return 1; }
}
check "graph --cluster without --params: exit 2" gerr "needs --params" ring --nodes 8 --cluster "$TMP/c.yaml"
check "graph --params without --cluster: exit 2" gerr "applies with --cluster" ring --nodes 8 --params 10
echo 'cluster: {latency_us: 1, bandwidth_gbps: 1, samples_per_s: measured}' > "$TMP/m.yaml"
check "graph --cluster with measured: exit 2" gerr "measured needs a run" ring --nodes 8 --cluster "$TMP/m.yaml" --params 10
echo 'cluster: {latency_us: 1, bandwidth_gbps: -1, samples_per_s: 3}' > "$TMP/b.yaml"
check "graph --cluster, a bad key: file:line and the key" gerr "b.yaml:1:.*cluster.bandwidth_gbps must be > 0" ring --nodes 8 --cluster "$TMP/b.yaml" --params 10
finish

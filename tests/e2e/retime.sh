#!/usr/bin/env bash
# End-to-end: the same runs on another cluster (docs/timemodel.md, "The same runs on another
# cluster"). Runs trained WITHOUT cluster: (set A), the same runs trained WITH the cluster of
# F.yaml (set B) and with another cluster (set C); then `table --cluster F.yaml` and
# `plot --cluster F.yaml` over A and over C must give exactly what B gives from its own
# time_model_s column: every row (table reach:iter>=K --at time_model_s for each logged K),
# a reach:test_acc>=V, and the PNG byte for byte. Cases: psgd, dmsgd over onepeer_exp and
# over ring with local_steps + global_every, choco, a schedule graph by epochs with a
# validation hold-out (the iterations per epoch), an imperfect network, a CNN with batch norm
# whose statistics are gossiped (its message bytes) on an idx image set; stragglers in F.
# One run of A is killed and resumed on 2 ranks, one of B runs on 2 ranks. Nothing on disk
# changes. Bad input: a missing file, a file without a cluster mapping, bad values
# (FILE:LINE:COL and the key), samples_per_s: measured, a run without spec.yaml: exit 2.
. "$(dirname "$0")/lib.sh"

cat > "$TMP/n.yaml" <<'YAML'
name: n
seed: 7
nodes: 6
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: mlp, hidden: [12]}
data: {name: synthetic, dim: 12, classes: 3, samples: 96, batch_size: 4, heterogeneity: 0.5}
train: {iterations: 90, log_every: 10, eval_every: 30, checkpoint_every: 20}
lr: {base: 0.05, schedule: cosine}
YAML
# F: 2 nodes a host, 1 Gbit/s between hosts, 10% stragglers
cat > "$TMP/F.yaml" <<'YAML'
# the target cluster
cluster:
  nodes_per_host: 2
  latency_us: 10
  bandwidth_gbps: 1
  intra_latency_us: 2
  intra_bandwidth_gbps: 200
  samples_per_s: 400
  straggler: {prob: 0.1, slowdown: 4}
YAML
CF='cluster={nodes_per_host: 2, latency_us: 10, bandwidth_gbps: 1, intra_latency_us: 2, intra_bandwidth_gbps: 200, samples_per_s: 400, straggler: {prob: 0.1, slowdown: 4}}'
CG='cluster={nodes_per_host: 8, latency_us: 5, bandwidth_gbps: 25, samples_per_s: 1000}'

cases=(
  "psgd|algorithm=psgd"
  "ope|graph=onepeer_exp"
  "ring-H-T|graph=ring;algorithm.local_steps=2;algorithm.global_every=30"
  "choco|algorithm={name: choco, compress: {name: top_k, ratio: 0.1}}"
  "sched-val|graph={name: schedule, phases: [{graph: ring, until_epoch: 2}, {graph: onepeer_exp}]};data.val_fraction=0.25"
  "net|graph=exp;network={drop: 0.1, offline: 0.2}"
  "cnn-bn|model={name: cnn, channels: [4], hidden: [8], norm: batch, norm_stats: gossip};data={name: idx, path: $TMP/q, batch_size: 4}"
)
quadrant_idx "$TMP/q" 8 5 240 60 # 8x8 grey images: the CNN's parameters and batch-norm statistics
sets_of() { local IFS=';'; for s in $1; do printf '%s\0' --set "$s"; done; }

for c in "${cases[@]}"; do
  tag=${c%%|*}
  mapfile -d '' S < <(sets_of "${c#*|}")
  if [ "$tag" = ope ]; then # A: killed and resumed on 2 ranks; B: on 2 ranks
    (EXPGRAPH_KILL_AT=45 exec "$EXPGRAPH" run "$TMP/n.yaml" "${S[@]}" --out "$TMP/A/$tag" --quiet 2>/dev/null)
    mpi 2 run "$TMP/n.yaml" "${S[@]}" --out "$TMP/A/$tag" --quiet --resume
    mpi 2 run "$TMP/n.yaml" "${S[@]}" --set "$CF" --out "$TMP/B/$tag" --quiet
  else
    "$EXPGRAPH" run "$TMP/n.yaml" "${S[@]}" --out "$TMP/A/$tag" --quiet
    "$EXPGRAPH" run "$TMP/n.yaml" "${S[@]}" --set "$CF" --out "$TMP/B/$tag" --quiet
  fi
  "$EXPGRAPH" run "$TMP/n.yaml" "${S[@]}" --set "$CG" --out "$TMP/C/$tag" --quiet
  check "$tag: trained without, with F's and with another cluster" \
    test -s "$TMP/A/$tag/summary.csv" -a -s "$TMP/B/$tag/summary.csv" -a -s "$TMP/C/$tag/summary.csv"
done
check "A has no time_model_s column" sh -c "! grep -q time_model_s '$TMP/A/ope/metrics.csv'"
sum_a=$(cd "$TMP/A" && find . -type f | sort | xargs md5sum | md5sum)

# every logged iteration K: the time_model_s of its row, for every run at once
iters=$(cut -d, -f1 "$TMP/B/ope/metrics.csv" | tail -n +2 | tr '\n' ' ')
for k in $iters; do
  want=$("$EXPGRAPH" table "$TMP/B" --metric "reach:iter>=$k" --at time_model_s --format csv)
  for s in A C; do
    got=$("$EXPGRAPH" table "$TMP/$s" --cluster "$TMP/F.yaml" --metric "reach:iter>=$k" --at time_model_s --format csv)
    check "table $s --cluster F at iter $k: every run's time_model_s as B wrote it" \
      test -n "$want" -a "$got" = "$want"
  done
done
# the retimed columns really differ from C's own (a test that can fail)
own_c=$("$EXPGRAPH" table "$TMP/C" --metric "reach:iter>=90" --at time_model_s --format csv)
check "C's own cluster gives other times than F" test -n "$own_c" -a "$own_c" != "$want"
# one line of B's file by hand: the table prints what metrics.csv holds
fileval=$(awk -F, 'NR==1{for(i=1;i<=NF;i++)if($i=="time_model_s")c=i} END{print $c}' "$TMP/B/ring-H-T/metrics.csv")
check "table's value at 90 for ring-H-T is the file's ($fileval)" sh -c "echo '$want' | grep -q ',$fileval\$'"

# reach:test_acc>=V --at time_model_s (V: ope's second evaluation)
V=$(awk -F, 'NR>1 && $7!="" {n++; if(n==2){print $7; exit}}' "$TMP/B/ope/metrics.csv")
want=$("$EXPGRAPH" table "$TMP/B" --metric "reach:test_acc>=$V" --at time_model_s --format csv)
got=$("$EXPGRAPH" table "$TMP/A" --cluster "$TMP/F.yaml" --metric "reach:test_acc>=$V" --at time_model_s --format csv)
check "table --cluster F reach:test_acc>=$V --at time_model_s = B's" test -n "$want" -a "$got" = "$want"
got=$("$EXPGRAPH" table "$TMP/C" --cluster "$TMP/F.yaml" --metric "reach:test_acc>=$V" --at time_model_s --format csv)
check "a run with another cluster: gets F's (reach = B's)" test "$got" = "$want"
# the retimed runs' cluster keys are F's: a table by cluster.bandwidth_gbps
got=$("$EXPGRAPH" table "$TMP/C/ope" --cluster "$TMP/F.yaml" --rows cluster.bandwidth_gbps --metric time_model_s --format csv | tail -1 | cut -d, -f1)
check "retimed keys: cluster.bandwidth_gbps = 1 (C's was 25)" test "$got" = 1

# plot: the same PNG as B's own column; not C's own
"$EXPGRAPH" plot "$TMP/B" --y test_acc --x time_model_s -o "$TMP/b.png"
"$EXPGRAPH" plot "$TMP/A" --cluster "$TMP/F.yaml" --y test_acc --x time_model_s -o "$TMP/a.png"
"$EXPGRAPH" plot "$TMP/C" --cluster "$TMP/F.yaml" --y test_acc --x time_model_s -o "$TMP/cf.png"
"$EXPGRAPH" plot "$TMP/C" --y test_acc --x time_model_s -o "$TMP/c.png"
check "plot A --cluster F: B's PNG byte for byte" sh -c "test -s '$TMP/b.png' && cmp -s '$TMP/a.png' '$TMP/b.png'"
check "plot C --cluster F: B's PNG byte for byte" cmp -s "$TMP/cf.png" "$TMP/b.png"
check "plot C (its own cluster) differs" sh -c "test -s '$TMP/c.png' && ! cmp -s '$TMP/c.png' '$TMP/b.png'"

check "nothing under A changed" test "$(cd "$TMP/A" && find . -type f | sort | xargs md5sum | md5sum)" = "$sum_a"

# ---- bad input: exit 2, a message naming the file (and FILE:LINE:COL and the key) ----
bad_case() { # bad_case DESCRIPTION PATTERN CMD...: exit 2 and stderr matching PATTERN
  local d=$1 pat=$2; shift 2
  "$@" > "$TMP/out" 2> "$TMP/err"; local rc=$?
  if [ $rc -eq 2 ] && grep -Eq -e "$pat" "$TMP/err" && [ ! -s "$TMP/out" ]; then ok "$d"
  else bad "$d (exit $rc: $(cat "$TMP/err"))"; fi
}
T=("$EXPGRAPH" table "$TMP/A" --metric "reach:test_acc>=$V" --at time_model_s)
P=("$EXPGRAPH" plot "$TMP/A" --y test_acc --x time_model_s -o "$TMP/bad.png")
bad_case "table: a missing cluster file" "nofile\.yaml: cannot open" "${T[@]}" --cluster "$TMP/nofile.yaml"
bad_case "plot: a missing cluster file" "nofile\.yaml" "${P[@]}" --cluster "$TMP/nofile.yaml"
check "plot: no PNG after an error" test ! -e "$TMP/bad.png"
printf 'name: x\nnodes: 4\n' > "$TMP/nocl.yaml"
bad_case "a file without cluster: (a spec without it)" "nocl\.yaml:1:1: .*holds no cluster: mapping" "${T[@]}" --cluster "$TMP/nocl.yaml"
: > "$TMP/empty.yaml"
bad_case "an empty file" "empty\.yaml.*cluster" "${T[@]}" --cluster "$TMP/empty.yaml"
printf 'cluster:\n  latency_us: 10\n  bandwidth_gbps: 0\n  samples_per_s: 400\n' > "$TMP/bw0.yaml"
bad_case "bandwidth_gbps: 0: FILE:3:19 and the key" "bw0\.yaml:3:19: cluster\.bandwidth_gbps" "${T[@]}" --cluster "$TMP/bw0.yaml"
bad_case "plot: bandwidth_gbps: 0" "bw0\.yaml:3:19: cluster\.bandwidth_gbps" "${P[@]}" --cluster "$TMP/bw0.yaml"
printf 'cluster: {latency_us: 10, bandwidth_gbps: 1, samples_per_s: 400, straggler: {prob: 2}}\n' > "$TMP/pr.yaml"
bad_case "straggler.prob: 2" "pr\.yaml:1:[0-9]+: cluster\.straggler\.prob" "${T[@]}" --cluster "$TMP/pr.yaml"
printf 'cluster: {latency_us: 10, bandwidth_gbps: 1, samples_per_s: 400, speed: 3}\n' > "$TMP/uk.yaml"
bad_case "an unknown key" "uk\.yaml:1:[0-9]+: .*speed" "${T[@]}" --cluster "$TMP/uk.yaml"
printf 'cluster:\n  latency_us: 10\n  bandwidth_gbps: 1\n  samples_per_s: measured\n' > "$TMP/meas.yaml"
bad_case "samples_per_s: measured refused (FILE:4:18)" "meas\.yaml:4:18: cluster\.samples_per_s: measured" "${T[@]}" --cluster "$TMP/meas.yaml"
mkdir -p "$TMP/X" && cp -r "$TMP/A/ope" "$TMP/X/nospec" && rm "$TMP/X/nospec/spec.yaml"
bad_case "a run without spec.yaml, naming it" "X/nospec/spec\.yaml" "$EXPGRAPH" table "$TMP/X/nospec" --cluster "$TMP/F.yaml" --metric time_model_s
bad_case "plot: a run without spec.yaml" "X/nospec/spec\.yaml" "$EXPGRAPH" plot "$TMP/X/nospec" --cluster "$TMP/F.yaml" --y test_acc --x time_model_s -o "$TMP/bad.png"
cp -r "$TMP/A/ope" "$TMP/X/badspec" && sed -i 's/^nodes: 6/nodes: 0/' "$TMP/X/badspec/spec.yaml"
bad_case "a run whose spec.yaml is bad: FILE:LINE:COL" "X/badspec/spec\.yaml:[0-9]+:[0-9]+: .*nodes" "$EXPGRAPH" table "$TMP/X/badspec" --cluster "$TMP/F.yaml" --metric time_model_s
# a relative data.path is read from the working directory, as expgraph run reads it
(cd "$TMP" && "$EXPGRAPH" run n.yaml --set 'model={name: cnn, channels: [4], hidden: [8]}' \
  --set 'data={name: idx, path: q, batch_size: 4}' --set train.iterations=10 --out R/rel --quiet)
check "a relative data.path, from the run's working directory: retimed" \
  sh -c "cd '$TMP' && '$EXPGRAPH' table R/rel --cluster F.yaml --metric time_model_s --format csv | grep -q '^rel,[0-9]'"
bad_case "a relative data.path from elsewhere: spec.yaml:LINE:COL: data.path" \
  "R/rel/spec\.yaml:[0-9]+:[0-9]+: data\.path .*working directory" sh -c "cd / && exec '$EXPGRAPH' table '$TMP/R/rel' --cluster '$TMP/F.yaml' --metric time_model_s"
bad_case "--cluster without a value" "--cluster" "$EXPGRAPH" table "$TMP/A" --cluster
finish

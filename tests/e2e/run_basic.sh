#!/usr/bin/env bash
# End-to-end: a synthetic logreg run whose loss falls; the files of docs/spec.md#files-a-run-writes;
# the same metrics.csv plainly and under mpirun -np 2 and -np 4; --set; validate; exit codes.
. "$(dirname "$0")/lib.sh"

cat > "$TMP/syn.yaml" <<'YAML'
name: syn
seed: 3
nodes: 8
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 1.0e-4}
model: logreg
data: {name: synthetic, dim: 20, classes: 4, samples: 256, batch_size: 16}
train: {epochs: 6, log_every: 12, eval_every: 24}
lr: {base: 0.1, warmup_epochs: 1, schedule: cosine}
YAML

out="$TMP/r1"
check "plain run exits 0" "$EXPGRAPH" run "$TMP/syn.yaml" --out "$out" --quiet
check "metrics.csv header is exactly SPEC's" \
  test "$(head -1 "$out/metrics.csv" | cut -d, -f1-9)" = "iter,epoch,time_s,lr,train_loss,test_loss,test_acc,consensus,bytes_sent"
check "spec.yaml and summary.csv written" test -s "$out/spec.yaml" -a -s "$out/summary.csv"
check "summary.csv has one header and one row" test "$(wc -l < "$out/summary.csv")" -eq 2
loss_falls "$out/metrics.csv" 0.8
check "last row has test metrics" test -n "$(tail -1 "$out/metrics.csv" | cut -d, -f7)"
check "non-eval row leaves test_* empty" test -z "$(sed -n 2p "$out/metrics.csv" | cut -d, -f7)"
acc=$(tail -1 "$out/metrics.csv" | cut -d, -f7)
check "accuracy well above chance ($acc)" awk -v a="$acc" 'BEGIN{exit !(a > 0.5)}'
check "spec.yaml reruns to the same numbers" "$EXPGRAPH" run "$out/spec.yaml" --out "$TMP/r1b" --quiet
check "rerun from spec.yaml: same metrics" same_metrics "$out/metrics.csv" "$TMP/r1b/metrics.csv"

for np in 2 4; do
  check "mpirun -np $np exits 0" mpi "$np" run "$TMP/syn.yaml" --out "$TMP/np$np" --quiet
  check "mpirun -np $np: metrics.csv identical to the plain run" \
    same_metrics "$out/metrics.csv" "$TMP/np$np/metrics.csv"
done
check "mpirun -np 3 (uneven split) identical" mpi 3 run "$TMP/syn.yaml" --out "$TMP/np3" --quiet
check "np 3 metrics identical" same_metrics "$out/metrics.csv" "$TMP/np3/metrics.csv"

# the thread count (more threads than cores included) changes nothing: an MLP large enough
# for the combine and the gradients to run threaded
for th in 1 3; do
  EXPGRAPH_THREADS=$th "$EXPGRAPH" run "$TMP/syn.yaml" --set model.name=mlp --set 'model.hidden=[512]' \
    --set graph=exp --set train.epochs=2 --out "$TMP/th$th" --quiet
done
check "EXPGRAPH_THREADS=1 and 3: metrics.csv identical" same_metrics "$TMP/th1/metrics.csv" "$TMP/th3/metrics.csv"

# the other algorithms also give P-independent numbers (gossip-only ones bit for bit)
for algo in dsgd gt ed qg_dmsgd; do
  "$EXPGRAPH" run "$TMP/syn.yaml" --set algorithm=$algo --set graph=exp --out "$TMP/a-$algo-1" --quiet &&
    mpi 2 run "$TMP/syn.yaml" --set algorithm=$algo --set graph=exp --out "$TMP/a-$algo-2" --quiet
  check "$algo on exp: np 1 == np 2" same_metrics "$TMP/a-$algo-1/metrics.csv" "$TMP/a-$algo-2/metrics.csv"
done
# psgd (all-reduce): to 6 significant digits
"$EXPGRAPH" run "$TMP/syn.yaml" --set algorithm=psgd --out "$TMP/p1" --quiet
mpi 2 run "$TMP/syn.yaml" --set algorithm=psgd --out "$TMP/p2" --quiet
check "psgd np 1 vs np 2 within 6 significant digits" \
  awk -F, 'NR==FNR{a[FNR]=$5; next} FNR>1{d=$5-a[FNR]; if (d<0) d=-d; if (d > 1e-6*($5<0?-$5:$5)+1e-12) bad=1} END{exit bad}' \
  "$TMP/p1/metrics.csv" "$TMP/p2/metrics.csv"

# --set, validate
check "--set changes the run" "$EXPGRAPH" run "$TMP/syn.yaml" --set nodes=4 --set graph=ring --out "$TMP/s" --quiet
check "--set recorded in spec.yaml" grep -q "^nodes: 4" "$TMP/s/spec.yaml"
check "validate ok" "$EXPGRAPH" validate "$TMP/syn.yaml"
"$EXPGRAPH" validate "$TMP/syn.yaml" --set nodes=0 2> "$TMP/err"; rc=$?
check "validate bad --set exits 2" test "$rc" -eq 2
check "message names --set and the key" grep -q "^expgraph: .*--set nodes=0.*nodes" "$TMP/err"

# a finished run is not clobbered; --force starts over
"$EXPGRAPH" run "$TMP/syn.yaml" --out "$out" --quiet 2> "$TMP/err"; rc=$?
check "finished run dir refused (exit 2)" test "$rc" -eq 2
check "refusal says --force" grep -q -- "--force" "$TMP/err"
check "--force reruns" "$EXPGRAPH" run "$TMP/syn.yaml" --out "$out" --quiet --force

# more ranks than nodes is refused
mpi 3 run "$TMP/syn.yaml" --set nodes=2 --set graph=ring --out "$TMP/toomany" --quiet 2> "$TMP/err"; rc=$?
check "more ranks than nodes: exit 2" test "$rc" -eq 2
check "no directory left for it" test ! -e "$TMP/toomany"

# help and version
check "--help" "$EXPGRAPH" --help
check "run --help mentions defaults" sh -c "'$EXPGRAPH' run --help | grep -q 'runs/<name>'"
check "--version" sh -c "'$EXPGRAPH' --version | grep -q '^expgraph '"
"$EXPGRAPH" frobnicate 2>/dev/null; rc=$?
check "unknown command exits 2" test "$rc" -eq 2
finish

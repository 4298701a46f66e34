#!/usr/bin/env bash
# lenet_val.sh - end-to-end: LeNet-5 with group norm (model.padding: valid, hidden [120, 84],
# norm_after: pool, groups [2, 4]: 44,470 parameters on 1x28x28) with data.val_fraction.
# metrics.csv (val_loss and val_acc included) is identical for 1, 2 and 3 ranks, for 1 and
# 2 threads, and after kill + --resume; val_* are empty without a hold-out; the held-out
# samples leave training (fewer iterations per epoch); the BaseGraph spec validates. A tiny
# generated idx set keeps it fast (28x28 grey images of 4 classes, a bright quadrant each).
. "$(dirname "$0")/lib.sh"

quadrant_idx "$TMP/imgs" 28 11 480 100

cat > "$TMP/l.yaml" <<YAML
name: lenet
seed: 3
nodes: 5
graph: {name: base, peers: 1}
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: cnn, channels: [6, 16], kernel: 5, padding: valid, hidden: [120, 84],
        norm: group, groups: [2, 4], norm_after: pool}
data: {name: idx, path: $TMP/imgs, partition: dirichlet, alpha: 0.5, val_fraction: 0.2,
       batch_size: 8, augment: [crop]}
train: {iterations: 36, log_every: 6, eval_every: 12, checkpoint_every: 12}
lr: {base: 0.05, warmup_epochs: 1, schedule: cosine}
YAML

"$EXPGRAPH" run "$TMP/l.yaml" --out "$TMP/p1" >"$TMP/err1" 2>&1
check "LeNet-5 with group norm and a hold-out runs" test -s "$TMP/p1/summary.csv"
# 44,470 parameters with 10 classes; these 4 classes take 84 x 6 + 6 = 510 fewer
check "the model line says 43960 params (LeNet-5's 44,470 with a 4-class output)" \
  grep -q 'valid h120-84 group-norm(2,4) after pool -> 4 (43960 params)' "$TMP/err1"
hdr=$(head -n 1 "$TMP/p1/metrics.csv")
check "metrics.csv ends with val_loss,val_acc" test "${hdr%,val_loss,val_acc}" != "$hdr"
# column NAME of a metrics.csv, one value a line (empty cells as empty lines)
mcol() { awk -F, -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next } { print $c }' "$1"; }
valrows=$(paste -d, <(mcol "$TMP/p1/metrics.csv" iter) <(mcol "$TMP/p1/metrics.csv" val_acc) \
  <(mcol "$TMP/p1/metrics.csv" val_loss) |
  awk -F, '$2 != "" && $2 >= 0 && $2 <= 1 && $3 > 0 { printf "%s ", $1 }')
check "val_acc in [0, 1], val_loss > 0 at the evaluation rows only (iterations 12 24 36: '$valrows')" \
  test "$valrows" = "12 24 36 "
check "val_loss empty in rows without an evaluation" test -z "$(mcol "$TMP/p1/metrics.csv" val_loss | sed -n 1p)"

# 1, 2 and 3 ranks; 1 and 2 threads
mpi 2 run "$TMP/l.yaml" --out "$TMP/p2" --quiet
check "2 ranks: metrics.csv identical to 1 rank (val_* included)" same_metrics "$TMP/p1/metrics.csv" "$TMP/p2/metrics.csv"
mpi 3 run "$TMP/l.yaml" --out "$TMP/p3" --quiet
check "3 ranks: identical" same_metrics "$TMP/p1/metrics.csv" "$TMP/p3/metrics.csv"
EXPGRAPH_THREADS=1 "$EXPGRAPH" run "$TMP/l.yaml" --out "$TMP/t1" --quiet
EXPGRAPH_THREADS=2 "$EXPGRAPH" run "$TMP/l.yaml" --out "$TMP/t2" --quiet
check "1 and 2 threads: identical" same_metrics "$TMP/t1/metrics.csv" "$TMP/t2/metrics.csv"

# kill + resume, on 2 ranks and on 1
for np in 1 2; do
  run() { if [ "$np" -eq 1 ]; then "$EXPGRAPH" "$@"; else mpi "$np" "$@"; fi; }
  at=$(( (RANDOM % 20) + 13 )) # after the first checkpoint (iteration 12)
  EXPGRAPH_KILL_AT=$at run run "$TMP/l.yaml" --out "$TMP/kill$np" --quiet 2>/dev/null
  check "np $np: killed at iteration $at" test ! -e "$TMP/kill$np/summary.csv"
  run run "$TMP/l.yaml" --out "$TMP/kill$np" --quiet --resume
  check "np $np: resumed metrics.csv equals the uninterrupted run" same_metrics "$TMP/p1/metrics.csv" "$TMP/kill$np/metrics.csv"
done

# without a hold-out: no val_* columns (metrics.csv as before the key existed); the held-out
# samples really leave training
"$EXPGRAPH" run "$TMP/l.yaml" --set data.val_fraction=0 --out "$TMP/nov" --quiet
check "val_fraction 0: no val_loss, val_acc columns" bash -c "! head -1 '$TMP/nov/metrics.csv' | grep -q val_"
check "val_fraction 0.1: the val_loss, val_acc columns" bash -c "head -1 '$TMP/p1/metrics.csv' | grep -q ',val_loss,val_acc'"
check "val_fraction 0: test_acc still there" test -n "$(mcol "$TMP/nov/metrics.csv" test_acc | tail -n 1)"
e1=$(mcol "$TMP/p1/metrics.csv" epoch | tail -n 1)
e0=$(mcol "$TMP/nov/metrics.csv" epoch | tail -n 1)
check "a hold-out of 0.2 means more epochs for the same iterations ($e1 > $e0)" \
  awk -v a="$e1" -v b="$e0" 'BEGIN { exit !(a > b * 1.1) }'
"$EXPGRAPH" validate "$TMP/l.yaml" --set data.val_fraction=0.95 2>"$TMP/err"; rc=$?
check "a hold-out leaving a node less than a batch: exit 2 naming data.val_fraction" bash -c \
  "[ $rc -eq 2 ] && grep -q 'data.val_fraction' '$TMP/err'"

# the BaseGraph spec validates (when Fashion-MNIST is there)
if [ -n "${EG_SRC:-}" ] && [ -f "$EG_SRC/experiments/basegraph/lenet_fashion.yaml" ]; then
  "$EXPGRAPH" validate "$EG_SRC/experiments/basegraph/lenet_fashion.yaml" >"$TMP/out" 2>"$TMP/err"; rc=$?
  if grep -q 'fashion_mnist' "$TMP/err" && [ $rc -ne 0 ]; then
    echo "skipped - experiments/basegraph/lenet_fashion.yaml: Fashion-MNIST not found"
  else
    check "experiments/basegraph/lenet_fashion.yaml validates" test "$rc" -eq 0
    n=$("$EXPGRAPH" sweep "$EG_SRC/experiments/basegraph/lenet_fashion.yaml" --list | wc -l)
    check "its sweep: 4 graphs x 3 learning rates x 3 seeds = 36 runs" test "$n" -eq 36
  fi
fi
finish

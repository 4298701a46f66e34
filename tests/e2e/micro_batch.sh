#!/usr/bin/env bash
# End-to-end: train.micro_batch lets a rank's threads share a node's minibatch and keeps the
# project's promise. With micro-batches, metrics.csv is identical for 1 and 2 threads and for
# P = 1 and 2 ranks, with one node per rank (the threads work inside a node) and with several
# (the threads work on different nodes), for resnet with batch norm (local and gossiped running
# statistics), cnn with group norm and mlp, in f32 and in bf16, and after kill + --resume.
# Batch norm uses the node batch's statistics: the loss matches the whole-batch run closely.
# A batch that fits one micro-batch runs exactly as before (the default, 32, against a spec
# that sets micro_batch equal to the batch). Tiny 12x12 idx images keep it fast.
. "$(dirname "$0")/lib.sh"

quadrant_idx "$TMP/imgs" 12 5 256 64

cat > "$TMP/mb.yaml" <<YAML
name: mb
seed: 3
nodes: 2
graph: ring
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 5.0e-4}
model: {name: resnet, depth: 8, width: 4, norm: batch}
data: {name: idx, path: $TMP/imgs, batch_size: 14, augment: [flip]}
train: {iterations: 16, log_every: 4, eval_every: 8, checkpoint_every: 8, micro_batch: 4}
lr: {base: 0.05, warmup_epochs: 1, schedule: cosine}
YAML

threads_line() { grep -q "threads: $2" "$1"; }
run_ranks() { # run_ranks NP THREADS OUT SETS...
  local np=$1 th=$2 out=$3; shift 3
  if [ "$np" -eq 1 ]; then EXPGRAPH_THREADS=$th "$EXPGRAPH" run "$TMP/mb.yaml" "$@" --out "$out" --quiet
  else EXPGRAPH_THREADS=$th mpi "$np" run "$TMP/mb.yaml" "$@" --out "$out" --quiet; fi
}

# the first lines say how the threads are used
EXPGRAPH_THREADS=2 "$EXPGRAPH" run "$TMP/mb.yaml" --set nodes=1 --out "$TMP/say1" > "$TMP/say1.log" 2>&1
check "1 node, 2 threads: says 1 node at a time x 2 threads" threads_line "$TMP/say1.log" "1 node at a time x 2 threads (micro-batches of 4: 4 per node)"
EXPGRAPH_THREADS=2 "$EXPGRAPH" run "$TMP/mb.yaml" --set nodes=4 --out "$TMP/say4" > "$TMP/say4.log" 2>&1
check "4 nodes, 2 threads: says 2 nodes at a time" threads_line "$TMP/say4.log" "2 nodes at a time x 1 thread"

# model x precision x statistics; nodes = 2 (P = 2: one node per rank) and 4 (several)
combos=(
  "resnet-bn-local:f32:--set model.norm_stats=local"
  "resnet-bn-gossip:bf16:--set model.norm_stats=gossip"
  "resnet-bn-local:bf16:--set model.norm_stats=local"
  "cnn-gn:f32:--set model={name: cnn, channels: [4, 8], hidden: 16, norm: group, groups: 2}"
  "cnn-gn:bf16:--set model={name: cnn, channels: [4, 8], hidden: 16, norm: group, groups: 2}"
  "mlp:f32:--set model={name: mlp, hidden: [32]}"
)
for c in "${combos[@]}"; do
  IFS=: read -r tag prec set <<< "$c"
  sets=("${set%% *}" "${set#* }" --set "train.precision=$prec")
  for n in 2 4; do
    t="$tag-$prec-n$n"
    run_ranks 1 1 "$TMP/$t-p1t1" "${sets[@]}" --set nodes=$n
    run_ranks 1 2 "$TMP/$t-p1t2" "${sets[@]}" --set nodes=$n
    run_ranks 2 1 "$TMP/$t-p2t1" "${sets[@]}" --set nodes=$n
    check "$t: 1 and 2 threads identical" same_metrics "$TMP/$t-p1t1/metrics.csv" "$TMP/$t-p1t2/metrics.csv"
    check "$t: P = 1 and P = 2 identical" same_metrics "$TMP/$t-p1t1/metrics.csv" "$TMP/$t-p2t1/metrics.csv"
  done
done

# kill + resume with micro-batches (1 node per rank on 2 ranks, 2 threads each)
for prec in f32 bf16; do
  full="$TMP/resnet-bn-local-$prec-n2-p1t1"
  at=$(( (RANDOM % 6) + 9 ))
  EXPGRAPH_KILL_AT=$at run_ranks 2 2 "$TMP/kill-$prec" --set model.norm_stats=local --set train.precision=$prec --set nodes=2 2>/dev/null
  run_ranks 2 2 "$TMP/kill-$prec" --set model.norm_stats=local --set train.precision=$prec --set nodes=2 --resume
  check "resnet $prec: killed at $at on 2 ranks x 2 threads, resumed: identical to the 1-rank 1-thread run" \
    same_metrics "$full/metrics.csv" "$TMP/kill-$prec/metrics.csv"
done

# batch norm over the node batch: close to the whole batch (micro_batch = batch)
run_ranks 1 2 "$TMP/whole" --set model.norm_stats=local --set train.precision=f32 --set nodes=2 --set train.micro_batch=14
close_loss() {
  paste -d, <(cut -d, -f5 "$1" | tail -n +2) <(cut -d, -f5 "$2" | tail -n +2) |
    awk -F, '{d = $1 - $2; if (d < 0) d = -d; if (d > 1e-3 * ($2 < 0 ? -$2 : $2)) bad = 1} END {exit bad}'
}
check "micro-batches of 4 vs the whole batch of 14: train_loss within 0.1%" \
  close_loss "$TMP/resnet-bn-local-f32-n2-p1t1/metrics.csv" "$TMP/whole/metrics.csv"
# a batch that fits the default micro-batch (32) runs as with micro_batch = batch
run_ranks 1 2 "$TMP/def" --set model.norm_stats=local --set nodes=2 --set train.micro_batch=32
check "batch 14 under the default micro_batch: identical to micro_batch = 14" \
  same_metrics "$TMP/whole/metrics.csv" "$TMP/def/metrics.csv"
# bad values
for v in 0 -3 2.5 big; do
  out=$("$EXPGRAPH" validate "$TMP/mb.yaml" --set train.micro_batch=$v 2>&1); rc=$?
  check "train.micro_batch=$v: exit 2 naming the key" bash -c "[ $rc -eq 2 ] && grep -q 'train.micro_batch' <<< \"\$1\"" _ "$out"
done
finish

#!/usr/bin/env bash
# End-to-end: a CNN whose first layer runs on expgraph's fused kernel (a convolution of a
# one-channel f32 input into 16 channels with its 2x2 max pooling and ReLU, lib/nn.c cp_own:
# the Fashion CNN's shape) keeps the project's promise: metrics.csv is identical for P = 1, 2
# and 3 ranks, for 1 and 2 threads, with micro-batches on 1 and 2 threads and 2 ranks, and
# after kill + --resume on 2 ranks; the loss falls; and the model with the fused layer learns
# as the all-oneDNN one does (bf16, which keeps oneDNN's kernels, reaches the same loss
# within 10%). Tiny 12x12 idx images keep it fast.
. "$(dirname "$0")/lib.sh"

quadrant_idx "$TMP/imgs" 12 9 384 96

cat > "$TMP/cnn.yaml" <<YAML
name: cnn-first
seed: 5
nodes: 6
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 5.0e-4}
model: {name: cnn, channels: [16, 32], kernel: 3, hidden: [16]}
data: {name: idx, path: $TMP/imgs, batch_size: 8, augment: [flip]}
train: {iterations: 32, log_every: 8, eval_every: 16, checkpoint_every: 16}
lr: {base: 0.05, warmup_epochs: 1, schedule: cosine}
YAML

out="$TMP/p1"
check "cnn run exits 0" "$EXPGRAPH" run "$TMP/cnn.yaml" --out "$out" --quiet
loss_falls "$out/metrics.csv" 0.8
same_across "$TMP/cnn.yaml" "$out" "fused first layer"

# micro-batches of 3 (the last one 2): every micro-batch plan runs the fused kernel
mb=(--set train.micro_batch=3)
EXPGRAPH_THREADS=1 "$EXPGRAPH" run "$TMP/cnn.yaml" "${mb[@]}" --out "$TMP/mb1" --quiet
EXPGRAPH_THREADS=2 "$EXPGRAPH" run "$TMP/cnn.yaml" "${mb[@]}" --set nodes=1 --out "$TMP/mb2n1" --quiet
EXPGRAPH_THREADS=1 "$EXPGRAPH" run "$TMP/cnn.yaml" "${mb[@]}" --set nodes=1 --out "$TMP/mb1n1" --quiet
EXPGRAPH_THREADS=2 "$EXPGRAPH" run "$TMP/cnn.yaml" "${mb[@]}" --out "$TMP/mb2" --quiet
mpi 2 run "$TMP/cnn.yaml" "${mb[@]}" --out "$TMP/mbp2" --quiet
check "micro-batches: 1 and 2 threads identical" same_metrics "$TMP/mb1/metrics.csv" "$TMP/mb2/metrics.csv"
check "micro-batches, one node: 1 and 2 threads inside it identical" \
  same_metrics "$TMP/mb1n1/metrics.csv" "$TMP/mb2n1/metrics.csv"
check "micro-batches: P = 1 and P = 2 identical" same_metrics "$TMP/mb1/metrics.csv" "$TMP/mbp2/metrics.csv"

# kill + resume on 2 ranks x 2 threads
at=$(( (RANDOM % 14) + 18 )) # after the checkpoint at 16, before the end (32)
EXPGRAPH_KILL_AT=$at EXPGRAPH_THREADS=2 mpi 2 run "$TMP/cnn.yaml" --out "$TMP/kill" --quiet 2>/dev/null
EXPGRAPH_THREADS=2 mpi 2 run "$TMP/cnn.yaml" --out "$TMP/kill" --quiet --resume
check "killed at $at on 2 ranks, resumed: identical to the uninterrupted 1-rank run" \
  same_metrics "$out/metrics.csv" "$TMP/kill/metrics.csv"

# bf16 runs the first layer on oneDNN: a different computation, the same learning
"$EXPGRAPH" run "$TMP/cnn.yaml" --set train.precision=bf16 --out "$TMP/bf16" --quiet
last=$(tail -1 "$out/metrics.csv" | cut -d, -f5)
lb=$(tail -1 "$TMP/bf16/metrics.csv" | cut -d, -f5)
check "f32 (fused first layer) and bf16 (oneDNN) end at the same loss within 10% ($last, $lb)" \
  awk -v a="$last" -v b="$lb" 'BEGIN{d = a - b; if (d < 0) d = -d; exit !(d <= 0.1 * b)}'
finish

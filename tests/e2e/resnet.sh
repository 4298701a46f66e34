#!/usr/bin/env bash
# End-to-end (issue 15): a batch-norm ResNet trained decentrally keeps the project's promise.
# metrics.csv is identical for P = 1, 2, 3 ranks, for 1 and 2 threads, and after kill +
# --resume, in f32 and in bf16, with local and with gossiped running statistics; group norm
# and weight_decay_norm: false run; the loss falls. A tiny generated idx image set keeps it
# fast (12x12 grey images of 4 classes whose class is a bright quadrant). At width 16 every
# f32 norm runs on expgraph's batch-norm kernels, in each of their modes: with the ReLU (the
# stem, taking the first block's shortcut gradient too, and each block's first norm); alone,
# before a stride-2 shortcut (stages 2 and 3); with the identity shortcut's add and ReLU.
. "$(dirname "$0")/lib.sh"

quadrant_idx "$TMP/imgs" 12 7 384 96

cat > "$TMP/rn.yaml" <<YAML
name: rn
seed: 4
nodes: 6
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 5.0e-4}
model: {name: resnet, depth: 8, width: 16, norm: batch}
data: {name: idx, path: $TMP/imgs, batch_size: 8, augment: [flip]}
train: {iterations: 32, log_every: 8, eval_every: 16, checkpoint_every: 16}
lr: {base: 0.05, warmup_epochs: 1, schedule: cosine}
YAML

out="$TMP/p1"
check "resnet run exits 0" "$EXPGRAPH" run "$TMP/rn.yaml" --out "$out" --quiet
check "spec.yaml records the model" grep -q 'name: resnet' "$out/spec.yaml"
loss_falls "$out/metrics.csv" 1
same_across "$TMP/rn.yaml" "$out" "batch norm"

# kill + resume (local statistics and gossiped ones), and bf16 invariance
for combo in f32:local:1 f32:gossip:2 bf16:local:1 bf16:gossip:2; do
  IFS=: read -r prec stats np <<< "$combo"
  sets=(--set train.precision=$prec --set model.norm_stats=$stats)
  tag="$prec-$stats-np$np"
  run() { if [ "$np" -eq 1 ]; then "$EXPGRAPH" "$@"; else mpi "$np" "$@"; fi; }
  "$EXPGRAPH" run "$TMP/rn.yaml" "${sets[@]}" --out "$TMP/full-$tag" --quiet
  at=$(( (RANDOM % 14) + 18 )) # after the checkpoint at 16, before the end (32)
  EXPGRAPH_KILL_AT=$at run run "$TMP/rn.yaml" "${sets[@]}" --out "$TMP/kill-$tag" --quiet 2>/dev/null
  run run "$TMP/rn.yaml" "${sets[@]}" --out "$TMP/kill-$tag" --quiet --resume
  check "$tag: killed at $at, resumed on $np rank(s): metrics identical to an uninterrupted 1-rank run" \
    same_metrics "$TMP/full-$tag/metrics.csv" "$TMP/kill-$tag/metrics.csv"
done
# absent nodes (network.offline) compute nothing, so a batch-norm model's running statistics
# skip their iterations: still identical for any P and after kill + resume
off=(--set 'network={offline: 0.3}')
"$EXPGRAPH" run "$TMP/rn.yaml" "${off[@]}" --out "$TMP/off1" --quiet
mpi 2 run "$TMP/rn.yaml" "${off[@]}" --out "$TMP/off2" --quiet
check "batch norm, offline 0.3: P = 2 gives P = 1's metrics.csv" same_metrics "$TMP/off1/metrics.csv" "$TMP/off2/metrics.csv"
at=$(( (RANDOM % 14) + 18 )) # after the checkpoint at 16, before the end (32)
EXPGRAPH_KILL_AT=$at "$EXPGRAPH" run "$TMP/rn.yaml" "${off[@]}" --out "$TMP/offk" --quiet 2>/dev/null
mpi 3 run "$TMP/rn.yaml" "${off[@]}" --out "$TMP/offk" --quiet --resume
check "batch norm, offline 0.3: killed at $at, resumed on 3 ranks: identical" same_metrics "$TMP/off1/metrics.csv" "$TMP/offk/metrics.csv"
check "offline 0.3 differs from the perfect network" test "$(tail -1 "$TMP/off1/metrics.csv" | cut -d, -f5)" \
  != "$(tail -1 "$out/metrics.csv" | cut -d, -f5)"
check "gossiped statistics cost bytes" test "$(tail -1 "$TMP/full-f32-gossip-np2/metrics.csv" | cut -d, -f9)" \
  != "$(tail -1 "$TMP/full-f32-local-np1/metrics.csv" | cut -d, -f9)"
check "bf16 computes differently from f32" test "$(tail -1 "$TMP/full-bf16-local-np1/metrics.csv" | cut -d, -f5)" \
  != "$(tail -1 "$TMP/full-f32-local-np1/metrics.csv" | cut -d, -f5)"

check "group norm runs" "$EXPGRAPH" run "$TMP/rn.yaml" --set model.norm=group --set model.groups=2 \
  --set algorithm.weight_decay_norm=false --out "$TMP/gn" --quiet
check "cnn with batch norm runs" "$EXPGRAPH" run "$TMP/rn.yaml" --set 'model={name: cnn, channels: [4, 8], hidden: [16], norm: batch}' \
  --out "$TMP/cnnbn" --quiet
"$EXPGRAPH" validate "$TMP/rn.yaml" --set model.depth=21 2>"$TMP/err"; rc=$?
check "depth 21 refused (exit 2, names model.depth)" sh -c "[ $rc -eq 2 ] && grep -q 'model.depth' '$TMP/err'"
"$EXPGRAPH" validate "$TMP/rn.yaml" --set model.groups=2 2>"$TMP/err"; rc=$?
check "groups without group norm refused" sh -c "[ $rc -eq 2 ] && grep -q 'model.groups' '$TMP/err'"
finish

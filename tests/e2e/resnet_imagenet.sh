#!/usr/bin/env bash
# End-to-end (issue 23): the ImageNet-stem ResNets (model.stem: imagenet, torchvision's
# ResNet-18/34/50/101) with zero_init_residual keep the project's promise: metrics.csv is
# identical for P = 1 and 2 ranks and after kill + --resume, in f32 and in bf16; the run prints
# the parameter count; resnet-50 (bottleneck blocks, group norm) trains with a finite loss;
# too small an input and a bad depth are refused (exit 2, naming the spec and the key). A tiny
# generated idx set of 32x32 grey images (4 classes: a bright quadrant) keeps it fast.
. "$(dirname "$0")/lib.sh"

quadrant_idx "$TMP/imgs" 32 7 128 32

cat > "$TMP/rn.yaml" <<YAML
name: rnin
seed: 4
nodes: 4
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 5.0e-4}
model: {name: resnet, stem: imagenet, depth: 18, width: 4, zero_init_residual: true}
data: {name: idx, path: $TMP/imgs, batch_size: 8, augment: [flip]}
train: {iterations: 12, log_every: 4, eval_every: 4, checkpoint_every: 4}
lr: {base: 0.05}
YAML

out="$TMP/p1"
"$EXPGRAPH" run "$TMP/rn.yaml" --out "$out" >"$TMP/stdout" 2>&1; rc=$?
check "resnet-18 (imagenet stem) run exits 0" test "$rc" -eq 0
check "the run prints the model and its parameter count" \
  grep -q 'resnet-18 imagenet w4 batch-norm 1x32x32 -> 4 zero-init-residual (44512 params)' "$TMP/stdout"
check "spec.yaml records stem and zero_init_residual" \
  sh -c "grep -q 'stem: imagenet' '$out/spec.yaml' && grep -q 'zero_init_residual: true' '$out/spec.yaml'"
mpi 2 run "$TMP/rn.yaml" --out "$TMP/p2" --quiet
check "P = 2: metrics.csv identical to P = 1" same_metrics "$out/metrics.csv" "$TMP/p2/metrics.csv"
for combo in f32:1 bf16:2; do
  IFS=: read -r prec np <<< "$combo"
  tag="$prec-np$np"
  run() { if [ "$np" -eq 1 ]; then "$EXPGRAPH" "$@"; else mpi "$np" "$@"; fi; }
  "$EXPGRAPH" run "$TMP/rn.yaml" --set train.precision=$prec --out "$TMP/full-$tag" --quiet
  at=$(( (RANDOM % 6) + 5 ))
  EXPGRAPH_KILL_AT=$at run run "$TMP/rn.yaml" --set train.precision=$prec --out "$TMP/kill-$tag" \
    --quiet 2>/dev/null
  run run "$TMP/rn.yaml" --set train.precision=$prec --out "$TMP/kill-$tag" --quiet --resume
  check "$tag: killed at $at, resumed on $np rank(s): metrics identical to an uninterrupted run" \
    same_metrics "$TMP/full-$tag/metrics.csv" "$TMP/kill-$tag/metrics.csv"
done
check "zero_init_residual changes the run" test "$(tail -1 "$out/metrics.csv" | cut -d, -f5)" \
  != "$("$EXPGRAPH" run "$TMP/rn.yaml" --set model.zero_init_residual=false --out "$TMP/nz" \
        --quiet >/dev/null 2>&1; tail -1 "$TMP/nz/metrics.csv" | cut -d, -f5)"
# resnet-50: bottleneck blocks and projection shortcuts, group norm, 3 iterations
"$EXPGRAPH" run "$TMP/rn.yaml" --set model.depth=50 --set model.norm=group --set model.groups=2 \
  --set train.iterations=3 --set train.log_every=1 --set train.eval_every=3 \
  --set train.checkpoint_every=0 --out "$TMP/r50" >"$TMP/stdout50" 2>&1; rc=$?
check "resnet-50 (group norm) runs 3 iterations" test "$rc" -eq 0
check "resnet-50's parameter count" grep -q 'resnet-50 imagenet w4 group-norm(2) 1x32x32 -> 4 zero-init-residual (95616 params)' "$TMP/stdout50"
check "resnet-50's train losses are finite" awk -F, 'NR > 1 { if ($5 != $5 + 0 || $5 == "nan" || $5 == "inf") exit 1 } END { exit NR < 4 }' "$TMP/r50/metrics.csv"
# refusals: exit 2, a message naming the spec and the key
"$EXPGRAPH" validate "$TMP/rn.yaml" --set model.depth=20 2>"$TMP/err"; rc=$?
check "stem imagenet, depth 20 refused (exit 2, names model.depth)" \
  sh -c "[ $rc -eq 2 ] && grep -q 'rn.yaml:.*model.depth with stem: imagenet must be 18, 34, 50 or 101' '$TMP/err'"
"$EXPGRAPH" validate "$TMP/rn.yaml" --set 'data={name: synthetic, dim: 8}' 2>"$TMP/err"; rc=$?
check "an input smaller than 32x32 refused (exit 2, names the model)" \
  sh -c "[ $rc -eq 2 ] && grep -q 'rn.yaml:[0-9]*:.*at least 32x32' '$TMP/err'"
finish

#!/usr/bin/env bash
# End-to-end: the paper's experiments as shipped specs (experiments/paper/).
#  - cifar10_resnet56.yaml (the code release's CIFAR-10 table) on a small CIFAR-10 set in the
#    binary format written here (600 training records: 4 nodes x the spec's batch 128 fit),
#    validates; its sweep lists exp and onepeer_exp; cut with --set to 3 iterations of
#    batch 32 (this machine's CPU budget), it runs on 1 and 2 ranks with identical
#    metrics.csv (ResNet-56, batch norm, crop + flip, lr 0.01 x 4 nodes, cosine);
#  - imagenet_resnet50.yaml (the paper's ImageNet protocol) validates with data.path set to
#    an ImageNet-layout JPEG folder written here (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG).
#    It needs model.stem: imagenet and graph inner_outer_exp2; where this build does not
#    have them yet, that part says "skipped" (the rest still runs).
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
EG_SRC=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PAPER=$EG_SRC/experiments/paper

# ---- CIFAR-10 -----------------------------------------------------------------------------
python3 - "$TMP/c10" <<'PY' || exit 1
import os, random, sys
d = os.path.join(sys.argv[1], "cifar-10-batches-bin")
os.makedirs(d)
rng = random.Random(4)
def record(label):
    base = [(label * 23) % 200 + 20, (label * 57) % 200 + 20, (label * 91) % 200 + 20]
    return bytes([label]) + b"".join(
        bytes(max(0, min(255, base[c] + rng.randrange(-40, 40))) for _ in range(1024)) for c in range(3))
for i in range(1, 6):
    with open(os.path.join(d, "data_batch_%d.bin" % i), "wb") as f:
        f.write(b"".join(record(r % 10) for r in range(120)))
with open(os.path.join(d, "test_batch.bin"), "wb") as f:
    f.write(b"".join(record(r % 10) for r in range(40)))
PY
check "cifar10_resnet56: validates as shipped" "$EXPGRAPH" validate "$PAPER/cifar10_resnet56.yaml" --set "data.path=$TMP/c10"
C10=(--set "data.path=$TMP/c10" --set 'train={iterations: 3, log_every: 1, checkpoint_every: 0}'
     --set data.batch_size=32)
"$EXPGRAPH" sweep "$PAPER/cifar10_resnet56.yaml" "${C10[@]}" --list --out "$TMP/sw" > "$TMP/list" 2> "$TMP/err"
check "cifar10_resnet56: sweep --list: two points" test "$(wc -l < "$TMP/list")" -eq 2
check "... exp and onepeer_exp" bash -c "grep -q 'graph=exp' '$TMP/list' && grep -q 'graph=onepeer_exp' '$TMP/list'"
check "cifar10_resnet56: 1 rank" "$EXPGRAPH" run "$PAPER/cifar10_resnet56.yaml" "${C10[@]}" --out "$TMP/c1" --quiet
check "cifar10_resnet56: 2 ranks" mpi 2 run "$PAPER/cifar10_resnet56.yaml" "${C10[@]}" --out "$TMP/c2" --quiet
check "cifar10_resnet56: 2 ranks = 1 rank" same_metrics "$TMP/c1/metrics.csv" "$TMP/c2/metrics.csv"
check "cifar10_resnet56: 3 iterations, a row each" test "$(wc -l < "$TMP/c1/metrics.csv")" -eq 4
loss=$(tail -1 "$TMP/c1/metrics.csv" | cut -d, -f5)
check "cifar10_resnet56: finite loss ($loss)" awk -v l="$loss" 'BEGIN{exit !(l > 0 && l < 100)}'
lr=$(sed -n 2p "$TMP/c1/metrics.csv" | cut -d, -f4)
check "cifar10_resnet56: lr 0.01 x 4 nodes at the start ($lr)" awk -v l="$lr" 'BEGIN{exit !(l > 0.0399 && l <= 0.04)}'
check "cifar10_resnet56: no weight decay on norm/bias" grep -q "weight_decay_norm: false" "$TMP/c1/spec.yaml"
check "cifar10_resnet56: resnet depth 56" grep -q "depth: 56" "$TMP/c1/spec.yaml"

# ---- ImageNet layout ------------------------------------------------------------------------
# 8 classes x 33 training JPEGs (8 nodes x batch 32 = 256 fit), 2 validation JPEGs per class,
# of a few sizes; one gray
PYTHONPATH="$EG_SRC/tests/bad" python3 - "$TMP/inet" <<'PY' || exit 1
import os, sys
import tinyjpeg
root = sys.argv[1]
sizes = [(24, 18), (18, 24), (20, 20)]
for split, count in (("train", 33), ("val", 2)):
    for k in range(8):
        wnid = "n%08d" % (1440764 + k)
        d = os.path.join(root, split, wnid)
        os.makedirs(d)
        for i in range(count):
            w, h = sizes[i % 3]
            px = lambda x, y, c: (k * 29 + x * 7 + y * 3 + c * 50 + i) % 256
            name = "%s_%d.JPEG" % (wnid, i) if split == "train" else "ILSVRC2012_val_%08d.JPEG" % (k * 10 + i + 1)
            with open(os.path.join(d, name), "wb") as f:
                f.write(tinyjpeg.encode(w, h, px, 1 if i == 5 else 3, q=4))
PY
"$EXPGRAPH" validate "$PAPER/imagenet_resnet50.yaml" --set "data.path=$TMP/inet" > "$TMP/out" 2> "$TMP/err"; rc=$?
if [ "$rc" -ne 0 ] && grep -q "unknown key 'model.stem'" "$TMP/err"; then
  echo "skipped - imagenet_resnet50: this build has no model.stem yet: $(head -1 "$TMP/err")"
else
  check "imagenet_resnet50: validates ($rc: $(head -1 "$TMP/err"))" test "$rc" -eq 0
  "$EXPGRAPH" sweep "$PAPER/imagenet_resnet50.yaml" --set "data.path=$TMP/inet" --list --out "$TMP/sw2" > "$TMP/list" 2> "$TMP/err"; rc=$?
  if [ "$rc" -ne 0 ] && grep -q "inner_outer_exp2" "$TMP/err"; then
    echo "skipped - imagenet_resnet50 sweep: this build has no inner_outer_exp2 yet: $(head -1 "$TMP/err")"
  else
    check "imagenet_resnet50: sweep --list: four graphs ($rc)" test "$(wc -l < "$TMP/list")" -eq 4
  fi
fi
# the data part of the ImageNet spec alone (no ResNet-50 needed): the layout, the transforms
check "imagenet data keys validate with a small model" "$EXPGRAPH" validate "$PAPER/imagenet_resnet50.yaml" \
  --set "data.path=$TMP/inet" --set 'model={name: cnn, channels: [4], hidden: [8]}'
finish

#!/usr/bin/env bash
# End-to-end: ImageNet-style data handling of image_folder.
#  - an ImageNet-layout folder (train/CLASS/*.JPEG and val/CLASS/*.JPEG, images of several
#    sizes and aspect ratios, a few PNGs and grayscale JPEGs among them) trained with
#    data.augment [random_resized_crop, flip]: metrics.csv identical on 1 and 2 ranks, with
#    data.cache memory and stream, and after kill + resume; it learns (accuracy above chance);
#  - ResNet-50 (stem imagenet, width 4, bf16) on that folder: finite loss, P = 1 = P = 2, kill
#    + resume;
#  - spec.yaml records the resolved data.eval_resize (round(12 * 256 / 224) = 14);
#  - bad inputs: random_resized_crop without image_size, with crop, eval_resize below
#    image_size (exit 2 naming the key); a CMYK JPEG and a truncated JPEG in train/ (exit 2
#    naming the file); a flat val/ folder (exit 2 saying to sort it into class folders).
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
EG_SRC=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

PYTHONPATH="$EG_SRC/tests/bad" python3 - "$TMP/img" <<'PY' || exit 1
import os, random, struct, sys, zlib
import tinyjpeg
root = sys.argv[1]
rng = random.Random(11)
def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in px(x, y)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
sizes = [(24, 18), (18, 26), (20, 20), (30, 16), (16, 40)]
for split, count in (("train", 30), ("val", 8)):
    for cls in ("n01bars", "n02columns", "n03diagonal"):
        d = os.path.join(root, split, cls)
        os.makedirs(d, exist_ok=True)
        for k in range(count):
            w, h = sizes[k % len(sizes)]
            off = rng.randrange(6)
            noise = [rng.randrange(-25, 25) for _ in range(w * h)]
            def on(x, y):
                return {"n01bars": (y // 4) % 2 == off % 2, "n02columns": (x // 4) % 2 == off % 2,
                        "n03diagonal": ((x + y) // 4) % 2 == off % 2}[cls]
            def px(x, y, c):
                return max(0, min(255, (200 if on(x, y) else 50) + noise[y * w + x] + 10 * c))
            name = os.path.join(d, "%s_%04d" % (cls, k))
            if k % 7 == 3:
                png(name + ".png", w, h, lambda x, y: [px(x, y, c) for c in range(3)])
            else:
                gray = k % 7 == 5
                with open(name + ".JPEG", "wb") as f:
                    f.write(tinyjpeg.encode(w, h, px, 1 if gray else 3, q=2))
PY

spec() { # spec FILE CACHE ITERATIONS [AUGMENT]
  cat > "$1" <<YAML
name: rrc
seed: 3
nodes: 4
graph: exp
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: cnn, channels: [8], kernel: 3, hidden: [16]}
data: {name: image_folder, path: $TMP/img, image_size: 12, cache: $2, batch_size: 5,
       augment: ${4:-[random_resized_crop, flip]}}
train: {iterations: $3, log_every: 10, eval_every: 20, checkpoint_every: 10}
lr: {base: 0.05}
YAML
}
spec "$TMP/mem.yaml" memory 60
spec "$TMP/stream.yaml" stream 60
check "validate" "$EXPGRAPH" validate "$TMP/mem.yaml"
check "memory, 1 rank" "$EXPGRAPH" run "$TMP/mem.yaml" --out "$TMP/m1" --quiet
check "memory, 2 ranks" mpi 2 run "$TMP/mem.yaml" --out "$TMP/m2" --quiet
check "stream, 2 ranks" mpi 2 run "$TMP/stream.yaml" --out "$TMP/s2" --quiet
check "2 ranks = 1 rank (memory)" same_metrics "$TMP/m1/metrics.csv" "$TMP/m2/metrics.csv"
check "stream = memory (2 ranks)" same_metrics "$TMP/m1/metrics.csv" "$TMP/s2/metrics.csv"
EXPGRAPH_KILL_AT=33 "$EXPGRAPH" run "$TMP/stream.yaml" --out "$TMP/sk" --quiet 2>/dev/null
check "stream: killed at iteration 33 (non-zero exit)" test $? -ne 0
check "stream: --resume exits 0" "$EXPGRAPH" run "$TMP/stream.yaml" --out "$TMP/sk" --quiet --resume
check "stream: resumed = uninterrupted" same_metrics "$TMP/m1/metrics.csv" "$TMP/sk/metrics.csv"
check "spec.yaml: the augmentation" grep -q "augment: \[random_resized_crop, flip\]" "$TMP/m1/spec.yaml"
check "spec.yaml: eval_resize resolved to 14" grep -q "eval_resize: 14" "$TMP/m1/spec.yaml"
check "the rerun of spec.yaml validates" "$EXPGRAPH" validate "$TMP/m1/spec.yaml"
# the crops differ from the plain centre crop: another training trajectory
spec "$TMP/flip.yaml" memory 60 "[flip]"
check "flip only, 1 rank" "$EXPGRAPH" run "$TMP/flip.yaml" --out "$TMP/f1" --quiet
check "random_resized_crop changes the losses" bash -c "! diff -q <(cut -d, -f5 '$TMP/f1/metrics.csv') <(cut -d, -f5 '$TMP/m1/metrics.csv') >/dev/null"
# it learns: 200 iterations on 1 rank, test accuracy above chance (1/3)
spec "$TMP/learn.yaml" memory 200
check "learns: 200 iterations" "$EXPGRAPH" run "$TMP/learn.yaml" --out "$TMP/l1" --quiet
acc=$(tail -1 "$TMP/l1/metrics.csv" | cut -d, -f7)
check "accuracy above chance ($acc > 0.5)" awk -v a="$acc" 'BEGIN{exit !(a > 0.5)}'

bad_spec() { # bad_spec DESCRIPTION NEEDLE --set ...
  local d=$1 needle=$2; shift 2
  "$EXPGRAPH" validate "$TMP/mem.yaml" "$@" 2> "$TMP/err"; local rc=$?
  check "$d: exit 2 ($rc)" test "$rc" -eq 2
  check "$d: message names it" grep -q -- "$needle" "$TMP/err"
}
bad_spec "random_resized_crop without image_size" "random_resized_crop needs image_folder with data.image_size" --set data.image_size=null
bad_spec "random_resized_crop with crop" "crop and random_resized_crop cannot be combined" --set 'data.augment=[crop, random_resized_crop]'
bad_spec "eval_resize below image_size" "data.eval_resize" --set data.eval_resize=8
bad_spec "random_resized_crop on cifar10" "random_resized_crop needs image_folder" --set "data={name: synthetic, augment: [random_resized_crop]}"

# ResNet-50 (torchvision's architecture, stem imagenet; width 4 to stay small) on the
# ImageNet-layout JPEG folder with random-resized crops to 32x32, in bf16: 3 iterations with a
# finite loss, metrics.csv identical on 1 and 2 ranks and after kill + resume
cat > "$TMP/r50.yaml" <<YAML
name: r50
seed: 5
nodes: 2
graph: exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 1.0e-4, weight_decay_norm: false}
model: {name: resnet, stem: imagenet, depth: 50, width: 4, zero_init_residual: true}
data: {name: image_folder, path: $TMP/img, image_size: 32, cache: stream, batch_size: 4,
       augment: [random_resized_crop, flip]}
train: {iterations: 3, log_every: 1, eval_every: 3, checkpoint_every: 1, precision: bf16}
lr: {base: 0.05, warmup_epochs: 0.1}
YAML
"$EXPGRAPH" run "$TMP/r50.yaml" --out "$TMP/r50-1" --quiet
check "resnet-50 on the JPEG folder: the loss is finite" \
  awk -F, 'NR > 1 && ($5 == "" || $5 != $5 + 0 || $5 ~ /nan|inf/) {bad = 1} END {exit bad || NR != 4}' "$TMP/r50-1/metrics.csv"
mpi 2 run "$TMP/r50.yaml" --out "$TMP/r50-2" --quiet
check "resnet-50 on the JPEG folder: P = 2 gives P = 1's metrics.csv" same_metrics "$TMP/r50-1/metrics.csv" "$TMP/r50-2/metrics.csv"
EXPGRAPH_KILL_AT=2 "$EXPGRAPH" run "$TMP/r50.yaml" --out "$TMP/r50-k" --quiet 2>/dev/null
mpi 2 run "$TMP/r50.yaml" --out "$TMP/r50-k" --quiet --resume
check "resnet-50 on the JPEG folder: killed at 2, resumed on 2 ranks: identical" same_metrics "$TMP/r50-1/metrics.csv" "$TMP/r50-k/metrics.csv"

run_bad() { # run_bad DESCRIPTION NEEDLE: the run stops with exit 2 naming the file, writes nothing
  local d=$1 needle=$2
  "$EXPGRAPH" run "$TMP/mem.yaml" --out "$TMP/bad" --quiet 2> "$TMP/err"; local rc=$?
  check "$d: exit 2 ($rc)" test "$rc" -eq 2
  check "$d: message" grep -q -- "$needle" "$TMP/err"
  check "$d: no run directory" test ! -e "$TMP/bad"
}
victim=$TMP/img/train/n02columns/n02columns_0004.JPEG
cp "$victim" "$TMP/keep.jpg"
# a CMYK JPEG (Adobe-style, 4 components): refused, the file named
PYTHONPATH="$EG_SRC/tests/bad" python3 - "$victim" <<'PY' || exit 1
import sys, tinyjpeg
open(sys.argv[1], "wb").write(tinyjpeg.encode(16, 16, lambda x, y, c: 40 * c + x, 4, q=2))
PY
run_bad "CMYK JPEG" "n02columns_0004.JPEG: CMYK JPEG is not supported"
head -c 300 "$TMP/keep.jpg" > "$victim"
run_bad "truncated JPEG" "n02columns_0004.JPEG: corrupt or truncated JPEG"
cp "$TMP/keep.jpg" "$victim"
mv "$TMP/img/val/n01bars"/* "$TMP/img/val/" && rmdir "$TMP/img/val/n01bars"
mv "$TMP/img/val/n02columns"/* "$TMP/img/val/" && rmdir "$TMP/img/val/n02columns"
mv "$TMP/img/val/n03diagonal"/* "$TMP/img/val/" && rmdir "$TMP/img/val/n03diagonal"
run_bad "flat val/" "image files lie directly in this folder; sort them into class folders"
finish

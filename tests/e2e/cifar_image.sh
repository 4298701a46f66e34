#!/usr/bin/env bash
# End-to-end (issue 15): data of the paper's kind, in the real formats, generated here.
#  - a tiny CIFAR-10 set (binary version: data_batch_1..5.bin + test_batch.bin, 3073-byte
#    records) in the archive's own folder, and a tiny CIFAR-100 set (train.bin + test.bin):
#    `expgraph run` trains on each (crop + flip augmentation) to well above chance;
#  - a tiny ImageNet-style JPEG folder (3 classes, images of several sizes, a few PNGs among
#    them) with data.image_size: trains to well above chance; without image_size, or with a
#    truncated JPEG, the run stops with exit 2 naming the file and writes nothing.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
EG_SRC=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

# ---- CIFAR-10 and CIFAR-100 -------------------------------------------------------------------
# class k: a colour of its own (mean red/green/blue depend on k) plus noise
python3 - "$TMP" <<'PY' || exit 1
import os, random, sys
root = sys.argv[1]
rng = random.Random(5)

def record(label, label_bytes, k):
    out = bytes([k % 20]) if label_bytes == 2 else b""
    out += bytes([label])
    base = [(k * 23) % 200 + 20, (k * 57) % 200 + 20, (k * 91) % 200 + 20]
    for c in range(3):
        out += bytes(max(0, min(255, base[c] + rng.randrange(-30, 30))) for _ in range(1024))
    return out

d = os.path.join(root, "c10", "cifar-10-batches-bin")
os.makedirs(d)
for i in range(1, 6):
    with open(os.path.join(d, "data_batch_%d.bin" % i), "wb") as f:
        f.write(b"".join(record(r % 10, 1, r % 10) for r in range(40)))
with open(os.path.join(d, "test_batch.bin"), "wb") as f:
    f.write(b"".join(record(r % 10, 1, r % 10) for r in range(50)))
# CIFAR-100: fine labels 0, 10, ..., 90 used (classes = 100)
d = os.path.join(root, "c100")
os.makedirs(d)
with open(os.path.join(d, "train.bin"), "wb") as f:
    f.write(b"".join(record((r % 10) * 10, 2, r % 10) for r in range(200)))
with open(os.path.join(d, "test.bin"), "wb") as f:
    f.write(b"".join(record((r % 10) * 10, 2, r % 10) for r in range(50)))
PY

for set in cifar10 cifar100; do
  dir=$TMP/c10
  [ "$set" = cifar100 ] && dir=$TMP/c100
  cat > "$TMP/$set.yaml" <<YAML
name: $set
seed: 1
nodes: 4
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9}
model: logreg
data: {name: $set, path: $dir, batch_size: 10, augment: [crop, flip]}
train: {epochs: 8, log_every: 10}
lr: {base: 0.02}
YAML
  check "$set: validate" "$EXPGRAPH" validate "$TMP/$set.yaml"
  check "$set: trains" "$EXPGRAPH" run "$TMP/$set.yaml" --out "$TMP/out-$set" --quiet
  acc=$(tail -1 "$TMP/out-$set/metrics.csv" | cut -d, -f7)
  check "$set: accuracy well above chance 0.1 ($acc)" awk -v a="$acc" 'BEGIN{exit !(a > 0.6)}'
done
check "cifar10: summary names the dataset" grep -q cifar10 "$TMP/out-cifar10/summary.csv"

# a truncated training batch: exit 2 naming the file and the record size, no run directory
head -c 100000 "$TMP/c10/cifar-10-batches-bin/data_batch_2.bin" > "$TMP/trunc.bin"
cp "$TMP/trunc.bin" "$TMP/c10/cifar-10-batches-bin/data_batch_2.bin"
"$EXPGRAPH" run "$TMP/cifar10.yaml" --out "$TMP/bad-c10" --quiet 2> "$TMP/err"; rc=$?
check "truncated CIFAR batch: exit 2 ($rc)" test "$rc" -eq 2
check "message names the file and the record size" grep -q "data_batch_2.bin.*3073-byte records" "$TMP/err"
check "no run directory" test ! -e "$TMP/bad-c10"

# ---- a JPEG (+ PNG) folder ----------------------------------------------------------------------
PYTHONPATH="$EG_SRC/tests/bad" python3 - "$TMP/img" <<'PY' || exit 1
import os, random, struct, sys, zlib
import tinyjpeg
root = sys.argv[1]
rng = random.Random(7)

def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in px(x, y)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    open(path, "wb").write(data)

sizes = [(20, 16), (16, 24), (18, 18), (32, 20)]
for split, count in (("train", 40), ("test", 12)):
    for cls in ("bars", "columns", "diagonal"):
        d = os.path.join(root, split, cls)
        os.makedirs(d, exist_ok=True)
        for k in range(count):
            w, h = sizes[k % len(sizes)]
            off = rng.randrange(6)
            noise = [rng.randrange(-25, 25) for _ in range(w * h)]
            def on(x, y):
                return {"bars": (y // 3) % 2 == off % 2, "columns": (x // 3) % 2 == off % 2,
                        "diagonal": ((x + y) // 3) % 2 == off % 2}[cls]
            def px(x, y, c):
                v = (200 if on(x, y) else 50) + noise[y * w + x] + 10 * c
                return max(0, min(255, v))
            if k % 5 == 4:
                png(os.path.join(d, "%03d.png" % k), w, h, lambda x, y: [px(x, y, c) for c in range(3)])
            else:
                with open(os.path.join(d, "%03d.%s" % (k, "jpeg" if k % 2 else "jpg")), "wb") as f:
                    f.write(tinyjpeg.encode(w, h, px, 3, q=2))
PY

cat > "$TMP/img.yaml" <<YAML
name: img
seed: 1
nodes: 4
graph: ring
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: cnn, channels: [8], kernel: 3, hidden: [16]}
data: {name: image_folder, path: $TMP/img, image_size: 12, batch_size: 6, augment: [flip]}
train: {epochs: 12, log_every: 20}
lr: {base: 0.05}
YAML
check "image_folder (JPEG + PNG, image_size 12): validate" "$EXPGRAPH" validate "$TMP/img.yaml"
check "image_folder trains" "$EXPGRAPH" run "$TMP/img.yaml" --out "$TMP/out-img" --quiet
acc=$(tail -1 "$TMP/out-img/metrics.csv" | cut -d, -f7)
check "accuracy well above chance 1/3 ($acc)" awk -v a="$acc" 'BEGIN{exit !(a > 0.7)}'

# without image_size the sizes differ: exit 2 naming an odd file
sed -e 's/ image_size: 12,//' "$TMP/img.yaml" > "$TMP/img-nosize.yaml"
"$EXPGRAPH" run "$TMP/img-nosize.yaml" --out "$TMP/bad-size" --quiet 2> "$TMP/err"; rc=$?
check "differing sizes without image_size: exit 2 ($rc)" test "$rc" -eq 2
check "message names the file and suggests image_size" grep -q "001.jpeg.*data.image_size" "$TMP/err"
check "no run directory" test ! -e "$TMP/bad-size"

# a truncated JPEG: exit 2 naming it (libjpeg's warning is an error, not grey pixels)
f=$TMP/img/test/columns/003.jpeg
head -c $(($(wc -c < "$f") - 80)) "$f" > "$TMP/cut.jpg" && cp "$TMP/cut.jpg" "$f"
"$EXPGRAPH" run "$TMP/img.yaml" --out "$TMP/bad-jpeg" --quiet 2> "$TMP/err"; rc=$?
check "truncated JPEG: exit 2 ($rc)" test "$rc" -eq 2
check "message names the file" grep -q "columns/003.jpeg: corrupt or truncated JPEG (libjpeg: Premature end of JPEG file)" "$TMP/err"
check "no run directory" test ! -e "$TMP/bad-jpeg"
finish

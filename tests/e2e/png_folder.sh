#!/usr/bin/env bash
# End-to-end (issue 4): a tiny PNG ImageFolder generated here (3 classes of noisy 12x12
# patterns, gray and RGB variants) trains a CNN over 4 nodes to well above chance; a
# truncated or non-PNG file in the folder is refused with exit 2 naming it.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }

make_folder() { # make_folder DIR CHANNELS
  python3 - "$1" "$2" <<'PY'
import os, random, struct, sys, zlib
root, ch = sys.argv[1], int(sys.argv[2])
def png(path, rows, ch):
    color = 0 if ch == 1 else 2
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    h, w = len(rows), len(rows[0]) // ch
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    open(path, "wb").write(data)
rng = random.Random(7)
S = 12
for split, count in (("train", 60), ("test", 20)):
    for cls in ("bars", "columns", "diagonal"):
        d = os.path.join(root, split, cls)
        os.makedirs(d, exist_ok=True)
        for k in range(count):
            off = rng.randrange(S)
            rows = []
            for y in range(S):
                row = []
                for x in range(S):
                    on = {"bars": y % 4 == off % 4, "columns": x % 4 == off % 4,
                          "diagonal": (x + y) % 4 == off % 4}[cls]
                    v = max(0, min(255, (200 if on else 40) + rng.randrange(-40, 40)))
                    row += [v] * ch
                rows.append(row)
            png(os.path.join(d, "%03d.png" % k), rows, ch)
PY
}

for ch in 1 3; do
  dir="$TMP/img$ch"
  make_folder "$dir" "$ch"
  cat > "$TMP/png$ch.yaml" <<YAML
name: png$ch
seed: 1
nodes: 4
graph: ring
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: cnn, channels: [8], kernel: 3, hidden: [16]}
data: {name: png_folder, path: $dir, batch_size: 8, augment: [flip]}
train: {epochs: 15, log_every: 20}
lr: {base: 0.05}
YAML
  check "png_folder ($ch channel(s)) trains" "$EXPGRAPH" run "$TMP/png$ch.yaml" --out "$TMP/out$ch" --quiet
  acc=$(tail -1 "$TMP/out$ch/metrics.csv" | cut -d, -f7)
  check "accuracy well above chance 1/3 ($acc)" awk -v a="$acc" 'BEGIN{exit !(a > 0.7)}'
done

# a truncated PNG and a text file named .png: exit 2 naming the file, no run directory
head -c 40 "$TMP/img1/train/bars/000.png" > "$TMP/trunc.png"
cp "$TMP/trunc.png" "$TMP/img1/train/bars/005.png"
"$EXPGRAPH" run "$TMP/png1.yaml" --out "$TMP/bad1" --quiet 2> "$TMP/err"; rc=$?
check "truncated PNG: exit 2 ($rc)" test "$rc" -eq 2
check "message names the file" grep -q "005.png" "$TMP/err"
check "no run directory" test ! -e "$TMP/bad1"
make_folder "$TMP/img1" 1
echo "this is not a png" > "$TMP/img1/test/columns/007.png"
"$EXPGRAPH" run "$TMP/png1.yaml" --out "$TMP/bad2" --quiet 2> "$TMP/err"; rc=$?
check "non-PNG file: exit 2 ($rc)" test "$rc" -eq 2
check "message names the file" grep -q "007.png" "$TMP/err"
finish

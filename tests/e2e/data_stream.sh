#!/usr/bin/env bash
# End-to-end (issue 19): data that outgrows one machine.
#  - an image folder (JPEG + PNG) trained with data.cache: memory and stream, on 1 and 2
#    ranks, dirichlet partition, crop + flip: metrics.csv identical in all four runs, and in
#    a streamed run killed and resumed (the read-ahead restarts from the checkpoint);
#  - summary.csv records the data the fullest rank holds; validate warns (stderr, exit 0)
#    when the estimated memory exceeds what a rank has;
#  - a training file corrupted while a streamed run goes on: exit 1 naming the file and the
#    training sample; metrics.csv and the checkpoint stay as they were.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
EG_SRC=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

# 3 classes x 100 training images (more than the stream's cache holds: files are decoded
# again in every epoch), 3 x 10 test images, 16x16 RGB; every fifth a PNG
PYTHONPATH="$EG_SRC/tests/bad" python3 - "$TMP/img" <<'PY' || exit 1
import os, random, struct, sys, zlib
import tinyjpeg
root = sys.argv[1]
rng = random.Random(3)
def png(path, w, h, px):
    raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in px(x, y)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for split, count in (("train", 100), ("test", 10)):
    for cls in ("bars", "columns", "diagonal"):
        d = os.path.join(root, split, cls)
        os.makedirs(d, exist_ok=True)
        for k in range(count):
            off = rng.randrange(6)
            noise = [rng.randrange(-25, 25) for _ in range(256)]
            def on(x, y):
                return {"bars": (y // 3) % 2 == off % 2, "columns": (x // 3) % 2 == off % 2,
                        "diagonal": ((x + y) // 3) % 2 == off % 2}[cls]
            def px(x, y, c):
                return max(0, min(255, (200 if on(x, y) else 50) + noise[y * 16 + x] + 10 * c))
            if k % 5 == 4:
                png(os.path.join(d, "%03d.png" % k), 16, 16, lambda x, y: [px(x, y, c) for c in range(3)])
            else:
                with open(os.path.join(d, "%03d.jpg" % k), "wb") as f:
                    f.write(tinyjpeg.encode(16, 16, px, 3, q=2))
PY

spec() { # spec FILE CACHE ITERATIONS
  cat > "$1" <<YAML
name: stream
seed: 1
nodes: 4
graph: ring
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: cnn, channels: [8], kernel: 3, hidden: [16]}
data: {name: image_folder, path: $TMP/img, cache: $2, batch_size: 4, partition: dirichlet,
       alpha: 1.0, augment: [crop, flip]}
train: {iterations: $3, log_every: 10, eval_every: 20, checkpoint_every: 10}
lr: {base: 0.05}
YAML
}
spec "$TMP/mem.yaml" memory 60
spec "$TMP/stream.yaml" stream 60
check "memory, 1 rank" "$EXPGRAPH" run "$TMP/mem.yaml" --out "$TMP/m1" --quiet
check "stream, 1 rank" "$EXPGRAPH" run "$TMP/stream.yaml" --out "$TMP/s1" --quiet
check "memory, 2 ranks" mpi 2 run "$TMP/mem.yaml" --out "$TMP/m2" --quiet
check "stream, 2 ranks" mpi 2 run "$TMP/stream.yaml" --out "$TMP/s2" --quiet
check "stream = memory (1 rank)" same_metrics "$TMP/m1/metrics.csv" "$TMP/s1/metrics.csv"
check "2 ranks = 1 rank (memory)" same_metrics "$TMP/m1/metrics.csv" "$TMP/m2/metrics.csv"
check "stream = memory (2 ranks)" same_metrics "$TMP/m1/metrics.csv" "$TMP/s2/metrics.csv"
EXPGRAPH_KILL_AT=33 "$EXPGRAPH" run "$TMP/stream.yaml" --out "$TMP/sk" --quiet 2>/dev/null
check "stream: killed at iteration 33 (non-zero exit)" test $? -ne 0
check "stream: --resume exits 0" "$EXPGRAPH" run "$TMP/stream.yaml" --out "$TMP/sk" --quiet --resume
check "stream: resumed = memory" same_metrics "$TMP/m1/metrics.csv" "$TMP/sk/metrics.csv"
check "spec.yaml records the cache" grep -q "cache: stream" "$TMP/s1/spec.yaml"
check "memory (the default) is not written" bash -c "! grep -q cache: '$TMP/m1/spec.yaml'"
col=$(head -1 "$TMP/m2/summary.csv" | tr , '\n' | grep -n '^data_bytes_max$' | cut -d: -f1)
check "summary.csv has data_bytes_max" test -n "$col"
held=$(tail -1 "$TMP/m2/summary.csv" | cut -d, -f"${col:-1}")
check "... the fullest rank holds data ($held bytes)" test "${held:-0}" -gt 0

# validate: a rank with 100 kB of memory cannot hold this: warning, exit 0
EXPGRAPH_MEMAVAILABLE_KB=100 "$EXPGRAPH" validate "$TMP/mem.yaml" 2> "$TMP/err"; rc=$?
check "validate with little memory: exit 0 ($rc)" test "$rc" -eq 0
check "... warns about memory" grep -q "warning: this run needs about .* MB per rank" "$TMP/err"
"$EXPGRAPH" validate "$TMP/mem.yaml" 2> "$TMP/err"; rc=$?
check "validate with enough memory: exit 0, no warning" test "$rc" -eq 0 -a ! -s "$TMP/err"

# a file corrupted during a streamed run
spec "$TMP/long.yaml" stream 200000
"$EXPGRAPH" run "$TMP/long.yaml" --out "$TMP/long" > "$TMP/long.out" 2> "$TMP/long.err" &
pid=$!
for _ in $(seq 100); do [ -s "$TMP/long/metrics.csv" ] && break; sleep 0.1; done
victim=$TMP/img/train/columns/011.jpg
cp "$victim" "$TMP/good.jpg"
head -c 200 "$TMP/good.jpg" > "$TMP/cut.jpg" && cp "$TMP/cut.jpg" "$victim"
wait $pid; rc=$?
check "corrupted during the run: exit 1 ($rc)" test "$rc" -eq 1
check "... names the file and the training sample" \
  grep -q "columns/011.jpg: .*(training sample [0-9]* of 300, decoded during the run" "$TMP/long.err"
check "... metrics.csv kept, with rows" test "$(wc -l < "$TMP/long/metrics.csv")" -gt 1
last=$(tail -1 "$TMP/long/metrics.csv" | cut -d, -f1)
gen=$(cut -d' ' -f1 "$TMP/long/ckpt/LATEST" 2>/dev/null)
check "... metrics.csv ends on a whole row (iteration $last)" test "$((last % 10))" -eq 0
check "... the last checkpoint (iteration ${gen:-none}) is at or before it" test "${gen:-0}" -gt 0 -a "${gen:-0}" -le "$last"
cp "$TMP/good.jpg" "$victim"
finish

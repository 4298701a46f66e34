#!/usr/bin/env python3
"""make_seeds.py [CORPUS_DIR] - (re)writes the seed corpora of the fuzz harnesses:
CORPUS_DIR/{spec,idx,csv,png,jpeg,cifar,wmat}/ (default: tests/fuzz/corpus next to this file).
The first byte of an idx/csv/png/jpeg/cifar seed selects the file the harness replaces (see
the harness's header comment); spec and wmat seeds are plain files. Standard library only
(JPEGs from tests/bad/tinyjpeg.py). corpus/jpeg/libjpeg-* are shipped files, not written
here: libjpeg-made progressive, 4:2:0, restart-marker and arithmetic-coded images."""
import gzip
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bad"))
import tinyjpeg  # noqa: E402


def put(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- spec -----------------------------------------------------------------------------------

SKELETON = """name: ok
seed: 1
nodes: 4
graph: ring
algorithm: {name: dmsgd, momentum: 0.9}
model: logreg
data: {name: synthetic, dim: 8, classes: 3, samples: 64, batch_size: 8}
train: {iterations: 20, log_every: 10}
lr: {base: 0.1}
"""

FULL = """name: mnist-onepeer
seed: 1
nodes: 16
graph: onepeer_exp
algorithm:
  name: dmsgd
  momentum: 0.9
  weight_decay: 1.0e-4
  nesterov: false
model:
  name: mlp
  hidden: [256]
  init: independent
data:
  name: synthetic
  path: null
  partition: dirichlet
  alpha: 0.5
  batch_size: 32
  augment: [crop, flip]
  heterogeneity: 0.0
train:
  epochs: 5
  log_every: 50
  eval_every: 0
  checkpoint_every: 500
lr:
  base: 0.1
  scale: linear
  warmup_epochs: 1
  schedule: step
  milestones: [30, 60, 80]
  gamma: 0.1
output:
  dir: runs/mnist-onepeer
sweep:
  graph: [ring, exp, onepeer_exp, full]
  nodes: [8, 16, 32]
"""


def spec_seeds(d):
    put(d, "skeleton.yaml", SKELETON)
    put(d, "full.yaml", FULL)
    graphs = ["ring", "torus", "grid", "exp", "sym_exp", "onepeer_exp", "hypercube",
              "onepeer_hypercube", "full", "star", "{name: erdos_renyi, p: 0.5}",
              "random_match", "{name: file, path: W.csv}"]
    for i, g in enumerate(graphs):
        put(d, "graph-%02d.yaml" % i, SKELETON.replace("graph: ring", "graph: " + g))
    for a in ["psgd", "dsgd", "qg_dmsgd", "gt", "ed", "{name: dmsgd, nesterov: true}"]:
        put(d, "algo-%s.yaml" % a[:8].strip("{ :"), SKELETON.replace(
            "algorithm: {name: dmsgd, momentum: 0.9}", "algorithm: " + a))
    put(d, "cnn.yaml", SKELETON.replace("model: logreg",
                                        "model: {name: cnn, channels: [4, 8], kernel: 3, hidden: [16]}"))
    put(d, "csv.yaml", SKELETON.replace(
        "data: {name: synthetic, dim: 8, classes: 3, samples: 64, batch_size: 8}",
        "data: {name: csv, path: /tmp, batch_size: 8}"))
    put(d, "set.yaml", "#set graph={name: erdos_renyi, p: 0.3}\n" + SKELETON)
    put(d, "set-dotted.yaml", "#set lr.base=0.05\n" + SKELETON)
    put(d, "lr-scalar.yaml", SKELETON.replace("lr: {base: 0.1}", "lr: 0.05"))
    put(d, "block.yaml", """nodes: 8
graph:
  name: erdos_renyi
  p: 0.4
algorithm: gt
model:
  name: mlp
  hidden:
    - 32
    - 16
data:
  name: synthetic
  heterogeneity: 1.5
train:
  iterations: 100
sweep:
  lr.base: [0.1, 0.01]
  algorithm.name: [dsgd, ed]
  graph: [ring, {name: erdos_renyi, p: 0.2}]
""")
    put(d, "quoted.yaml", 'name: "a b"\nnodes: \'4\'\ngraph: "ring"\nalgorithm: dmsgd\n'
        'model: logreg\ndata: {name: synthetic}\noutput: {dir: "runs/x y"}\n')
    put(d, "graph-text.yaml", "{name: erdos_renyi, p: 0.2}")
    put(d, "cluster.yaml", SKELETON + "cluster: {nodes_per_host: 2, latency_us: 10, "
        "bandwidth_gbps: 25, intra_latency_us: 2, intra_bandwidth_gbps: 200, "
        "samples_per_s: 400, straggler: {prob: 0.01, slowdown: 4}}\n")
    put(d, "cluster-measured.yaml", SKELETON + "cluster:\n  latency_us: 10\n"
        "  bandwidth_gbps: 1\n  samples_per_s: measured\n")


def spec_dict(path):
    words = ["name", "seed", "nodes", "graph", "algorithm", "model", "data", "train", "lr",
             "output", "sweep", "momentum", "weight_decay", "nesterov", "hidden", "channels",
             "kernel", "init", "same", "independent", "path", "partition", "alpha",
             "batch_size", "augment", "heterogeneity", "dim", "classes", "samples",
             "test_samples", "epochs", "iterations", "log_every", "eval_every",
             "checkpoint_every", "base", "scale", "warmup_epochs", "schedule", "milestones",
             "gamma", "dir", "ring", "torus", "grid", "exp", "sym_exp", "onepeer_exp",
             "hypercube", "onepeer_hypercube", "full", "star", "erdos_renyi", "random_match",
             "file", "psgd", "dsgd", "dmsgd", "qg_dmsgd", "gt", "ed", "logreg", "mlp", "cnn",
             "mnist", "fashion_mnist", "digits", "synthetic", "idx", "png_folder", "csv",
             "image_folder", "cifar10", "cifar100", "image_size",
             "iid", "dirichlet", "sorted", "crop", "flip", "constant", "step", "cosine",
             "none", "linear", "true", "false", "null", "~", ": ", "{", "}", "[", "]", ", ",
             "- ", "#set ", "---", "&a", "*a", "!!str", "'", '"', "1e3", "0.5", "-1",
             "1048576", ".inf", ".nan"]
    with open(path, "w") as f:
        f.write("# tokens of the expgraph spec language (libFuzzer -dict)\n")
        for w in words:
            f.write('"%s"\n' % w.replace("\\", "\\\\").replace('"', '\\"'))


# ---- idx ------------------------------------------------------------------------------------

def idx_images(n, h=8, w=8, nd=3, c=1):
    if nd == 4:
        head = bytes([0, 0, 8, 4]) + struct.pack(">IIII", n, c, h, w)
        return head + bytes((i * 7) % 256 for i in range(n * c * h * w))
    return bytes([0, 0, 8, 3]) + struct.pack(">III", n, h, w) + bytes((i * 7) % 256 for i in range(n * h * w))


def idx_labels(n, classes=3):
    return bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(i % classes for i in range(n))


def idx_seeds(d):
    files = [idx_images(10), idx_labels(10), idx_images(5), idx_labels(5)]
    for k, data in enumerate(files):
        put(d, "raw-%d" % k, bytes([k]) + data)
        put(d, "gz-%d" % k, bytes([k | 4]) + gzip.compress(data, mtime=0))
    put(d, "labels-many-classes", bytes([1]) + bytes([0, 0, 8, 1]) + struct.pack(">I", 10)
        + bytes([0, 255, 7, 9, 1, 2, 3, 4, 5, 6]))
    put(d, "idx4-test", bytes([2]) + idx_images(5, nd=4, c=1))
    img, lab = idx_images(12), idx_labels(12)
    put(d, "pair-train", bytes([8]) + struct.pack(">H", len(img)) + img + lab)
    put(d, "pair-train-gz", bytes([12]) + struct.pack(">H", len(gzip.compress(img, mtime=0)))
        + gzip.compress(img, mtime=0) + gzip.compress(lab, mtime=0))


# ---- csv ------------------------------------------------------------------------------------

def csv_seeds(d):
    good = "label,a,b,c\n0,1.5,2,3\n1,0.5,-2,3e2\n2,4,5,6\n0,7,8,9\n1,1,1,1\n2,0,0,1\n"
    noheader = "".join("%d, %d.25 , %d\r\n" % (i % 4, i, -i) for i in range(12))
    put(d, "train", b"\x00" + good.encode())
    put(d, "test", b"\x01" + good.encode())
    put(d, "train-gz", b"\x04" + gzip.compress(good.encode(), mtime=0))
    put(d, "test-noheader", b"\x01" + "0,1,2,3\n1,2,3,4\n\n2,3,4,5\n".encode())
    put(d, "single", b"\x02" + noheader.encode())
    put(d, "single-blank-lines", b"\x02" + ("\n\n1,2\n  \n3,4\n5,6\n7,8\n9,10\n0,1\n").encode())
    digits = "".join(",".join(str((r * 3 + c) % 17) for c in range(64)) + ",%d\n" % (r % 10)
                     for r in range(10))
    put(d, "digits", b"\x03" + digits.encode())


# ---- png ------------------------------------------------------------------------------------

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w, h, color=0, depth=8, interlace=0, palette=None, trns=None, seed=0):
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bpp_bits = chans * depth

    def row_bytes(width):
        return (width * bpp_bits + 7) // 8

    def pixels(width, height, off):
        out = b""
        for y in range(height):
            out += b"\x00" + bytes((seed * 13 + off + y * 5 + x * 3) % 256 for x in range(row_bytes(width)))
        return out

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b""
        for i, (x0, y0, dx, dy) in enumerate(passes):
            pw = (w - x0 + dx - 1) // dx if w > x0 else 0
            ph = (h - y0 + dy - 1) // dy if h > y0 else 0
            if pw and ph:
                raw += pixels(pw, ph, i)
    else:
        raw = pixels(w, h, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return out


def png_seeds(d):
    pal = bytes(range(48))  # 16 RGB entries
    variants = {
        "gray8": png(8, 8),
        "rgb8": png(8, 8, color=2),
        "rgba8": png(8, 8, color=6),
        "graya8": png(8, 8, color=4),
        "gray16": png(8, 8, depth=16),
        "rgb16": png(8, 8, color=2, depth=16),
        "gray1": png(8, 8, depth=1),
        "gray4": png(8, 8, depth=4),
        "pal4": png(8, 8, color=3, depth=4, palette=pal, trns=b"\x00\x80"),
        "pal8": png(8, 8, color=3, depth=8, palette=bytes(range(256)) * 3),
        "adam7": png(8, 8, interlace=1),
        "adam7-rgb": png(8, 8, color=2, interlace=1),
        "odd-size": png(9, 7),
        "tiny": png(1, 1),
    }
    for i, (name, data) in enumerate(sorted(variants.items())):
        put(d, "%s-%d" % (name, i % 4), bytes([i % 4]) + data)


# ---- jpeg -----------------------------------------------------------------------------------

def jpeg_seeds(d):
    def pat(seed):
        return lambda x, y, c: (seed * 37 + y * 8 + x * 3 + c * 50) % 256

    # b % 4: the file replaced; b & 4: the other images RGB; b & 8: image_size 5 (see
    # fuzz_jpeg.c for 16, 32, 64)
    put(d, "gray8-0", bytes([0]) + tinyjpeg.encode(8, 8, pat(0), 1))
    put(d, "gray8-q8-1", bytes([1]) + tinyjpeg.encode(8, 8, pat(1), 1, q=8))
    put(d, "rgb8-2", bytes([2 | 4]) + tinyjpeg.encode(8, 8, pat(2), 3))
    put(d, "rgb8-test-3", bytes([3 | 4]) + tinyjpeg.encode(8, 8, pat(3), 3, q=4))
    put(d, "resize-wide-0", bytes([0 | 4 | 8]) + tinyjpeg.encode(17, 9, pat(4), 3))
    put(d, "resize-tall-1", bytes([1 | 8]) + tinyjpeg.encode(5, 19, pat(5), 1))
    put(d, "resize-tiny-2", bytes([2 | 8]) + tinyjpeg.encode(1, 1, pat(6), 1))
    put(d, "odd-size-3", bytes([3]) + tinyjpeg.encode(9, 8, pat(7), 1))
    # random_resized_crop (16), streamed (32), eval_resize 7 (64): crops of odd shapes
    put(d, "rrc-wide-0", bytes([0 | 4 | 16]) + tinyjpeg.encode(40, 6, pat(8), 3))
    put(d, "rrc-tall-stream-1", bytes([1 | 16 | 32]) + tinyjpeg.encode(3, 33, pat(9), 1))
    put(d, "rrc-tiny-eval-2", bytes([2 | 4 | 16 | 64]) + tinyjpeg.encode(1, 2, pat(10), 3))
    put(d, "rrc-stream-test-3", bytes([3 | 4 | 16 | 32 | 64]) + tinyjpeg.encode(13, 11, pat(11), 3))


# ---- cifar ----------------------------------------------------------------------------------

def cifar_records(n, label_bytes, seed):
    out = b""
    for r in range(n):
        if label_bytes == 2:
            out += bytes([(seed + r) % 20])
        out += bytes([(seed * 3 + r) % (100 if label_bytes == 2 else 10)])
        out += bytes((k * 7 + seed * 13 + r) % 256 for k in range(3072))
    return out


def cifar_seeds(d):
    # b & 7: the file replaced (mod 6 or 2); b & 8: CIFAR-100; b & 16: nested layout
    put(d, "c10-batch1", bytes([0]) + cifar_records(2, 1, 0))
    put(d, "c10-batch5-nested", bytes([4 | 16]) + cifar_records(1, 1, 4))
    put(d, "c10-test", bytes([5]) + cifar_records(2, 1, 5))
    put(d, "c100-train", bytes([8]) + cifar_records(2, 2, 0))
    put(d, "c100-test-nested", bytes([8 | 1 | 16]) + cifar_records(1, 2, 1))
    put(d, "c10-short", bytes([2]) + cifar_records(1, 1, 2)[:3000])


# ---- wmat -----------------------------------------------------------------------------------

def wmat_seeds(d):
    def ring(n):
        rows = []
        for i in range(n):
            r = [0.0] * n
            for j in (i - 1, i, i + 1):
                r[j % n] += 1.0 / 3
            rows.append(",".join("%.17g" % v for v in r))
        return "\n".join(rows) + "\n"

    put(d, "ring4.csv", ring(4))
    put(d, "ring8.csv", ring(8))
    put(d, "one.csv", "1\n")
    put(d, "two-spaces.csv", "# W for two nodes\n 0.5 , 0.5\n\n0.25,0.75\r\n")
    put(d, "full3.csv", "0.3333333333333333,0.3333333333333333,0.33333333333333337\n" * 3)
    put(d, "exp4.csv", "0.5,0,0,0.5\n0.5,0.5,0,0\n0,0.5,0.5,0\n0,0,0.5,0.5\n")
    put(d, "sci.csv", "5e-1,5.0e-1\n1e0,0e0\n")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    spec_seeds(os.path.join(root, "spec"))
    idx_seeds(os.path.join(root, "idx"))
    csv_seeds(os.path.join(root, "csv"))
    png_seeds(os.path.join(root, "png"))
    jpeg_seeds(os.path.join(root, "jpeg"))
    cifar_seeds(os.path.join(root, "cifar"))
    wmat_seeds(os.path.join(root, "wmat"))
    spec_dict(os.path.join(HERE, "spec.dict"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""make_fixtures.py OUTDIR - writes the binary (and generated) broken data sets that the
specs in tests/bad/ point at through the @TMP@ placeholder (tests/e2e/bad_inputs.sh calls
this). Every broken fixture is a good one with exactly one thing wrong, so that the
message must name that thing. Only the standard library (struct, zlib, gzip) and the small
JPEG encoder next to this file (tinyjpeg.py)."""
import gzip
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyjpeg  # noqa: E402


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- idx ----------------------------------------------------------------------------------

def idx_images(n, h, w, magic=0x00000803, elem=0x08):
    head = bytes([0, 0, elem, magic & 0xFF]) + struct.pack(">III", n, h, w)
    return head + bytes((i * 7) % 256 for i in range(n * h * w))


def idx_labels(n, classes=3):
    return bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(i % classes for i in range(n))


def idx_set(d, ntr=80, nte=20, h=8, w=8, gz=False, skip=()):
    files = {
        "train-images-idx3-ubyte": idx_images(ntr, h, w),
        "train-labels-idx1-ubyte": idx_labels(ntr),
        "t10k-images-idx3-ubyte": idx_images(nte, h, w),
        "t10k-labels-idx1-ubyte": idx_labels(nte),
    }
    for name, data in files.items():
        if name in skip:
            continue
        if gz:
            write(os.path.join(d, name + ".gz"), gzip.compress(data, mtime=0))
        else:
            write(os.path.join(d, name), data)
    return files


def make_idx(out):
    idx_set(os.path.join(out, "idx_ok"))
    # gzip stream cut in the middle of the payload
    d = os.path.join(out, "idx_trunc_gz")
    files = idx_set(d, gz=True)
    z = gzip.compress(files["train-images-idx3-ubyte"], mtime=0)
    write(os.path.join(d, "train-images-idx3-ubyte.gz"), z[: len(z) // 2])
    # raw file whose payload is shorter than the header promises
    d = os.path.join(out, "idx_trunc_raw")
    files = idx_set(d)
    write(os.path.join(d, "train-images-idx3-ubyte"), files["train-images-idx3-ubyte"][:16 + 100])
    # wrong magic number
    d = os.path.join(out, "idx_bad_magic")
    files = idx_set(d)
    write(os.path.join(d, "train-images-idx3-ubyte"),
          b"\x12\x34\x08\x03" + files["train-images-idx3-ubyte"][4:])
    # element type float (0x0D) instead of unsigned byte
    d = os.path.join(out, "idx_elem_type")
    idx_set(d)
    write(os.path.join(d, "train-images-idx3-ubyte"), idx_images(80, 8, 8, elem=0x0D))
    # 79 labels for 80 images
    d = os.path.join(out, "idx_count_mismatch")
    idx_set(d)
    write(os.path.join(d, "train-labels-idx1-ubyte"), idx_labels(79))
    # test split missing
    d = os.path.join(out, "idx_missing_test")
    idx_set(d, skip=("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    # a 40-byte file whose header claims 10^9 images of 28x28 (784 GB of pixels)
    d = os.path.join(out, "idx_huge_header")
    idx_set(d, h=28, w=28)
    write(os.path.join(d, "train-images-idx3-ubyte"),
          bytes([0, 0, 8, 3]) + struct.pack(">III", 1000000000, 28, 28) + bytes(24))
    write(os.path.join(d, "train-labels-idx1-ubyte"),
          bytes([0, 0, 8, 1]) + struct.pack(">I", 1000000000) + bytes(24))
    # the same, gzipped: a 60-byte stream cannot inflate to 784 GB
    d = os.path.join(out, "idx_huge_header_gz")
    idx_set(d, h=28, w=28, gz=True)
    write(os.path.join(d, "train-images-idx3-ubyte.gz"), gzip.compress(
        bytes([0, 0, 8, 3]) + struct.pack(">III", 1000000000, 28, 28) + bytes(24), mtime=0))
    write(os.path.join(d, "train-labels-idx1-ubyte.gz"), gzip.compress(
        bytes([0, 0, 8, 1]) + struct.pack(">I", 1000000000) + bytes(24), mtime=0))
    # an empty file
    d = os.path.join(out, "idx_empty_file")
    idx_set(d)
    write(os.path.join(d, "t10k-labels-idx1-ubyte"), b"")
    # trailing garbage after the payload
    d = os.path.join(out, "idx_trailing")
    files = idx_set(d)
    write(os.path.join(d, "train-labels-idx1-ubyte"), files["train-labels-idx1-ubyte"] + b"junk")
    # a too-small data set for the node count (10 train images)
    idx_set(os.path.join(out, "idx_small"), ntr=10, nte=5)
    # a regular file where the directory should be
    write(os.path.join(out, "idx_is_a_file"), idx_images(4, 8, 8))


# ---- png ----------------------------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_gray(w, h, seed=0, bad_crc=False):
    raw = b"".join(b"\x00" + bytes((seed * 31 + y * w + x) % 256 for x in range(w))
                   for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = png_chunk(b"IDAT", zlib.compress(raw))
    if bad_crc:
        idat = idat[:-4] + bytes(b ^ 0xFF for b in idat[-4:])
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + idat + png_chunk(b"IEND", b"")


def png_tree(d, ntr=6, nte=2, classes=("a", "b"), w=8, h=8):
    for c in classes:
        for i in range(ntr):
            write(os.path.join(d, "train", c, "%02d.png" % i), png_gray(w, h, i))
        for i in range(nte):
            write(os.path.join(d, "test", c, "%02d.png" % i), png_gray(w, h, 100 + i))


def make_png(out):
    png_tree(os.path.join(out, "png_ok"))
    d = os.path.join(out, "png_not_png")
    png_tree(d)
    write(os.path.join(d, "train", "b", "03.png"), b"this is a text file, not an image\n")
    d = os.path.join(out, "png_truncated")
    png_tree(d)
    good = png_gray(8, 8, 3)
    write(os.path.join(d, "train", "b", "03.png"), good[: len(good) - 30])
    d = os.path.join(out, "png_sizes")
    png_tree(d)
    write(os.path.join(d, "test", "a", "01.png"), png_gray(9, 8, 1))
    d = os.path.join(out, "png_bad_crc")
    png_tree(d)
    write(os.path.join(d, "train", "a", "02.png"), png_gray(8, 8, 2, bad_crc=True))
    d = os.path.join(out, "png_empty_class")
    png_tree(d)
    os.makedirs(os.path.join(d, "train", "c"), exist_ok=True)
    write(os.path.join(d, "train", "c", "readme.txt"), b"no images here\n")
    d = os.path.join(out, "png_test_class")
    png_tree(d)
    write(os.path.join(d, "test", "zebra", "00.png"), png_gray(8, 8, 7))
    d = os.path.join(out, "png_no_test")
    png_tree(d)
    for c in ("a", "b"):
        for i in range(2):
            os.remove(os.path.join(d, "test", c, "%02d.png" % i))
    # IHDR claiming a 0-pixel-wide image
    d = os.path.join(out, "png_zero_width")
    png_tree(d)
    bad = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 8, 8, 0, 0, 0, 0)) \
        + png_chunk(b"IEND", b"")
    write(os.path.join(d, "train", "a", "00.png"), bad)


# ---- cifar --------------------------------------------------------------------------------

def cifar_records(n, label_bytes, seed, labels=None):
    out = b""
    for r in range(n):
        if label_bytes == 2:
            out += bytes([(seed + r) % 20])
        lab = labels[r] if labels else (seed * 3 + r) % (100 if label_bytes == 2 else 10)
        out += bytes([lab])
        out += bytes((k * 7 + seed * 13 + r) % 256 for k in range(3072))
    return out


def cifar10_set(d, per_file=4):
    for i in range(1, 6):
        write(os.path.join(d, "data_batch_%d.bin" % i), cifar_records(per_file, 1, i))
    write(os.path.join(d, "test_batch.bin"), cifar_records(per_file, 1, 9))


def make_cifar(out):
    cifar10_set(os.path.join(out, "cifar_ok"))
    # the test batch cut in the middle of its last record
    d = os.path.join(out, "cifar_trunc")
    cifar10_set(d)
    good = cifar_records(4, 1, 9)
    write(os.path.join(d, "test_batch.bin"), good[:len(good) - 1000])
    # a batch file missing
    d = os.path.join(out, "cifar_missing_batch")
    cifar10_set(d)
    os.remove(os.path.join(d, "data_batch_3.bin"))
    # CIFAR-100 with a fine label of 100 in record 7 of train.bin
    d = os.path.join(out, "cifar100_label")
    labels = [5, 17, 99, 0, 42, 63, 100, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    write(os.path.join(d, "train.bin"), cifar_records(20, 2, 0, labels))
    write(os.path.join(d, "test.bin"), cifar_records(4, 2, 1))


# ---- jpeg ---------------------------------------------------------------------------------

def jpeg_pattern(seed):
    return lambda x, y, c: (seed * 31 + y * 8 + x * 3 + c * 40) % 256


def jpeg_tree(d, ntr=6, nte=2, classes=("a", "b"), w=8, h=8):
    for c in classes:
        for i in range(ntr):
            write(os.path.join(d, "train", c, "%02d.jpg" % i), tinyjpeg.encode(w, h, jpeg_pattern(i), 3))
        for i in range(nte):
            write(os.path.join(d, "test", c, "%02d.jpg" % i),
                  tinyjpeg.encode(w, h, jpeg_pattern(100 + i), 3))


def make_jpeg(out):
    jpeg_tree(os.path.join(out, "jpeg_ok"))
    # garbage after the start-of-image marker and a DQT marker
    d = os.path.join(out, "jpeg_corrupt")
    jpeg_tree(d)
    write(os.path.join(d, "train", "b", "03.jpg"),
          b"\xff\xd8\xff\xdb" + bytes((k * 37 + 11) % 256 for k in range(300)))
    # cut in the middle of the entropy-coded data
    d = os.path.join(out, "jpeg_truncated")
    jpeg_tree(d)
    good = tinyjpeg.encode(8, 8, jpeg_pattern(101), 3)
    write(os.path.join(d, "test", "a", "01.jpg"), good[: len(good) - 60])
    # one image of another size, no data.image_size
    d = os.path.join(out, "jpeg_sizes")
    jpeg_tree(d)
    write(os.path.join(d, "train", "a", "02.jpg"), tinyjpeg.encode(9, 8, jpeg_pattern(2), 3))
    # a CMYK JPEG (4 components) among RGB ones
    d = os.path.join(out, "jpeg_cmyk")
    jpeg_tree(d)
    write(os.path.join(d, "train", "b", "04.jpg"), tinyjpeg.encode(8, 8, jpeg_pattern(4), 4))
    # ImageNet's layout with val/ not yet sorted into class folders
    d = os.path.join(out, "imagenet_flat_val")
    for c in ("n01", "n02"):
        for i in range(4):
            write(os.path.join(d, "train", c, "%s_%d.JPEG" % (c, i)),
                  tinyjpeg.encode(12, 10, jpeg_pattern(i), 3))
    for i in range(3):
        write(os.path.join(d, "val", "ILSVRC2012_val_%08d.JPEG" % (i + 1)),
              tinyjpeg.encode(12, 10, jpeg_pattern(50 + i), 3))


# ---- csv (gzipped ones; the plain-text ones ship in tests/bad/data) -----------------------

def make_csv(out):
    rows = "".join("%d,%d,%d,%d\n" % (i % 3, i, 2 * i, i % 5) for i in range(40))
    d = os.path.join(out, "csv_trunc_gz")
    z = gzip.compress(rows.encode(), mtime=0)
    write(os.path.join(d, "train.csv.gz"), z[: len(z) - 12])
    write(os.path.join(d, "test.csv"), rows[:60].rsplit("\n", 1)[0].encode() + b"\n")
    # binary junk named .csv
    d = os.path.join(out, "csv_binary")
    write(os.path.join(d, "train.csv"), bytes(range(256)) * 4)
    write(os.path.join(d, "test.csv"), rows.encode())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    make_idx(out)
    make_png(out)
    make_cifar(out)
    make_jpeg(out)
    make_csv(out)


if __name__ == "__main__":
    main()

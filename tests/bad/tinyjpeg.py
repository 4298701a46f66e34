#!/usr/bin/env python3
"""tinyjpeg.py - a small baseline JPEG encoder (standard library only) for the test fixtures:
tests/bad/make_fixtures.py (broken JPEG folders), tests/fuzz/make_seeds.py (fuzz seeds) and
the end-to-end scripts (tests/e2e/cifar_image.sh) import it; PIL is not available here.

encode(w, h, pixels, comps, q=1) -> bytes
  pixels: a function (x, y, c) -> 0..255, or a flat sequence of h*w*comps values (row-major,
  interleaved); comps 1 (grayscale), 3 (RGB, stored as YCbCr 4:4:4) or 4 (CMYK, stored as
  given, no Adobe marker: what libjpeg reads as a CMYK file, for the tests that expect it
  refused).
  q: one quantiser for every coefficient (1 = nearly lossless; larger = smaller files).

Baseline sequential DCT, 8-bit, one scan, interleaved components. The Huffman tables are
valid but not the standard ones: every DC category gets a 4-bit code and every AC symbol an
8-bit code (simple and fine for tiny images)."""
import math
import struct

_ZIGZAG = sorted(((u, v) for u in range(8) for v in range(8)),
                 key=lambda p: (p[0] + p[1], p[0] if (p[0] + p[1]) % 2 else p[1]))
_COS = [[math.cos((2 * x + 1) * u * math.pi / 16) * (math.sqrt(0.5) if u == 0 else 1.0)
         for x in range(8)] for u in range(8)]
_DC_SYMS = list(range(12))
_AC_SYMS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]


def _table(syms, length):
    # canonical codes: every symbol `length` bits, in order
    return {s: (i, length) for i, s in enumerate(syms)}


_DC = _table(_DC_SYMS, 4)
_AC = _table(_AC_SYMS, 8)


def _dht(cls, ident, syms, length):
    counts = [0] * 16
    counts[length - 1] = len(syms)
    body = bytes([(cls << 4) | ident]) + bytes(counts) + bytes(syms)
    return b"\xff\xc4" + struct.pack(">H", len(body) + 2) + body


class _Bits:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, n):
        for k in range(n - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> k) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = 0
                self.n = 0

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)


def _category(v):
    v = abs(v)
    return v.bit_length()


def _magnitude(v, s):
    return v if v >= 0 else v + (1 << s) - 1


def _fdct(block):
    # block: 8x8 level-shifted samples -> coefficients F[u][v] (u vertical, v horizontal)
    tmp = [[sum(_COS[v][x] * block[y][x] for x in range(8)) for v in range(8)] for y in range(8)]
    return [[0.25 * sum(_COS[u][y] * tmp[y][v] for y in range(8)) for v in range(8)]
            for u in range(8)]


def encode(w, h, pixels, comps, q=1):
    if comps not in (1, 3, 4):
        raise ValueError("comps must be 1, 3 or 4")
    if callable(pixels):
        get = pixels
    else:
        data = pixels

        def get(x, y, c):
            return data[(y * w + x) * comps + c]

    def sample(x, y, c):
        # edge pixels repeated to fill the last blocks; colour converted to YCbCr
        x, y = min(x, w - 1), min(y, h - 1)
        if comps != 3:
            return get(x, y, c)
        r, g, b = get(x, y, 0), get(x, y, 1), get(x, y, 2)
        if c == 0:
            return 0.299 * r + 0.587 * g + 0.114 * b
        if c == 1:
            return -0.168736 * r - 0.331264 * g + 0.5 * b + 128
        return 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    out = bytearray(b"\xff\xd8")
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    out += b"\xff\xe0" + struct.pack(">H", len(jfif) + 2) + jfif
    out += b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([q] * 64)
    sof = struct.pack(">BHHB", 8, h, w, comps)
    for c in range(comps):
        sof += bytes([c + 1, 0x11, 0])
    out += b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
    out += _dht(0, 0, _DC_SYMS, 4) + _dht(1, 0, _AC_SYMS, 8)
    sos = bytes([comps]) + b"".join(bytes([c + 1, 0x00]) for c in range(comps)) + b"\x00\x3f\x00"
    out += b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos
    bits = _Bits()
    pred = [0] * comps
    for by in range(0, h, 8):
        for bx in range(0, w, 8):
            for c in range(comps):
                block = [[sample(bx + x, by + y, c) - 128 for x in range(8)] for y in range(8)]
                f = _fdct(block)
                z = [int(round(f[u][v] / q)) for (u, v) in _ZIGZAG]
                z[0] = max(-2047, min(2047, z[0]))
                z[1:] = [max(-1023, min(1023, v)) for v in z[1:]]
                diff = z[0] - pred[c]
                pred[c] = z[0]
                s = _category(diff)
                bits.put(*_DC[s])
                if s:
                    bits.put(_magnitude(diff, s), s)
                run = 0
                for v in z[1:]:
                    if v == 0:
                        run += 1
                        continue
                    while run > 15:
                        bits.put(*_AC[0xF0])
                        run -= 16
                    s = _category(v)
                    bits.put(*_AC[(run << 4) | s])
                    bits.put(_magnitude(v, s), s)
                    run = 0
                if run:
                    bits.put(*_AC[0x00])
    bits.flush()
    out += bits.out + b"\xff\xd9"
    return bytes(out)


if __name__ == "__main__":
    import sys
    # tinyjpeg.py OUT.jpg W H COMPS: a test pattern
    path, w, h, comps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with open(path, "wb") as f:
        f.write(encode(w, h, lambda x, y, c: (x * 9 + y * 5 + c * 60) % 256, comps))

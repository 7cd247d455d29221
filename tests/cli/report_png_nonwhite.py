#!/usr/bin/env python3
"""Fails unless a PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes) has at least the given
fraction of non-white pixels and some coloured (non-grey) ones: a blank page has neither.
Standard library only (zlib); used by report_render.sh."""
import struct
import sys
import zlib


def main(path, min_frac):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        sys.exit(f"{path}: unsupported PNG layout (depth {depth}, colour type {ctype})")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    nonwhite = coloured = 0
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            r, g, bl = line[x], line[x + 1], line[x + 2]
            if r < 240 or g < 240 or bl < 240:
                nonwhite += 1
            if max(r, g, bl) - min(r, g, bl) > 60:
                coloured += 1
        prev = line
    frac = nonwhite / (w * h)
    print(f"{path}: {w}x{h}, {100 * frac:.1f}% non-white, {coloured} coloured pixels")
    if frac < min_frac or coloured < 500:
        sys.exit(f"{path}: looks blank (non-white {100 * frac:.2f}% < {100 * min_frac:.1f}% or {coloured} coloured pixels)")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))

#!/bin/sh
# A small seed corpus for fuzz-images: PNG files of every colour type the readers expand
# (gray, gray + alpha, RGB, RGBA, a palette with tRNS; 1, 8 and 16 bits; interlaced) and JPEG
# files (baseline, progressive, gray, 4:2:0), each a few hundred bytes, made by
# /usr/bin/python3 with PIL.
#   tests/fuzz/seed-images.sh OUTDIR [BUILDDIR]
#     (BUILDDIR unused: the same call as seed-weights.sh)
set -eu
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 OUTDIR [BUILDDIR]" >&2; exit 2; }
mkdir -p "$1"
exec /usr/bin/python3 - "$1" <<'PY'
import os
import sys

from PIL import Image

out = sys.argv[1]


def picture(mode, w, h):
    p = Image.new(mode, (w, h))
    bands = len(p.getbands())
    for y in range(h):
        for x in range(w):
            v = [(x * 37 + y * 11 + 60 * k) % 256 for k in range(bands)]
            p.putpixel((x, y), v[0] if bands == 1 else tuple(v))
    return p


def save(p, name, **options):
    p.save(os.path.join(out, name), **options)


save(picture("L", 7, 5), "gray8.png")
save(picture("1", 9, 4), "gray1.png")
save(picture("LA", 6, 6), "gray-alpha.png")
save(picture("RGB", 8, 5), "rgb.png")
save(picture("RGBA", 5, 7), "rgba.png")
save(picture("RGB", 8, 8), "interlaced.png", interlace=1)
save(picture("I;16", 6, 4), "gray16.png")
palette = picture("P", 6, 5)
palette.putpalette([(i * 7) % 256 for i in range(768)])
save(palette, "palette-trns.png", transparency=3)
save(picture("RGB", 16, 16), "baseline.jpg", quality=80)
save(picture("RGB", 24, 16), "progressive.jpg", quality=70, progressive=True)
save(picture("L", 16, 8), "gray.jpg", quality=90)
save(picture("RGB", 17, 9), "subsampled.jpg", quality=60, subsampling=2)
PY

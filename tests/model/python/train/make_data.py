"""Synthetic matting data for the training smoke test.

    /usr/bin/python3 tests/model/python/train/make_data.py OUTDIR [--fg 16] [--bg 8] [--val 4]
        [--size 128] [--seed 0]

Writes, in the layouts of model/python/train/data.py:
  OUTDIR/fg/NN.png                 RGBA portraits-like shapes: a head and shoulders with soft
                                   edges (1-3 px) and hair-like strands of partial opacity
  OUTDIR/bg/NN.png                 textured backgrounds (waves, blobs, noise), not square
  OUTDIR/val/image/NN.png + val/alpha/NN.png
                                   composites of other shapes over other backgrounds
Everything is drawn with NumPy from the seed, so the data are the same on every machine.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """H x W x 3 in [0, 1]: random colours on a coarse grid, bilinearly enlarged."""
    coarse = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR),
                      dtype=np.float64) / 255


def _segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(px - ax - t * dx, py - ay - t * dy)


def foreground(rng: np.random.Generator, size: int):
    """(colour H x W x 3 in [0, 1], alpha H x W in [0, 1])."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    s = size / 128
    # Head: an ellipse; shoulders: a wide ellipse cut by the bottom edge; a neck between.
    cx, cy = rng.uniform(0.35, 0.65) * size, rng.uniform(0.3, 0.45) * size
    rx, ry = rng.uniform(18, 26) * s, rng.uniform(22, 30) * s
    head = (np.hypot((x - cx) / rx, (y - cy) / ry) - 1) * min(rx, ry)
    sx, sy = cx + rng.uniform(-8, 8) * s, size + rng.uniform(0, 10) * s
    srx, sry = rng.uniform(40, 60) * s, rng.uniform(35, 50) * s
    shoulders = (np.hypot((x - sx) / srx, (y - sy) / sry) - 1) * min(srx, sry)
    neck_w = rng.uniform(6, 10) * s  # a capsule from the head's centre downwards
    neck = np.where(y > cy, np.abs(x - cx), np.hypot(x - cx, y - cy)) - neck_w
    softness = rng.uniform(1, 3) * s
    alpha = np.clip(0.5 - np.minimum(np.minimum(head, shoulders), neck) / softness, 0, 1)

    # Strands: gently bent polylines leaving the top half of the head, thin and translucent.
    strands = np.zeros_like(alpha)
    for _ in range(int(rng.integers(12, 24))):
        angle = rng.uniform(-np.pi, 0)  # upper half (y grows downwards)
        ax, ay = cx + rx * np.cos(angle), cy + ry * np.sin(angle)
        length = rng.uniform(8, 22) * s
        heading = angle + rng.normal(0, 0.4)
        bend = rng.normal(0, 0.15)
        width = rng.uniform(0.4, 1.0) * s
        opacity = rng.uniform(0.35, 0.9)
        dist = np.full_like(alpha, np.inf)
        for _ in range(8):
            bx, by = ax + length / 8 * np.cos(heading), ay + length / 8 * np.sin(heading)
            dist = np.minimum(dist, _segment_distance(x, y, ax, ay, bx, by))
            ax, ay, heading = bx, by, heading + bend
        strands = np.maximum(strands, opacity * np.clip(1 - dist / (width + 0.5), 0, 1))
    alpha = np.maximum(alpha, strands)

    skin = _smooth_field(rng, size, size, 3) * 0.6 + 0.3
    hair = np.array(rng.uniform(0.05, 0.5, 3))
    colour = np.where((strands > 0)[..., None] & (head > 0)[..., None], hair, skin)
    return colour, alpha


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """H x W x 3 in [0, 1]: coloured blobs, a stripe pattern and noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = _smooth_field(rng, h, w, int(rng.integers(3, 8)))
    theta, freq = rng.uniform(0, np.pi), rng.uniform(0.05, 0.4)
    stripes = 0.5 + 0.5 * np.sin(freq * (x * np.cos(theta) + y * np.sin(theta)))
    img = img * (1 - 0.4 * rng.uniform()) + 0.4 * rng.uniform() * stripes[..., None]
    img += rng.normal(0, 0.04, img.shape)
    return np.clip(img, 0, 1)


def _save(path: str, array: np.ndarray, mode: str) -> None:
    Image.fromarray(np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8), mode).save(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--fg", type=int, default=16)
    parser.add_argument("--bg", type=int, default=8)
    parser.add_argument("--val", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for sub in ("fg", "bg", "val/image", "val/alpha"):
        os.makedirs(os.path.join(args.outdir, sub), exist_ok=True)

    def bg_size():
        return int(args.size * rng.uniform(1.0, 1.5)), int(args.size * rng.uniform(1.0, 1.5))

    for i in range(args.fg):
        colour, alpha = foreground(rng, args.size)
        _save(os.path.join(args.outdir, "fg", f"{i:02d}.png"),
              np.concatenate([colour, alpha[..., None]], axis=2), "RGBA")
    for i in range(args.bg):
        _save(os.path.join(args.outdir, "bg", f"{i:02d}.png"), background(rng, *bg_size()), "RGB")
    for i in range(args.val):
        colour, alpha = foreground(rng, args.size)
        bg = background(rng, args.size, args.size)
        a = np.rint(alpha * 255) / 255  # the composite uses exactly the alpha that is saved
        _save(os.path.join(args.outdir, "val", "image", f"{i:02d}.png"),
              a[..., None] * colour + (1 - a[..., None]) * bg, "RGB")
        _save(os.path.join(args.outdir, "val", "alpha", f"{i:02d}.png"), a, "L")
    print(f"{args.outdir}: {args.fg} foregrounds, {args.bg} backgrounds, {args.val} validation "
          f"images at {args.size} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""hfam-eval (tools/matte-metrics.c) against model/python/train/metrics.py, two implementations
written apart: random and structured mattes of several sizes, odd ones included, stored in
every PNG layout hfam-eval reads (16, 8 and 1-bit gray, gray + alpha, RGB, RGBA, palettes
with and without tRNS). Per image and for the mean, SAD, MSE, Grad and Conn must agree to
1e-6 relative (1e-15 absolute, for values that are 0 but for rounding).

Usage: agreement.py HFAM_EVAL MODEL_TRAIN_DIR. Exit 77 (skipped) without numpy and scipy."""

import csv
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import scipy.ndimage  # noqa: F401  (metrics.py needs it)
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pngfile  # noqa: E402

RELATIVE, ABSOLUTE = 1e-6, 1e-15
SIZES = [(1, 1), (1, 9), (5, 7), (16, 16), (17, 33), (48, 64), (77, 101), (120, 96)]
NAMES = ("sad", "mse", "grad", "conn")


def soft_disk(h, w, cy, cx, radius, softness):
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot(y - cy, x - cx)
    return np.clip((radius - r) / softness + 0.5, 0, 1)


def patterns(rng, h, w):
    """(name, pred, gt) in [0, 1]."""
    disk = soft_disk(h, w, h * 0.45, w * 0.5, min(h, w) * 0.35, 3)
    blurred = scipy.ndimage.gaussian_filter(
        soft_disk(h, w, h * 0.5, w * 0.45, min(h, w) * 0.33, 1.5), 1)
    noisy = np.clip(blurred + rng.normal(0, 0.05, (h, w)), 0, 1)
    lines = np.zeros((h, w))
    lines[:, ::4] = 1
    lines[::5, :] = 0.5
    steps16 = rng.integers(0, 6, (h, w)) * 13107 / 65535  # 0, 0.2, ..., 1: the thresholds
    yield "uniform", rng.random((h, w)), rng.random((h, w))
    yield "disk", noisy, disk
    yield "binary", (rng.random((h, w)) < 0.5) * 1.0, (rng.random((h, w)) < 0.6) * 1.0
    yield "ramps", np.tile(np.linspace(0, 1, w), (h, 1)), np.tile(np.linspace(0, 1, h), (w, 1)).T
    yield "identical", disk, disk
    yield "lines", lines, np.clip(lines + rng.normal(0, 0.2, (h, w)), 0, 1)
    yield "thresholds", steps16, rng.integers(0, 6, (h, w)) * 13107 / 65535
    yield "mostly-opaque", np.clip(disk * 1.3, 0, 1), np.clip(noisy * 1.5, 0, 1)


def store(path, alpha, layout, rng):
    """Writes `alpha` in one PNG layout; returns the alphas hfam-eval must read from it."""
    h, w = alpha.shape
    if layout == "gray1":
        q = (alpha >= 0.5).astype(int)
        pngfile.write_png(path, w, h, q.tolist(), 1, pngfile.GRAY)
        return q.astype(np.float64)
    full = 65535 if layout.endswith("16") else 255
    q = np.rint(alpha * full).astype(int)
    noise = rng.integers(0, full + 1, (h, w, 3))
    if layout in ("gray16", "gray8"):
        rows = q
        kind = pngfile.GRAY
    elif layout in ("gray-alpha16", "gray-alpha8"):
        rows = np.stack([noise[..., 0], q], axis=-1).reshape(h, -1)
        kind = pngfile.GRAY_ALPHA
    elif layout == "rgb8":  # R = G = B: the luma is exact
        rows = np.repeat(q, 3, axis=1)
        kind = pngfile.RGB
    elif layout in ("rgba16", "rgba8"):
        rows = np.concatenate([noise, q[..., None]], axis=-1).reshape(h, -1)
        kind = pngfile.RGBA
    elif layout == "palette-gray8":
        palette = bytes(v for i in range(256) for v in (i, i, i))
        pngfile.write_png(path, w, h, q.tolist(), 8, pngfile.PALETTE, [(b"PLTE", palette)])
        return q / 255
    elif layout == "palette-trns8":  # entry i: a random colour with alpha i
        palette = rng.integers(0, 256, 768).astype(np.uint8).tobytes()
        pngfile.write_png(path, w, h, q.tolist(), 8, pngfile.PALETTE,
                          [(b"PLTE", palette), (b"tRNS", bytes(range(256)))])
        return q / 255
    else:
        raise ValueError(layout)
    pngfile.write_png(path, w, h, rows.tolist(), 16 if full == 65535 else 8, kind)
    return q / full


LAYOUTS = ["gray16", "gray8", "rgba8", "gray-alpha16", "rgb8", "rgba16", "palette-gray8",
           "gray-alpha8", "palette-trns8", "gray1"]


def close(a, b):
    return abs(a - b) <= RELATIVE * max(abs(a), abs(b)) + ABSOLUTE


def hand_checks(metrics):
    """The cases of test_matte_metrics.c, on metrics.py alone."""
    disk = soft_disk(9, 11, 4, 5, 3, 2)
    assert all(v == 0 for v in metrics.all_metrics(disk, disk).values())
    s = metrics.all_metrics(np.array([[1, 0.5, 1, 1]]), np.ones((1, 4)))
    assert close(s["conn"], 0.5 / 1000) and close(s["sad"], 0.5 / 1000)
    assert close(s["mse"], 0.0625)
    tie = metrics.conn(np.array([[0, 0.4], [0.1, 0]]), np.array([[0, 0.1], [0.1, 0]]))
    assert close(tie, 0.4 / 1000), tie
    flat = metrics.all_metrics(np.full((5, 7), 0.75), np.full((5, 7), 0.5))
    assert close(flat["conn"], 0.25 * 35 / 1000) and flat["grad"] < 1e-20


def main():
    hfam_eval, train_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, train_dir)
    import metrics

    hand_checks(metrics)

    rng = np.random.default_rng(20240611)
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        pred_dir, gt_dir = os.path.join(tmp, "pred"), os.path.join(tmp, "gt")
        os.mkdir(pred_dir)
        os.mkdir(gt_dir)
        n = 0
        for h, w in SIZES:
            for name, pred, gt in patterns(rng, h, w):
                stem = f"{name}-{w}x{h}"
                pred_layout = LAYOUTS[n % len(LAYOUTS)]
                gt_layout = LAYOUTS[(3 * n + 1) % len(LAYOUTS)]
                n += 1
                p = store(os.path.join(pred_dir, stem + ".png"), pred, pred_layout, rng)
                g = store(os.path.join(gt_dir, stem + ".png"), gt, gt_layout, rng)
                expected[stem] = metrics.all_metrics(p, g)

        csv_path = os.path.join(tmp, "scores.csv")
        run = subprocess.run([hfam_eval, pred_dir, gt_dir, "--csv", csv_path],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"hfam-eval failed ({run.returncode}): {run.stderr}")
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))

    expected["mean"] = {k: float(np.mean([e[k] for e in expected.values()])) for k in NAMES}
    got = {row["image"]: {k: float(row[k]) for k in NAMES} for row in rows}
    if rows[-1]["image"] != "mean" or sorted(got) != sorted(expected):
        sys.exit(f"hfam-eval scored {sorted(got)}, expected {sorted(expected)}")

    failures = 0
    for stem, want in expected.items():
        for k in NAMES:
            if not close(got[stem][k], want[k]):
                print(f"{stem} {k}: hfam-eval {got[stem][k]!r}, metrics.py {want[k]!r}")
                failures += 1
    worst = max(abs(got[s][k] - e[k]) / max(abs(e[k]), 1e-300)
                for s, e in expected.items() for k in NAMES if e[k] != 0)
    print(f"{len(expected) - 1} mattes, {len(SIZES)} sizes, {len(LAYOUTS)} layouts; "
          f"largest relative difference {worst:.2e}; {failures} disagreements")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

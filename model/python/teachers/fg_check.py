#!/usr/bin/env python3
"""Which foreground colour makes the better labels: RVM's own (label.py --fg teacher) or
blur-fusion's from the picture and RVM's alpha (--fg estimate), scored on composites whose
alpha and foreground colour are known.

    /usr/bin/python3 model/python/teachers/fg_check.py PHOTOS LABELS BACKGROUNDS OUT \
        [--variant s640] [--photos 40] [--per-photo 2] [--eval-sides 0,512] [--jobs 2] \
        [--seed 1]

As label_check.py (whose composites, pool and edge band this shares): `--variant` (label.py's
rule) labels a photo, alpha and foreground colour, with each truth's colour (`teacher`: RVM's;
`estimate`: blur-fusion's); the person is composited over a held-out background; the variant
labels the composite, and both colours are made from that label. What training does with a
label is to composite a F' over other backgrounds, so each label is scored by that: composited
over a second held-out background at each eval side (512: what training sees), against the
truth composited there. The alpha is the same for both colours, so what differs is the colour's
part. Scores (/1000, summed over pixels, the mean of the three channels): the composite's error,
split into the edge band and the rest, and the colour's error weighted by the truth's alpha.
Each truth favours its own colour: one that wins under both wins on its merits.
OUT/rows.csv: a row per composite, truth, colour and side; OUT/summary.md: the means, and on how
many composites `estimate` scores lower than, equal to and higher than `teacher`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fgest  # noqa: E402
import label  # noqa: E402
import label_check  # noqa: E402  (puts ../train on the path)
from label_check import at_side, cover, edge_band  # noqa: E402

COLOURS = ("teacher", "estimate")
SCALE = 1000.0


def colour_at_side(fg: np.ndarray, side: int) -> np.ndarray:
    """A foreground colour shrunk as label_check.at_side shrinks a matte, channel by channel."""
    return np.stack([at_side(fg[..., c], side) for c in range(3)], axis=-1)


def colour_of(kind: str, rgb: np.ndarray, alpha: np.ndarray, rvm_fg: np.ndarray) -> np.ndarray:
    """The label's colour: RVM's (`teacher`) or blur-fusion's from the picture and the alpha."""
    if kind == "teacher":
        return rvm_fg
    return fgest.estimate_foreground(rgb, alpha).astype(np.float64)


def fg_scores(alpha_truth: np.ndarray, fg_truth: np.ndarray, alpha: np.ndarray,
              fg: np.ndarray, bg: np.ndarray, band: np.ndarray) -> Dict[str, float]:
    """A label (alpha, fg) against the truth: both composited over `bg` (all H x W x 3 floats in
    [0, 1], alphas H x W); `band`: edge_band(alpha_truth)."""
    a, t = alpha[..., None], alpha_truth[..., None]
    err = np.abs((a * fg + (1 - a) * bg) - (t * fg_truth + (1 - t) * bg)).mean(axis=-1)
    colour = (alpha_truth * np.abs(fg - fg_truth).mean(axis=-1)).sum() / SCALE
    return {"comp": float(err.sum() / SCALE), "comp_band": float(err[band].sum() / SCALE),
            "comp_rest": float(err[~band].sum() / SCALE), "colour_err": float(colour)}


def summarise(rows: List[dict], truths: List[str], sides: List[int]) -> str:
    out = ["| truth's colour | eval side | label's colour | composite error | edge band | rest "
           "| colour error (alpha-weighted) | estimate lower, equal, higher than teacher |",
           "|---|---|---|---|---|---|---|---|"]
    for truth in truths:
        for side in sides:
            sel = [r for r in rows if r["truth"] == truth and r["side"] == side]
            by = {c: {r["composite"]: r for r in sel if r["colour"] == c} for c in COLOURS}
            for c in COLOURS:
                vs = list(by[c].values())
                if not vs:
                    continue
                mean = {k: float(np.mean([r[k] for r in vs]))
                        for k in ("comp", "comp_band", "comp_rest", "colour_err")}
                wins = ""
                if c == "estimate" and by["teacher"]:
                    wins = label_check.lower_equal_higher(np.array(
                        [r["comp"] - by["teacher"][k]["comp"] for k, r in by[c].items()]))
                out.append(f"| {truth} | {side or 'own'} | {c} | {mean['comp']:.3f} | "
                           f"{mean['comp_band']:.3f} | {mean['comp_rest']:.3f} | "
                           f"{mean['colour_err']:.3f} | {wins} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    label_check.add_common_arguments(ap)
    ap.add_argument("--variant", default="s640", help="label.py's rule (label_check's form)")
    args = ap.parse_args(argv)
    sides = [int(s) for s in args.eval_sides.split(",")]
    label_check.parts_of(args.variant)  # refuse a malformed variant before any work

    names, backgrounds, photo_files, rng = label_check.choose(
        args.labels, args.photos, args.backgrounds, args.n_photos, args.seed)
    if not names or len(backgrounds) < 2 * args.per_photo:
        raise SystemExit(f"{len(names)} photos and {len(backgrounds)} held-out backgrounds")

    setup = label_check.rvm_setup(args.cache, args.out)
    if not setup:
        return label.SKIP
    node_modules, model_dir = setup
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    rows: List[dict] = []
    t0 = time.time()
    load_bg = lambda b, w, h: np.asarray(  # noqa: E731
        cover(Image.open(os.path.join(args.backgrounds, b)).convert("RGB"), w, h),
        dtype=np.float64) / 255
    with tempfile.TemporaryDirectory(prefix="hfam-fg-check-") as tmp:
        pool = label_check.Pool(args.jobs, model_dir, node_modules, tmp)
        try:
            with ThreadPoolExecutor(args.jobs) as ex:
                for i, name in enumerate(names):
                    photo = label.load_rgb(photo_files[name])
                    h, w = photo.shape[:2]
                    alpha, rvm_fg = pool.mattes(ex, photo, [args.variant], name)[args.variant]
                    # each composite's background, then the one its labels are scored over
                    bgs = rng.choice(backgrounds, size=2 * args.per_photo, replace=False)
                    for truth in COLOURS:
                        fg = colour_of(truth, photo, alpha, rvm_fg)
                        a = alpha[..., None]
                        for k in range(args.per_photo):
                            bg = load_bg(bgs[2 * k], w, h)
                            comp = np.round(255 * (a * fg + (1 - a) * bg))
                            comp = comp.clip(0, 255).astype(np.uint8)
                            got_alpha, got_rvm = pool.mattes(
                                ex, comp, [args.variant], f"{name}.{truth}.{k}")[args.variant]
                            other = load_bg(bgs[2 * k + 1], w, h)
                            gots = {c: colour_of(c, comp, got_alpha, got_rvm) for c in COLOURS}
                            for side in sides:
                                # the truth and the label's alpha at this side, once for both
                                # colours
                                t_at, got_at = at_side(alpha, side), at_side(got_alpha, side)
                                fg_at = colour_at_side(fg, side)
                                other_at = colour_at_side(other, side)
                                band = edge_band(t_at)
                                for c in COLOURS:
                                    row = {"photo": name, "composite": f"{name}_bg{k}",
                                           "truth": truth, "colour": c, "side": side}
                                    row.update(fg_scores(t_at, fg_at, got_at,
                                                         colour_at_side(gots[c], side),
                                                         other_at, band))
                                    rows.append(row)
                    log(f"[{i + 1}/{len(names)}] {name} ({w}x{h}): "
                        f"{time.time() - t0:.0f} s")
        finally:
            pool.close()

    label_check.write_results(
        args.out, rows, f"{len(names)} photos x {args.per_photo} backgrounds per truth, variant "
        f"{args.variant}, seed {args.seed}; errors / 1000, means over composites",
        summarise(rows, list(COLOURS), sides))
    return 0


if __name__ == "__main__":
    sys.exit(main())

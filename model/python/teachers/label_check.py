#!/usr/bin/env python3
"""Which teacher labels are better: RVM at which downsample ratio, scored on composites whose
alpha is known.

    /usr/bin/python3 model/python/teachers/label_check.py PHOTOS LABELS BACKGROUNDS OUT \
        [--variants r0.375,s256,s512,s640] [--truths r0.375,s512] [--photos 40] \
        [--per-photo 2] [--eval-sides 0,512] [--jobs 2] [--baseline r0.375] [--seed 1]

No picture outside portrait-dev (which we never tune on) has a true alpha, so the truth is made:
a truth variant labels a photo (RVM's alpha and foreground colour), the person is composited over
background photos, and every variant mattes the composite, whose alpha is then known exactly.
The truth's edges are that variant's own, so each truth favours itself: a variant that wins
under every truth wins on its merits.

A variant is `rR` (downsample ratio R whatever the size: label.py's `--ratio R`; `r0.375` was
the rule before label_check chose `s640`), `sS` (the ratio that brings the photo's long side to
S pixels: S / long side, at most 1), or `A+B`, two of these combined at the edges: A's matte,
and B's within A's edge band (below), e.g. `s512+s768`: one working size for what is the
person, a finer one for its outline.

PHOTOS: people-train/images; LABELS: label.py's output (its accepted.txt picks the photos the
check passed); BACKGROUNDS: photos without people (the held-out ones of pack.py's split are
used). Each composite is scored at its own size (eval side 0) and shrunk to each other eval side
(512: pack.py's --long-side, what training sees): SAD, MSE, Grad (../train/metrics.py), and SAD
split into the edge band (within 8 px at 1024 of a pixel where 0.02 < truth < 0.98, or of the
truth's 0.5 contour) and the rest (whole objects wrongly kept or dropped).
OUT/rows.csv: a row per composite, truth, variant and eval side; OUT/summary.md: the means, and
on how many composites each variant's SAD is lower than, equal to and higher than --baseline's
(`r0.375`).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
import label  # noqa: E402
import metrics  # noqa: E402
from npm_cache import Unavailable, default_cache  # noqa: E402
from pack import held_out, shrink  # noqa: E402
from val_folder import cover  # noqa: E402

BAND_PX_AT_1024 = 8


def ratio_of(variant: str, height: int, width: int) -> float:
    """RVM's downsample ratio for `variant` on a height x width picture."""
    kind, value = variant[:1], variant[1:]
    try:
        if kind == "r":
            return label.rvm_ratio(height, width, ratio=float(value))
        if kind == "s":
            return label.rvm_ratio(height, width, side=int(value))
    except ValueError as e:
        raise ValueError(f"variant {variant!r}: {e}") from None
    raise ValueError(f"variant {variant!r}: want rR (0 < R <= 1) or sS (S >= 16 pixels)")


def parts_of(variant: str) -> List[str]:
    """The RVM runs a variant needs: itself, or A and B of `A+B`."""
    parts = variant.split("+")
    if len(parts) > 2:
        raise ValueError(f"variant {variant!r}: at most two parts, A+B")
    for part in parts:
        ratio_of(part, 1024, 768)
    return parts


def combine(outer: Tuple[np.ndarray, np.ndarray],
            edges: Tuple[np.ndarray, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """(alpha, foreground): `edges`' within the edge band of `outer`'s alpha, `outer`'s
    elsewhere."""
    band = edge_band(outer[0])
    return (np.where(band, edges[0], outer[0]),
            np.where(band[..., None], edges[1], outer[1]))


def at_side(a: np.ndarray, side: int) -> np.ndarray:
    """A matte shrunk to a long side of `side` (0: as it is), as pack.py shrinks pictures."""
    if side == 0 or max(a.shape) <= side:
        return a
    return np.asarray(shrink(Image.fromarray(a.astype(np.float32), "F"), side),
                      dtype=np.float64).clip(0, 1)


def edge_band(truth: np.ndarray) -> np.ndarray:
    """Pixels within BAND_PX_AT_1024 (scaled to the matte's long side) of a soft truth pixel or
    of the truth's 0.5 contour."""
    solid = truth > 0.5
    edge = (truth > 0.02) & (truth < 0.98)
    edge |= solid ^ ndimage.binary_erosion(solid, border_value=1)
    if not edge.any():
        return edge
    reach = max(1.0, BAND_PX_AT_1024 * max(truth.shape) / 1024)
    return ndimage.distance_transform_edt(~edge) <= reach


def score(pred: np.ndarray, truth: np.ndarray, band: np.ndarray) -> Dict[str, float]:
    """The errors of `pred`; `band`: edge_band(truth)."""
    err = np.abs(pred - truth)
    return {"sad": metrics.sad(pred, truth), "mse": metrics.mse(pred, truth),
            "grad": metrics.grad(pred, truth),
            "sad_band": float(err[band].sum() / metrics.SCALE),
            "sad_rest": float(err[~band].sum() / metrics.SCALE)}


class Pool:
    """RVM processes (teacher.js), each one thread, taken by whichever job is free."""

    def __init__(self, jobs: int, model_dir: str, node_modules: str, tmp: str):
        self.sets = label.TeacherSets(["rvm"], jobs, model_dir, node_modules)
        self.tmp = tmp

    def matte(self, rgb: np.ndarray, variant: str, key: str) -> Tuple[np.ndarray, np.ndarray]:
        """(alpha, foreground colour) of an RGB uint8 picture."""
        h, w = rgb.shape[:2]
        prefix = os.path.join(self.tmp, key)
        rgb.tofile(prefix + ".rgb")
        with self.sets.taken() as (_, teachers):
            teachers["rvm"].run(prefix + ".rgb", h, w, prefix, ratio_of(variant, h, w))
        alpha = np.fromfile(prefix + ".pha.f32", "<f4").reshape(h, w).astype(np.float64)
        fg = np.fromfile(prefix + ".fgr.f32", "<f4").reshape(h, w, 3).astype(np.float64)
        for ext in (".rgb", ".pha.f32", ".fgr.f32"):
            os.remove(prefix + ext)
        return alpha, fg

    def mattes(self, ex: ThreadPoolExecutor, rgb: np.ndarray, variants: List[str],
               key: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
        """Every variant's (alpha, foreground) of one picture, each RVM run once."""
        runs = sorted({p for v in variants for p in parts_of(v)})
        got = dict(zip(runs, ex.map(lambda r: self.matte(rgb, r, f"{key}.{r}"), runs)))
        return {v: got[v] if v in got else combine(*(got[p] for p in parts_of(v)))
                for v in variants}

    def close(self) -> None:
        self.sets.close()


def lower_equal_higher(diff: np.ndarray) -> str:
    """How many differences (one a composite) are below, at and above 0."""
    return f"{np.sum(diff < 0)}, {np.sum(diff == 0)}, {np.sum(diff > 0)} of {len(diff)}"


def summarise(rows: List[dict], variants: List[str], truths: List[str], sides: List[int],
              baseline: str) -> str:
    out = ["| truth | eval side | variant | SAD | MSE x 1e3 | Grad | SAD edge band | SAD rest "
           f"| lower, equal, higher SAD than {baseline} |",
           "|---|---|---|---|---|---|---|---|---|"]
    for truth in truths:
        for side in sides:
            sel = [r for r in rows if r["truth"] == truth and r["side"] == side]
            base = {r["composite"]: r["sad"] for r in sel if r["variant"] == baseline}
            for v in variants:
                vs = [r for r in sel if r["variant"] == v]
                if not vs:
                    continue
                mean = {k: float(np.mean([r[k] for r in vs]))
                        for k in ("sad", "mse", "grad", "sad_band", "sad_rest")}
                wins = ""
                if base and v != baseline:
                    wins = lower_equal_higher(np.array([r["sad"] - base[r["composite"]]
                                                        for r in vs]))
                out.append(f"| {truth} | {side or 'own'} | {v} | {mean['sad']:.3f} | "
                           f"{mean['mse'] * 1e3:.3f} | {mean['grad']:.3f} | "
                           f"{mean['sad_band']:.3f} | {mean['sad_rest']:.3f} | {wins} |")
    return "\n".join(out) + "\n"


def add_common_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments this and fg_check.py share: the folders, the photos and composites drawn,
    the eval sides, the RVM processes, the seed and the npm cache."""
    ap.add_argument("photos")
    ap.add_argument("labels")
    ap.add_argument("backgrounds")
    ap.add_argument("out")
    ap.add_argument("--photos", type=int, default=40, dest="n_photos",
                    help="accepted photos to use (a seeded choice)")
    ap.add_argument("--per-photo", type=int, default=2, help="composites per photo and truth")
    ap.add_argument("--eval-sides", default="0,512",
                    help="long sides to score at (0: the composite's own)")
    ap.add_argument("--jobs", type=int, default=2, help="RVM processes (one thread each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=None)


def choose(labels: str, photos: str, backgrounds: str, n_photos: int, seed: int):
    """(names, backgrounds, photo files, rng): a seeded choice of n_photos of the photos the
    check accepted, the held-out backgrounds, each photo's file by name, and the generator, which
    goes on to draw the backgrounds."""
    with open(os.path.join(labels, "accepted.txt")) as f:
        accepted = sorted(n.strip() for n in f if n.strip())
    rng = np.random.default_rng(seed)
    names = sorted(rng.choice(accepted, size=min(n_photos, len(accepted)), replace=False))
    held = sorted(f for f in os.listdir(backgrounds)
                  if f.lower().endswith(label.EXTS) and held_out(os.path.splitext(f)[0], 0.1))
    files = {os.path.splitext(os.path.basename(p))[0]: p for p in label.list_images([photos])}
    return names, held, files, rng


def rvm_setup(cache: str, out: str):
    """(node_modules, model_dir) for Pool, fetched into `cache` (None: the default), and the
    folder `out` made; None, said on stderr, without the network or a cache (skip)."""
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    cache = cache or default_cache()
    try:
        setup = label.node_env(cache, log), label.fetch_models(cache, log)
    except Unavailable as e:
        log(f"SKIP: {e}")
        return None
    os.makedirs(out, exist_ok=True)
    return setup


def write_results(out: str, rows: List[dict], heading: str, table: str) -> None:
    """OUT/rows.csv and OUT/summary.md (`heading`, then `table`), and the table on stdout."""
    with open(os.path.join(out, "rows.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(heading + "\n\n" + table)
    print(table, end="")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(ap)
    ap.add_argument("--variants", default="r0.375,s256,s512,s640")
    ap.add_argument("--truths", default="r0.375,s512")
    ap.add_argument("--baseline", default="r0.375",
                    help="the variant the others are counted against, composite by composite")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    truths = args.truths.split(",")
    if args.baseline not in variants:
        ap.error(f"--baseline {args.baseline} is not one of --variants")
    sides = [int(s) for s in args.eval_sides.split(",")]
    for v in set(variants + truths):
        parts_of(v)  # refuse a malformed variant before any work

    names, backgrounds, photo_files, rng = choose(args.labels, args.photos, args.backgrounds,
                                                  args.n_photos, args.seed)
    if not names or not backgrounds:
        raise SystemExit(f"{len(names)} photos and {len(backgrounds)} held-out backgrounds")

    setup = rvm_setup(args.cache, args.out)
    if not setup:
        return label.SKIP
    node_modules, model_dir = setup
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    rows: List[dict] = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="hfam-label-check-") as tmp:
        pool = Pool(args.jobs, model_dir, node_modules, tmp)
        try:
            with ThreadPoolExecutor(args.jobs) as ex:
                for i, name in enumerate(names):
                    photo = label.load_rgb(photo_files[name])
                    h, w = photo.shape[:2]
                    bgs = [Image.open(os.path.join(args.backgrounds, b)).convert("RGB")
                           for b in rng.choice(backgrounds, size=args.per_photo, replace=False)]
                    labelled = pool.mattes(ex, photo, truths, name)
                    for truth in truths:
                        alpha, fg = labelled[truth]
                        a = alpha[..., None]
                        for k, bg in enumerate(bgs):
                            bg_rgb = np.asarray(cover(bg, w, h), dtype=np.float64) / 255
                            comp = np.round(255 * (a * fg + (1 - a) * bg_rgb))
                            comp = comp.clip(0, 255).astype(np.uint8)
                            preds = pool.mattes(ex, comp, variants, f"{name}.{truth}.{k}")
                            for side in sides:
                                truth_at = at_side(alpha, side)
                                band = edge_band(truth_at)
                                for v in variants:
                                    row = {"photo": name, "composite": f"{name}_bg{k}",
                                           "truth": truth, "variant": v, "side": side}
                                    row.update(score(at_side(preds[v][0], side), truth_at, band))
                                    rows.append(row)
                    log(f"[{i + 1}/{len(names)}] {name} ({w}x{h}): "
                        f"{time.time() - t0:.0f} s")
        finally:
            pool.close()

    write_results(args.out, rows,
                  f"{len(names)} photos x {args.per_photo} backgrounds per truth, seed "
                  f"{args.seed}; SAD, Grad / 1000, means over composites",
                  summarise(rows, variants, truths, sides, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())

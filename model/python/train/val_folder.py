"""Builds a validation folder (VAL/image + VAL/alpha, the layout train.py's --val reads) from the
held-out part of the teacher labels: each held-out accepted photo as it is (its teacher alpha as the
ground truth), and composited over held-out backgrounds (I = a F + (1 - a) B with the teacher's
foreground colour). Held out means pack.held_out: a hash of the name, so this is the split that
pack.py keeps out of training. Deterministic: the backgrounds are chosen by a seeded generator.
With --two-people RATIOS it builds a two-person folder instead: each held-out person full height
on a 768x432 picture and the next held-out person beside it at each ratio of that height, both
standing on the bottom edge, over a held-out background (NAME_twoRR), the target covering
both: for judging what drops or half-mattes a smaller second person (the islands, training
with --p-zoom).

    /usr/bin/python3 model/python/train/val_folder.py PHOTOS LABELS BACKGROUNDS VAL \
        [--per-photo 3] [--val-fraction 0.1] [--long-side 1024] [--two-people 0.25,0.35,0.5]

PHOTOS: the labelled photos (../shared/data/people-train/images); LABELS: label.py's output (fg/,
alpha/, accepted.txt); BACKGROUNDS: a folder of photos without people
(../shared/data/backgrounds/images). Used to choose the refinement's parameters
(`hfam-eval --model M VAL/image VAL/alpha`); never point it at portrait-dev.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pack import find_image, held_out, shrink  # noqa: E402


def cover(background: Image.Image, width: int, height: int) -> Image.Image:
    """The background centre-cropped to the picture's aspect ratio and resized to its size."""
    scale = max(width / background.width, height / background.height)
    w, h = round(width / scale), round(height / scale)
    left, top = (background.width - w) // 2, (background.height - h) // 2
    return background.crop((left, top, left + w, top + h)).resize((width, height), Image.LANCZOS)


TWO_PEOPLE_SIZE = (768, 432)
MARGIN = 16  # px between a person and the picture's side


def load_label(labels: str, name: str, long_side: int):
    """The teacher foreground (PIL RGB) and alpha (float, H x W, 0..1) of a photo, shrunk to
    long_side, and the alpha's own size."""
    fg_im = shrink(Image.open(find_image(os.path.join(labels, "fg"), name)).convert("RGB"),
                   long_side)
    alpha_im = Image.open(os.path.join(labels, "alpha", name + ".png"))
    alpha = np.asarray(alpha_im, dtype=np.float64)
    alpha = alpha / (65535.0 if alpha.max() > 255 else 255.0)
    alpha = np.asarray(shrink(Image.fromarray(alpha.astype(np.float32), "F"), long_side),
                       dtype=np.float64).clip(0, 1)
    return fg_im, alpha, alpha_im.size


def stand(fg_im: Image.Image, alpha: np.ndarray, height: int, right: bool):
    """The person cut to its alpha's box, scaled to `height`, standing on the bottom edge of a
    TWO_PEOPLE_SIZE picture at its left or right side: (foreground, alpha) over the picture."""
    width, picture_h = TWO_PEOPLE_SIZE
    rows = np.nonzero(alpha.max(1) > 0.02)[0]
    cols = np.nonzero(alpha.max(0) > 0.02)[0]
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    scale = height / (box[3] - box[1])
    w = min(width - 2 * MARGIN, max(1, round((box[2] - box[0]) * scale)))
    fg = np.asarray(fg_im.crop(box).resize((w, height), Image.LANCZOS), dtype=np.float64) / 255
    a = np.asarray(Image.fromarray(alpha.astype(np.float32), "F").crop(box).resize(
        (w, height), Image.BILINEAR), dtype=np.float64).clip(0, 1)
    x = width - MARGIN - w if right else MARGIN
    out_fg = np.zeros((picture_h, width, 3))
    out_a = np.zeros((picture_h, width))
    out_fg[picture_h - height:, x:x + w] = fg
    out_a[picture_h - height:, x:x + w] = a
    return out_fg, out_a


def write_two_people(args, names, backgrounds, rng) -> int:
    """The --two-people folder; returns the number of pictures."""
    ratios = [float(r) for r in args.two_people.split(",")]
    if len(names) < 2 or not backgrounds or not all(0 < r <= 1 for r in ratios):
        raise SystemExit(f"--two-people {args.two_people}: needs two held-out photos, a "
                         f"held-out background and ratios in (0, 1]")
    width, height = TWO_PEOPLE_SIZE
    full = height - MARGIN
    people = [load_label(args.labels, name, args.long_side)[:2] for name in names]
    written = 0
    for i, name in enumerate(names):
        first = stand(*people[i], full, False)
        for ratio in ratios:
            second = stand(*people[(i + 1) % len(names)], max(1, round(ratio * full)), True)
            bg = cover(Image.open(os.path.join(args.backgrounds, rng.choice(backgrounds)))
                       .convert("RGB"), width, height)
            (f1, a1), (f2, a2) = first, second
            scene = a1[..., None] * f1 + (1 - a1[..., None]) * np.asarray(bg) / 255
            comp = a2[..., None] * f2 + (1 - a2[..., None]) * scene
            target = a2 + (1 - a2) * a1
            stem = f"{name}_two{round(ratio * 100):02d}"
            Image.fromarray(np.round(comp * 255).astype(np.uint8)).save(
                os.path.join(args.out, "image", stem + ".jpg"), quality=95)
            Image.fromarray(np.round(target * 255).astype(np.uint8), "L").save(
                os.path.join(args.out, "alpha", stem + ".png"))
            written += 1
    return written


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("photos", help="the labelled photos (people-train/images)")
    p.add_argument("labels")
    p.add_argument("backgrounds")
    p.add_argument("out")
    p.add_argument("--per-photo", type=int, default=3, help="composites per held-out photo")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--long-side", type=int, default=1024,
                   help="pictures larger than this are shrunk to it (as portrait-dev)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--two-people", metavar="RATIOS",
                   help="build the two-person folder instead, the second person at these "
                        "ratios of the first's height (comma-separated)")
    args = p.parse_args()

    with open(os.path.join(args.labels, "accepted.txt")) as f:
        names = sorted(n.strip() for n in f if n.strip() and held_out(n.strip(), args.val_fraction))
    backgrounds = sorted(f for f in os.listdir(args.backgrounds)
                         if f.lower().endswith((".jpg", ".jpeg", ".png"))
                         and held_out(os.path.splitext(f)[0], args.val_fraction))
    if not names or (args.per_photo and not backgrounds):
        raise SystemExit(f"{args.labels}: {len(names)} held-out photos, "
                         f"{len(backgrounds)} held-out backgrounds: nothing to build")
    for sub in ("image", "alpha"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.two_people:
        written = write_two_people(args, names, backgrounds, rng)
        print(f"{args.out}: {written} two-person pictures of {len(names)} held-out photos over "
              f"{len(backgrounds)} held-out backgrounds")
        return 0
    written = 0  # composites
    for name in names:
        fg_im, alpha, alpha_size = load_label(args.labels, name, args.long_side)
        alpha8 = Image.fromarray(np.round(alpha * 255).astype(np.uint8), "L")
        photo = ImageOps.exif_transpose(Image.open(find_image(args.photos, name))).convert("RGB")
        if photo.size != alpha_size:
            raise SystemExit(f"{name}: photo {photo.size} and alpha {alpha_size} differ")
        shrink(photo, args.long_side).save(os.path.join(args.out, "image", name + ".jpg"),
                                           quality=95)
        alpha8.save(os.path.join(args.out, "alpha", name + ".png"))
        fg = np.asarray(fg_im, dtype=np.float64) / 255
        a = alpha[..., None]
        for k, bg_name in enumerate(rng.choice(backgrounds, size=args.per_photo, replace=False)):
            bg = cover(Image.open(os.path.join(args.backgrounds, bg_name)).convert("RGB"),
                       fg_im.width, fg_im.height)
            comp = a * fg + (1 - a) * np.asarray(bg, dtype=np.float64) / 255
            stem = f"{name}_bg{k}"
            Image.fromarray(np.round(comp * 255).astype(np.uint8)).save(
                os.path.join(args.out, "image", stem + ".jpg"), quality=95)
            alpha8.save(os.path.join(args.out, "alpha", stem + ".png"))
            written += 1
    print(f"{args.out}: {len(names)} held-out photos and {written} composites of them over "
          f"{len(backgrounds)} held-out backgrounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())

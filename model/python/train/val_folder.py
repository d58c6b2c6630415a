"""Builds a validation folder (VAL/image + VAL/alpha, the layout train.py's --val reads) from the
held-out part of the teacher labels: each held-out accepted photo as it is (its teacher alpha as the
ground truth), and composited over held-out backgrounds (I = a F + (1 - a) B with the teacher's
foreground colour). Held out means pack.held_out: a hash of the name, so this is the split that
pack.py keeps out of training. Deterministic: the backgrounds are chosen by a seeded generator.

    /usr/bin/python3 model/python/train/val_folder.py PHOTOS LABELS BACKGROUNDS VAL \
        [--per-photo 3] [--val-fraction 0.1] [--long-side 1024]

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
    written = 0  # composites
    for name in names:
        fg_im = shrink(Image.open(find_image(os.path.join(args.labels, "fg"), name)).convert("RGB"),
                       args.long_side)
        alpha_im = Image.open(os.path.join(args.labels, "alpha", name + ".png"))
        alpha = np.asarray(alpha_im, dtype=np.float64)
        alpha = alpha / (65535.0 if alpha.max() > 255 else 255.0)
        alpha = np.asarray(shrink(Image.fromarray(alpha.astype(np.float32), "F"), args.long_side),
                           dtype=np.float64).clip(0, 1)
        alpha8 = Image.fromarray(np.round(alpha * 255).astype(np.uint8), "L")
        photo = ImageOps.exif_transpose(Image.open(find_image(args.photos, name))).convert("RGB")
        if photo.size != alpha_im.size:
            raise SystemExit(f"{name}: photo {photo.size} and alpha {alpha_im.size} differ")
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

"""A contact sheet of matting results, worst first: one row per picture with the picture, the
ground truth, the prediction and the absolute error (hot = wrong), from a folder of pictures and
ground truth (portrait-dev's layout) and the predictions `hfam-eval --save` wrote.

    /usr/bin/python3 model/python/train/dev_sheet.py DEV/comp PREDICTIONS SHEET.png [--rows 8]

The sheet carries the evaluation pictures: write it outside the repository (out/ is ignored).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

ROW_HEIGHT = 180


def fit(im: Image.Image) -> Image.Image:
    w = max(1, round(im.width * ROW_HEIGHT / im.height))
    return im.resize((w, ROW_HEIGHT), Image.BILINEAR)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pictures", help="folder of NAME.jpg pictures and NAME.png ground truth")
    p.add_argument("predictions", help="folder of NAME.png predicted mattes")
    p.add_argument("sheet", help="the PNG to write")
    p.add_argument("--rows", type=int, default=8)
    args = p.parse_args(argv)

    rows = []
    for f in sorted(os.listdir(args.predictions)):
        name, ext = os.path.splitext(f)
        truth = os.path.join(args.pictures, name + ".png")
        picture = os.path.join(args.pictures, name + ".jpg")
        if ext != ".png" or not os.path.exists(truth) or not os.path.exists(picture):
            continue
        gt = np.asarray(Image.open(truth).convert("L"), dtype=np.float64) / 255
        pred = np.asarray(Image.open(os.path.join(args.predictions, f)).convert("L"),
                          dtype=np.float64) / 255
        if gt.shape != pred.shape:
            raise SystemExit(f"{name}: prediction {pred.shape} and ground truth {gt.shape} differ")
        rows.append((np.abs(pred - gt).sum() / 1000, name, picture, gt, pred))
    if not rows:
        raise SystemExit(f"no prediction in {args.predictions} pairs with {args.pictures}")
    rows.sort(key=lambda r: -r[0])
    rows = rows[:args.rows]

    tiles = []
    for sad, name, picture, gt, pred in rows:
        err = np.abs(pred - gt)
        heat = np.stack([np.clip(err * 3, 0, 1), np.clip(err * 3 - 1, 0, 1),
                         np.clip(err * 3 - 2, 0, 1)], -1)
        row = [fit(Image.open(picture).convert("RGB")),
               fit(Image.fromarray((gt * 255).round().astype(np.uint8)).convert("RGB")),
               fit(Image.fromarray((pred * 255).round().astype(np.uint8)).convert("RGB")),
               fit(Image.fromarray((heat * 255).round().astype(np.uint8)))]
        tiles.append((f"{name}  SAD {sad:.2f}", row))
    width = max(sum(t.width for t in row) for _, row in tiles) + 5 * 4
    sheet = Image.new("RGB", (width, len(tiles) * (ROW_HEIGHT + 22)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for r, (label, row) in enumerate(tiles):
        y = r * (ROW_HEIGHT + 22)
        draw.text((4, y + 4), label + "   picture | ground truth | prediction | error",
                  fill=(230, 230, 230))
        x = 4
        for t in row:
            sheet.paste(t, (x, y + 20))
            x += t.width + 4
    sheet.save(args.sheet)
    print(f"{args.sheet}: {len(tiles)} rows, worst SAD {rows[0][0]:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Packs teacher-labelled photos, backgrounds and the ImageNet encoder into one small folder for
a GPU machine that cannot reach the network and takes at most 64 MiB per call (the workplace's
`device` tool): see README.md, "Training on a lent GPU".

    /usr/bin/python3 model/python/train/pack.py --labels LABELS --images IMAGES --bg BG \
        --encoder encoder.pt --out PACK [--long-side 512] [--val-fraction 0.1]

LABELS is the output of ../teachers/label.py (accepted photos in alpha/ and fg/), IMAGES the
photos it labelled (the originals, with their real backgrounds), BG a folder of backgrounds
(../teachers/backgrounds.py). PACK gets, at long side <= --long-side:
  image/NAME.jpg  the photo            fg/NAME.jpg  the teacher's foreground colour
  alpha/NAME.png  the teacher's alpha (8-bit)       bg/NAME.jpg  backgrounds
  encoder.pt      (with --encoder) the encoder, convolution weights as int8 per output channel
                  (+ fp32 scales; relative error ~0.5 %, an initialisation that training then
                  moves anyway), everything else fp32: it is 23.5 M parameters, 94 MB in fp32
  split.json      which photos and backgrounds are held out for validation (by a hash of the
                  name, so the split does not depend on the order or on the machine)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import torch
from PIL import Image


def held_out(name: str, fraction: float) -> bool:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "little") / 2 ** 32 < fraction


def shrink(im: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(im.size)
    if scale >= 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.LANCZOS)


def find_image(folder: str, stem: str) -> str:
    for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
        path = os.path.join(folder, stem + ext)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{folder}: no image named {stem}")


def quantise_encoder(path: str) -> dict:
    """4-D weights -> {"q": int8, "scale": fp32 per output channel}; the rest as is."""
    state = torch.load(path, map_location="cpu")
    state = state.get("state_dict", state)
    out = {}
    for name, t in state.items():
        if t.dim() == 4 and t.is_floating_point():
            scale = t.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
            q = torch.round(t / scale[:, None, None, None]).clamp(-127, 127).to(torch.int8)
            out[name] = {"q": q, "scale": scale.float()}
        else:
            out[name] = t
    return out


def dequantise_encoder(packed: dict) -> dict:
    return {name: (v["q"].float() * v["scale"][:, None, None, None]) if isinstance(v, dict) else v
            for name, v in packed.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--bg", required=True)
    p.add_argument("--encoder", help="the ImageNet encoder (leave out when the run starts "
                   "from a weight file: train_device.py --init)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of photos and fg")
    p.add_argument("--out", required=True)
    p.add_argument("--long-side", type=int, default=512)
    p.add_argument("--val-fraction", type=float, default=0.1)
    args = p.parse_args(argv)

    names = [line.split("\t")[0].strip()
             for line in open(os.path.join(args.labels, "accepted.txt")) if line.strip()]
    for sub in ("image", "fg", "alpha", "bg"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    for name in names:
        photo = shrink(Image.open(find_image(args.images, name)).convert("RGB"), args.long_side)
        fg = Image.open(os.path.join(args.labels, "fg", name + ".png")).convert("RGB")
        alpha = Image.open(os.path.join(args.labels, "alpha", name + ".png"))
        alpha = alpha.point(lambda v: v / 257).convert("L") if alpha.mode.startswith("I") \
            else alpha.convert("L")
        if fg.size != alpha.size:
            raise SystemExit(f"{name}: foreground {fg.size} and alpha {alpha.size} differ")
        photo.save(os.path.join(args.out, "image", name + ".jpg"), quality=args.quality)
        shrink(fg, args.long_side).save(os.path.join(args.out, "fg", name + ".jpg"),
                                        quality=args.quality)
        shrink(alpha, args.long_side).save(os.path.join(args.out, "alpha", name + ".png"),
                                           optimize=True)
    backgrounds = sorted(os.path.splitext(f)[0] for f in os.listdir(args.bg)
                         if f.lower().endswith((".jpg", ".jpeg", ".png")))
    for name in backgrounds:
        im = Image.open(find_image(args.bg, name)).convert("RGB")
        shrink(im, int(args.long_side * 1.25)).save(os.path.join(args.out, "bg", name + ".jpg"),
                                                    quality=88)
    if args.encoder:
        torch.save(quantise_encoder(args.encoder), os.path.join(args.out, "encoder.pt"))
    split = {
        "val_fraction": args.val_fraction,
        "val": sorted(n for n in names if held_out(n, args.val_fraction)),
        "val_backgrounds": sorted(n for n in backgrounds if held_out(n, args.val_fraction)),
        "teacher_manifest": os.path.join(args.labels, "manifest.json"),
    }
    with open(os.path.join(args.out, "split.json"), "w") as f:
        json.dump(split, f, indent=1)
    print(f"{args.out}: {len(names)} photos ({len(split['val'])} held out), "
          f"{len(backgrounds)} backgrounds ({len(split['val_backgrounds'])} held out)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

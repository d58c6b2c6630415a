"""Packs teacher-labelled photos, backgrounds and the ImageNet encoder into one small folder for
a GPU machine that cannot reach the network and takes at most 64 MiB per call (the workplace's
`device` tool): see README.md, "Training on a lent GPU".

    /usr/bin/python3 model/python/train/pack.py --labels LABELS --images IMAGES --bg BG [--bg BG2] \
        [--wallpapers WALLPAPERS] --encoder encoder.pt --out PACK [--long-side 512] \
        [--val-fraction 0.1] [--bg-part K/N]

LABELS is the output of ../teachers/label.py (accepted photos in alpha/ and fg/), IMAGES the
photos it labelled (the originals, with their real backgrounds), BG folders of backgrounds
(../teachers/backgrounds.py, ../shared/data/backgrounds/images). PACK gets, at long side <=
--long-side (backgrounds: --bg-long-side):
  image/NAME.jpg  the photo            fg/NAME.jpg  the teacher's foreground colour
  alpha/NAME.png  the teacher's alpha (8-bit)       bg/NAME.jpg  backgrounds
  encoder.pt      (with --encoder) the encoder, convolution weights as int8 per output channel
                  (+ fp32 scales; relative error ~0.5 %, an initialisation that training then
                  moves anyway), everything else fp32: it is 23.5 M parameters, 94 MB in fp32
  split.json      which photos and backgrounds are held out for validation (by a hash of the
                  name, so the split does not depend on the order or on the machine)

More backgrounds than one device call can carry (1435 photographs) travel in parts: --bg-part
K/N packs the training backgrounds of part K of N (a second hash of the name), so that runs
continued from one another (train_device.py --init) see them all; every part carries the same
--val-backgrounds held-out ones, so that their validation figures compare. --wallpapers names
the folder of desktop wallpapers (../teachers/backgrounds.py): they train as the other
backgrounds do, and every held-out one travels too, for a validation kind of its own
(split.json's val_wallpapers; train_device.py's "wallpaper" composites): DEV's composites are
over wallpapers, and the CPU sittings that gained on photographs lost there (README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from PIL import Image


def held_out(name: str, fraction: float) -> bool:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "little") / 2 ** 32 < fraction


def background_part(name: str, parts: int) -> int:
    """Which of `parts` parts a training background travels in: other bytes of the hash than
    held_out's, so that the parts are independent of the validation split."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[4:8], "little") % parts


def validation_rank(name: str) -> int:
    """The order in which --val-backgrounds picks held-out backgrounds: a third slice of the
    hash, so that the pick is a sample of every source, not the first names alphabetically
    (those are a few sources' prefixes)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[8:12], "little")


def parse_part(text: str):
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not K/N") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text}: K must be in 1..N")
    return k, n


def list_backgrounds(folders) -> dict:
    """{name: path} over every folder; a name in two folders is an error (the pack has one bg/)."""
    found = {}
    for folder in folders:
        for f in sorted(os.listdir(folder)):
            name, ext = os.path.splitext(f)
            if ext.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            if name in found:
                raise SystemExit(f"{os.path.join(folder, f)}: background {name} is also "
                                 f"{found[name]}")
            found[name] = os.path.join(folder, f)
    return found


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(top, f))
               for top, _, files in os.walk(folder) for f in files)


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
    import torch  # here: the rest of pack.py (and val_folder.py, label_check.py) needs no torch
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
    p.add_argument("--bg", required=True, action="append",
                   help="a folder of backgrounds; repeat it for several")
    p.add_argument("--wallpapers", metavar="BG",
                   help="a folder of desktop wallpapers, the kind of background DEV's "
                        "composites have: backgrounds as --bg's, except that every held-out "
                        "one travels, as a validation kind of their own (val_wallpapers)")
    p.add_argument("--encoder", help="the ImageNet encoder (leave out when the run starts "
                   "from a weight file: train_device.py --init)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of photos and fg")
    p.add_argument("--out", required=True)
    p.add_argument("--long-side", type=int, default=512)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--bg-long-side", type=int,
                   help="long side of the backgrounds (default: 1.25 x --long-side)")
    p.add_argument("--bg-quality", type=int, default=88, help="JPEG quality of the backgrounds")
    p.add_argument("--bg-part", type=parse_part, default=(1, 1), metavar="K/N",
                   help="pack part K of N of the training backgrounds (default 1/1: all)")
    p.add_argument("--val-backgrounds", type=int, default=0,
                   help="carry only N of the held-out backgrounds, picked by a hash of the "
                        "name, the same in every part (0: all)")
    args = p.parse_args(argv)
    bg_long_side = args.bg_long_side or int(args.long_side * 1.25)

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
    paths = list_backgrounds(args.bg + ([args.wallpapers] if args.wallpapers else []))
    wallpaper_dir = os.path.normpath(args.wallpapers) if args.wallpapers else None
    wallpapers = {n for n, path in paths.items()
                  if os.path.normpath(os.path.dirname(path)) == wallpaper_dir}
    val_backgrounds = sorted(n for n in paths
                             if held_out(n, args.val_fraction) and n not in wallpapers)
    if args.val_backgrounds:
        val_backgrounds = sorted(sorted(val_backgrounds, key=validation_rank)
                                 [:args.val_backgrounds])
    val_wallpapers = sorted(n for n in wallpapers if held_out(n, args.val_fraction))
    part, parts = args.bg_part
    train_backgrounds = [n for n in sorted(paths) if not held_out(n, args.val_fraction)
                         and background_part(n, parts) == part - 1]
    backgrounds = sorted(val_backgrounds + val_wallpapers + train_backgrounds)
    for name in backgrounds:
        im = Image.open(paths[name]).convert("RGB")
        shrink(im, bg_long_side).save(os.path.join(args.out, "bg", name + ".jpg"),
                                      quality=args.bg_quality)
    if args.encoder:
        import torch
        torch.save(quantise_encoder(args.encoder), os.path.join(args.out, "encoder.pt"))
    split = {
        "val_fraction": args.val_fraction,
        "val": sorted(n for n in names if held_out(n, args.val_fraction)),
        "val_backgrounds": val_backgrounds,
        "val_wallpapers": val_wallpapers,
        "bg_part": f"{part}/{parts}",
        "teacher_manifest": os.path.join(args.labels, "manifest.json"),
    }
    with open(os.path.join(args.out, "split.json"), "w") as f:
        json.dump(split, f, indent=1)
    print(f"{args.out}: {len(names)} photos ({len(split['val'])} held out), "
          f"{len(backgrounds)} backgrounds ({len(val_backgrounds)} held out and "
          f"{len(val_wallpapers)} held-out wallpapers, part {part}/{parts} of the others), "
          f"{folder_bytes(args.out) / 1e6:.1f} MB "
          f"(backgrounds {folder_bytes(os.path.join(args.out, 'bg')) / 1e6:.1f} MB)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

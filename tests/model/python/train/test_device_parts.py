"""The parts of model/python/train/train_device.py and pack.py that need no GPU, on the CPU:
- unfold_into: a folded weight file (with a calibrated file's activation ranges, as the default
  model has) loaded into the trainable network computes the file's network (eval mode,
  BatchNorms as the identity plus the folded bias);
- trimap: the convolution version agrees with data.make_trimap (distance transforms);
- pack.quantise_encoder / dequantise_encoder: within half a quantisation step;
- pack.py's backgrounds from two folders in parts: the parts split the training backgrounds
  without overlap or loss, each carries the same held-out ones, and a name in both folders fails;
  --val-backgrounds N carries N of the held-out ones, the same in every part, picked by the hash
  and not by the name.

Usage: test_device_parts.py WORKDIR
"""

import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "train"))
sys.path.insert(0, os.path.join(ROOT, "model", "python", "reference"))

import data  # noqa: E402
import hfam  # noqa: E402
import pack  # noqa: E402
import train_device  # noqa: E402
import weights  # noqa: E402


def check_unfold(workdir: str) -> None:
    config = hfam.tiny()
    rng = np.random.default_rng(7)
    x = torch.cat([hfam.preprocess(hfam.random_image(64, 64, rng), config, 64) for _ in range(2)])
    source = hfam.random_init(hfam.HFAM(config).double(), 7, x.double())
    path = os.path.join(workdir, "tiny-folded.safetensors")
    tensors = hfam.fold_batchnorm(source)
    tensors["encoder.conv1.act_max"] = torch.tensor([6.0])
    weights.write_safetensors(path, tensors, config.to_metadata(), "F32")
    folded = hfam.load_folded(path)
    model = hfam.HFAM(config)
    train_device.unfold_into(model, path)
    train_device.train_mode(model, frozen_batchnorm=True)  # BatchNorms stay in eval mode
    with torch.no_grad():
        want, got = folded(x), model(x)
    err = max(float((want[k] - got[k]).abs().max()) for k in ("semantic", "detail", "fused"))
    print(f"unfold: max abs difference to the folded network {err:.2e}")
    assert err < 1e-4, err


def check_trimap() -> None:
    rng = np.random.default_rng(3)
    alpha = np.clip(rng.uniform(-0.5, 1.5, (2, 1, 8, 8)), 0, 1)
    alpha = torch.nn.functional.interpolate(torch.from_numpy(alpha), size=(48, 48),
                                            mode="nearest").float()
    k = torch.tensor([10.0, 17.0])
    got = train_device.trimap(alpha, k)
    for i in range(2):
        want = data.make_trimap(alpha[i, 0].numpy(), float(k[i]))
        mismatches = int((got[i].numpy() != want).sum())
        print(f"trimap k={float(k[i])}: {mismatches} of {want.size} pixels differ")
        assert mismatches == 0


def check_quantise(workdir: str) -> None:
    w = torch.randn(16, 8, 3, 3)
    path = os.path.join(workdir, "enc.pt")
    torch.save({"encoder.conv1.weight": w, "encoder.bn1.weight": torch.ones(16)}, path)
    back = pack.dequantise_encoder(pack.quantise_encoder(path))
    step = w.abs().amax(dim=(1, 2, 3)) / 127
    err = ((back["encoder.conv1.weight"] - w).abs() / step[:, None, None, None]).max()
    print(f"int8 pack: max error {float(err):.3f} of a quantisation step")
    assert err <= 0.5 + 1e-4 and torch.equal(back["encoder.bn1.weight"], torch.ones(16))


def check_background_parts(workdir: str) -> None:
    root = os.path.join(workdir, "pack-parts")
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("labels/fg", "labels/alpha", "images", "bg1", "bg2"):
        os.makedirs(os.path.join(root, sub))
    Image.new("RGB", (40, 30), (200, 120, 90)).save(os.path.join(root, "images", "p.jpg"))
    Image.new("RGB", (40, 30), (200, 120, 90)).save(os.path.join(root, "labels/fg", "p.png"))
    Image.new("L", (40, 30), 255).save(os.path.join(root, "labels/alpha", "p.png"))
    with open(os.path.join(root, "labels", "accepted.txt"), "w") as f:
        f.write("p\n")
    for i in range(40):
        Image.new("RGB", (50, 40), (i, 100, 200)).save(
            os.path.join(root, "bg1" if i % 2 else "bg2", f"b{i}.jpg"))
    common = ["--labels", os.path.join(root, "labels"), "--images", os.path.join(root, "images"),
              "--bg", os.path.join(root, "bg1"), "--bg", os.path.join(root, "bg2"),
              "--val-fraction", "0.2", "--long-side", "32"]
    every, val = [], None
    for k in (1, 2, 3):
        out = os.path.join(root, f"pack{k}")
        pack.main(common + ["--bg-part", f"{k}/3", "--out", out])
        split = json.load(open(os.path.join(out, "split.json")))
        names = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(out, "bg")))
        assert val is None or split["val_backgrounds"] == val, "held-out backgrounds differ"
        val = split["val_backgrounds"]
        assert set(val) <= set(names) and val, val
        every += [n for n in names if n not in val]
        width = max(Image.open(os.path.join(out, "bg", n + ".jpg")).size[0] for n in names)
        assert width == 40, f"backgrounds at long side {width}, not 1.25 x 32"
    want = sorted(f"b{i}" for i in range(40) if f"b{i}" not in val)
    print(f"background parts: {len(every)} training backgrounds in 3 parts, {len(want)} wanted, "
          f"{len(val)} held out in each")
    assert sorted(every) == want
    picks = []
    for k in (1, 2):
        out = os.path.join(root, f"val-pick{k}")
        pack.main(common + ["--bg-part", f"{k}/2", "--val-backgrounds", "3", "--out", out])
        picks.append(json.load(open(os.path.join(out, "split.json")))["val_backgrounds"])
    want = sorted(sorted(val, key=pack.validation_rank)[:3])
    print(f"--val-backgrounds 3: {picks[0]} of {val}")
    assert picks[0] == picks[1] == want and want != sorted(val)[:3], (picks, want)
    # --wallpapers: bg1's held-out backgrounds a list of their own, all of them; the training
    # ones of both folders spread over the parts as before
    with_wallpapers = ["--wallpapers" if a == "--bg" and common[i + 1].endswith("bg1") else a
                       for i, a in enumerate(common)]
    bg1 = {f"b{i}" for i in range(1, 40, 2)}
    spread = []
    for k in (1, 2, 3):
        out = os.path.join(root, f"wallpapers{k}")
        pack.main(with_wallpapers + ["--bg-part", f"{k}/3", "--val-backgrounds", "2",
                                     "--out", out])
        names = {os.path.splitext(f)[0] for f in os.listdir(os.path.join(out, "bg"))}
        split = json.load(open(os.path.join(out, "split.json")))
        # all the held-out wallpapers, whatever --val-backgrounds picks of the others
        assert split["val_wallpapers"] == sorted(bg1 & set(val)), split
        assert split["val_backgrounds"] == sorted(sorted(set(val) - bg1,
                                                         key=pack.validation_rank)[:2]), split
        spread += sorted(names - set(val))
    print(f"--wallpapers: {len(bg1 & set(val))} held out, {len(spread)} training backgrounds "
          f"in 3 parts")
    assert sorted(spread) == sorted(every), spread
    Image.new("RGB", (50, 40)).save(os.path.join(root, "bg2", "b1.jpg"))
    try:
        pack.main(common + ["--out", os.path.join(root, "clash")])
    except SystemExit as e:
        assert "b1" in str(e), e
    else:
        raise AssertionError("a background name in two folders was accepted")


def main() -> int:
    workdir = sys.argv[1]
    os.makedirs(workdir, exist_ok=True)
    check_unfold(workdir)
    check_trimap()
    check_quantise(workdir)
    check_background_parts(workdir)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

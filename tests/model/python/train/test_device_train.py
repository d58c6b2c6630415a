"""model/python/train/train_device.py on the CPU (--device cpu), on a tiny pack of generated people:
- the sampler: one epoch gives every training person --per-fg samples, each over its own
  background;
- the augmentations: a seeded batch with them has the same alphas and trimaps as without; its
  blurs and exposure errors are augment.py's, applied to the unaugmented pictures as
  augment.draw chooses them from train.py's per-sample seeds (composites and real photos), to
  float rounding; noise and JPEG repeat from the seed; harmonisation changes the person only;
- a whole run of a few seconds from a folded tiny weight file (--init), with the default
  augmentations, validates the start (step 0) and writes its log, choice.json and weight
  file;
- --p-zoom: composites of whole people made small, standing where their photo cut them;
- with --freeze-encoder (the CPU fine-tune), the encoder's weights come out as they went in
  while the rest moves; with --freeze-encoder 3, the last stage moves too.

Usage: test_device_train.py WORKDIR
"""

import csv
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "model", "python", "train"))
sys.path.insert(0, os.path.join(ROOT, "model", "python", "reference"))

import augment  # noqa: E402
import data  # noqa: E402
import hfam  # noqa: E402
import make_data  # noqa: E402
import pack  # noqa: E402
import train_device  # noqa: E402
import weights  # noqa: E402

SIZE = 64
SEED = 5


def make_pack(root: str) -> str:
    """12 generated people (photo = the person over a generated scene), 10 backgrounds and 6
    wallpapers (one of them held out), packed by pack.py at long side 96."""
    rng = np.random.default_rng(0)
    for sub in ("labels/fg", "labels/alpha", "images", "bg", "wallpapers"):
        os.makedirs(os.path.join(root, sub))
    names = [f"person{i:02d}" for i in range(12)]
    for name in names:
        colour, alpha = make_data.foreground(rng, 96)
        scene = make_data.background(rng, 96, 96)
        photo = alpha[..., None] * colour + (1 - alpha[..., None]) * scene
        Image.fromarray(np.uint8(np.round(photo * 255))).save(
            os.path.join(root, "images", name + ".jpg"), quality=95)
        Image.fromarray(np.uint8(np.round(colour * 255))).save(
            os.path.join(root, "labels/fg", name + ".png"))
        Image.fromarray(np.uint8(np.round(alpha * 255))).save(
            os.path.join(root, "labels/alpha", name + ".png"))
    with open(os.path.join(root, "labels", "accepted.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    for i in range(10):
        Image.fromarray(np.uint8(np.round(make_data.background(rng, 80, 120) * 255))).save(
            os.path.join(root, "bg", f"scene{i:02d}.png"))
    held = [f"wall{i:02d}" for i in range(100) if pack.held_out(f"wall{i:02d}", 0.25)][:1]
    kept = [f"wall{i:02d}" for i in range(100) if not pack.held_out(f"wall{i:02d}", 0.25)][:5]
    for name in held + kept:
        Image.fromarray(np.uint8(np.round(make_data.background(rng, 90, 160) * 255))).save(
            os.path.join(root, "wallpapers", name + ".png"))
    out = os.path.join(root, "pack")
    pack.main(["--labels", os.path.join(root, "labels"), "--images", os.path.join(root, "images"),
               "--bg", os.path.join(root, "bg"), "--wallpapers", os.path.join(root, "wallpapers"),
               "--long-side", "96", "--val-fraction", "0.25", "--out", out])
    return out


def training_names(pack_dir: str):
    split = json.load(open(os.path.join(pack_dir, "split.json")))
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(pack_dir, "alpha")))
    bgs = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(pack_dir, "bg")))
    assert split["val"] and split["val_backgrounds"] and split["val_wallpapers"], split
    return ([n for n in names if n not in split["val"]],
            [b for b in bgs if b not in split["val_backgrounds"] + split["val_wallpapers"]])


def samples(pack_dir: str, augmentations, per_fg: int = 20) -> train_device.DeviceSamples:
    names, bgs = training_names(pack_dir)
    return train_device.DeviceSamples(pack_dir, names, bgs, "cpu", SEED, per_fg, augmentations)


def check_epoch(pack_dir: str) -> None:
    per_fg = 4
    s = samples(pack_dir, augment.OFF, per_fg)
    n_people, n_bg = len(s.alphas), len(s.bgs)
    keys = [s.next_key() for _ in range(n_people * per_fg)]
    assert s.next_key()[:2] == (1, 0), "the second epoch does not follow the first"
    for person in range(n_people):
        backgrounds = [b for epoch, _, p, b in keys if p == person]
        assert len(backgrounds) == per_fg, (person, backgrounds)
        assert len(set(backgrounds)) == per_fg, f"person {person}: repeated {backgrounds}"
    assert [position for _, position, _, _ in keys] == list(range(len(keys)))
    print(f"epoch: {n_people} people x {per_fg} samples, each over {per_fg} different of "
          f"{n_bg} backgrounds")


def check_augmented_batch(pack_dir: str) -> None:
    """The blurs and the exposure error: augment.py's, drawn as train.py draws them (to float
    rounding: a direct convolution here, FFT there). Noise and JPEG (compared with augment.py's
    in test_augment_device.py): the targets unchanged, the same batch from the same seed."""
    p = augment.Probabilities(harmonise=0, defocus=1, motion_blur=1, exposure=1, noise=0, jpeg=0)
    n = 6
    for p_real in (0.0, 1.0):
        plain, alpha, tri, _ = samples(pack_dir, augment.OFF).batch(n, SIZE, p_real)
        image, alpha_aug, tri_aug, epoch = samples(pack_dir, p).batch(n, SIZE, p_real)
        assert epoch == 0
        assert torch.equal(alpha, alpha_aug) and torch.equal(tri, tri_aug), "targets changed"
        worst = 0.0
        for position in range(n):
            rng = data.augmentation_rng(SEED, 0, position)
            d = augment.draw(rng, p, SIZE / 512, composited=not p_real)
            want = augment.apply(plain[position].permute(1, 2, 0).numpy(), d, rng)
            got = image[position].permute(1, 2, 0).numpy()
            assert np.abs(got - plain[position].permute(1, 2, 0).numpy()).mean() > 1e-3
            worst = max(worst, float(np.abs(got - want).max()))
        kind = "real photos" if p_real else "composites"
        print(f"augmented {kind}: largest difference to augment.apply on the plain batch "
              f"{worst:.1e}")
        assert worst < 1e-5, worst

    noisy = p._replace(noise=1, jpeg=1)
    plain, alpha, tri, _ = samples(pack_dir, augment.OFF).batch(n, SIZE, 0.3)
    image, alpha_aug, tri_aug, _ = samples(pack_dir, noisy).batch(n, SIZE, 0.3)
    again = samples(pack_dir, noisy).batch(n, SIZE, 0.3)[0]
    assert torch.equal(alpha, alpha_aug) and torch.equal(tri, tri_aug), "targets changed"
    assert torch.equal(image, again), "the same seed gave another noisy batch"
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    change = (image - plain).abs().mean((1, 2, 3))
    print(f"noise and JPEG: mean change per picture {float(change.min()):.3f}.."
          f"{float(change.max()):.3f}, the same from the same seed")
    assert float(change.min()) > 1e-3

    harmonised, alpha, _, _ = samples(pack_dir, augment.OFF._replace(harmonise=1)).batch(
        n, SIZE, 0.0)
    plain = samples(pack_dir, augment.OFF).batch(n, SIZE, 0.0)[0]
    change = (harmonised - plain).abs().amax(dim=1, keepdim=True)
    clear, person = alpha == 0, alpha > 0.5
    print(f"harmonised: largest change where alpha = 0 {float(change[clear].max()):.1e}, "
          f"mean change over the person {float(change[person].mean()):.3f}")
    assert float(change[clear].max()) < 1e-6 and float(change[person].mean()) > 0.01


def check_zoom(pack_dir: str) -> None:
    """--p-zoom: each composite shows its person whole and small, standing on the bottom edge
    as the generated people (cut by their photo's bottom edge) do, its alpha within the small
    photo placed, and the background whole."""
    n = 8
    s = samples(pack_dir, augment.OFF)
    for _ in range(n):
        _, fg, a, bg, target = s.crops(SIZE, 0.0, 0.0, 1.0)
        assert torch.equal(a, target), "the target is not the zoomed alpha"
        placed = fg.amax(0) > 0  # the small photo's rectangle
        assert not bool((a[0] > 0)[~placed].any()), "alpha outside the placed photo"
        assert float((a[0] > 0).float().mean()) < 0.6, "the person fills the picture"
        assert bg is not None and float(bg.std()) > 0.01, "no background"
    s = samples(pack_dir, augment.OFF)
    image, alpha, _, _ = s.batch(n, SIZE, 0.0, 0.0, 1.0)
    plain_alpha = samples(pack_dir, augment.OFF).batch(n, SIZE, 0.0)[1]
    for position in range(n):
        a = alpha[position, 0]
        rows = torch.nonzero(a.amax(1) > 0)[:, 0]
        cols = torch.nonzero(a.amax(0) > 0)[:, 0]
        height, width = int(rows[-1] - rows[0]) + 1, int(cols[-1] - cols[0]) + 1
        assert max(height, width) <= math.ceil(0.75 * SIZE) + 1, (position, height, width)
        assert int(rows[-1]) == SIZE - 1, f"sample {position} does not stand on the bottom edge"
        assert float(a.sum()) < 0.6 * float(plain_alpha[position, 0].sum()), position
    print(f"zoomed out: {n} people of long side at most {math.ceil(0.75 * SIZE) + 1} px of "
          f"{SIZE}, each on the bottom edge, with less alpha than the plain crops")


def tiny_init(workdir: str) -> str:
    """A folded tiny weight file with random weights."""
    config = hfam.tiny()
    rng = np.random.default_rng(7)
    x = torch.cat([hfam.preprocess(hfam.random_image(64, 64, rng), config, 64) for _ in range(2)])
    init = os.path.join(workdir, "tiny-folded.safetensors")
    source = hfam.random_init(hfam.HFAM(config).double(), 7, x.double())
    weights.write_safetensors(init, hfam.fold_batchnorm(source), config.to_metadata(), "F32")
    return init


def check_run(pack_dir: str, workdir: str) -> None:
    init = tiny_init(workdir)
    out = os.path.join(workdir, "run")
    train_device.main(["--pack", pack_dir, "--out", out, "--seconds", "3", "--init", init,
                       "--device", "cpu", "--size", str(SIZE), "--batch", "4", "--sizes", "64",
                       "--val-every", "1000"])
    rows = list(csv.DictReader(open(os.path.join(out, "train.csv"))))
    validations = list(csv.DictReader(open(os.path.join(out, "val.csv"))))
    choice = json.load(open(os.path.join(out, "choice.json")))
    print(f"run: {len(rows)} steps in 3 s, last loss {rows[-1]['loss']}, augmentations "
          f"{choice['augmentations']}")
    assert len(rows) >= 2 and all(math.isfinite(float(r["loss"])) for r in rows)
    assert validations[0]["step"] == "0", validations
    assert choice["augmentations"] == augment.Probabilities()._asdict()
    assert os.path.getsize(os.path.join(out, "model.safetensors")) > 0
    # the held-out wallpapers are a kind of their own, and count in the choice
    chosen = choice["chosen"]
    print(f"validation kinds: {sorted(k for k in validations[0] if k.endswith('_sad'))}")
    assert {"real_sad", "composite_sad", "wallpaper_sad"} <= set(validations[0]), validations
    assert math.isclose(chosen["score"], chosen["real_sad"] + chosen["composite_sad"]
                        + chosen["wallpaper_sad"]), chosen


def check_frozen_encoder(pack_dir: str, workdir: str, stages: int) -> None:
    init = tiny_init(workdir)
    out = os.path.join(workdir, f"frozen{stages}")
    # a learning rate large enough that every trained tensor moves beyond fp16's rounding
    train_device.main(["--pack", pack_dir, "--out", out, "--seconds", "2", "--init", init,
                       "--freeze-encoder", str(stages), "--lr", "1", "--device", "cpu",
                       "--size", str(SIZE), "--batch", "4", "--sizes", "64",
                       "--val-every", "1000"])
    before = weights.read_safetensors(init)[0]
    after = weights.read_safetensors(os.path.join(out, "model.safetensors"))[0]

    def change(name: str) -> float:
        start = before[name].astype(np.float16).astype(np.float64)  # the export is fp16
        return float(np.abs(after[name].astype(np.float64) - start).max()
                     / max(np.abs(start).max(), 1e-6))

    trained = tuple(f"encoder.layer{i}." for i in range(stages + 1, 5))
    encoder = [n for n in before if n.startswith("encoder.") and not n.startswith(trained)]
    rest = [n for n in before if n not in encoder and n.endswith(".weight")]
    frozen = max(change(n) for n in encoder)
    moved = sum(change(n) > 1e-2 for n in rest)
    print(f"encoder frozen to stage {stages}: {len(encoder)} tensors, largest relative change "
          f"{frozen:.1e}; {moved} of the other {len(rest)} weights moved by more than 1 %")
    # folding the identity BatchNorms back may flip an fp16 rounding: at most one unit in the
    # last place, 2^-10 of a value
    assert frozen <= 2.0 ** -10, frozen
    assert moved > len(rest) // 2, (moved, len(rest))
    unfrozen = [n for n in rest if n.startswith(trained)]
    assert (stages == 4) == (not unfrozen), (stages, unfrozen)
    assert not unfrozen or sum(change(n) > 1e-2 for n in unfrozen) > len(unfrozen) // 2, \
        "the stages after the frozen ones did not move"


def main() -> int:
    workdir = sys.argv[1]
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    torch.set_num_threads(1)
    pack_dir = make_pack(os.path.join(workdir, "data"))
    check_epoch(pack_dir)
    check_augmented_batch(pack_dir)
    check_zoom(pack_dir)
    check_run(pack_dir, workdir)
    check_frozen_encoder(pack_dir, workdir, 4)
    check_frozen_encoder(pack_dir, workdir, 3)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

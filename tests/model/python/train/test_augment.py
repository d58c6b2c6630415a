"""augment.py on tiny pictures: every augmentation keeps the shape, float32 and [0, 1], changes
the picture, repeats itself exactly from the same seed; and a CompositeDataset sample keeps its
alpha and trimap whatever the augmentations, while they change its image.
    test_augment.py WORKDIR"""
import os
import shutil
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "model", "python", "train"))
import augment  # noqa: E402
import data  # noqa: E402

failures = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def picture(seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    """Edges and texture, so that blurs and compression have something to change."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    image = 0.5 + 0.3 * np.sin(x / 3.0 + seed)[..., None] * rng.uniform(0.5, 1, 3)
    image[(x // 8 + y // 8) % 2 == 0] *= 0.6
    return np.clip(image, 0, 1).astype(np.float32)


def person(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.clip((10 - np.hypot(x - w / 2, y - h / 2)) / 3, 0, 1).astype(np.float32)


AUGMENTATIONS = {
    "defocus": lambda im, rng: augment.defocus(im, rng),
    "motion_blur": lambda im, rng: augment.motion_blur(im, rng),
    "exposure": lambda im, rng: augment.exposure(im, rng),
    "noise": lambda im, rng: augment.noise(im, rng),
    "jpeg": lambda im, rng: augment.jpeg(im, rng),
    "harmonise": lambda im, rng: augment.harmonise(im, person(), picture(7)[::-1] * 0.5, rng),
}


def unit_checks() -> None:
    image = picture(1)
    for name, fn in AUGMENTATIONS.items():
        before = image.copy()
        out = fn(image, np.random.default_rng(5))
        again = fn(image, np.random.default_rng(5))
        other = fn(image, np.random.default_rng(6))
        check(out.shape == image.shape and out.dtype == np.float32, f"{name}: shape and float32")
        check(float(out.min()) >= 0 and float(out.max()) <= 1, f"{name}: values in [0, 1]")
        check(np.array_equal(image, before), f"{name}: the input is not modified")
        check(np.array_equal(out, again), f"{name}: the same seed gives the same picture")
        check(not np.array_equal(out, other), f"{name}: another seed, another picture")
        check(float(np.abs(out - image).mean()) > 1e-3,
              f"{name}: changes the picture (mean |diff| {float(np.abs(out - image).mean()):.4f})")

    # Blurs keep a flat picture flat (normalised kernels, reflected border: no dark frame).
    flat = np.full((16, 16, 3), 0.4, dtype=np.float32)
    for name in ("defocus", "motion_blur"):
        out = AUGMENTATIONS[name](flat, np.random.default_rng(0))
        check(float(np.abs(out - 0.4).max()) < 1e-5, f"{name}: a flat picture stays flat")

    # Harmonisation moves the person's mean colour towards the background's.
    fg, alpha = picture(2), person()
    bg = np.zeros_like(fg)
    bg[...] = (0.1, 0.2, 0.9)
    out = augment.harmonise(fg, alpha, bg, np.random.default_rng(0))
    w = alpha[..., None]
    before = (w * fg).sum((0, 1)) / w.sum()
    after = (w * out).sum((0, 1)) / w.sum()
    target = np.array([0.1, 0.2, 0.9])
    check(bool((np.abs(after - target) < np.abs(before - target)).all()),
          "harmonise: the person's mean colour moves towards the background's")

    p_all = augment.Probabilities(*([1.0] * len(augment.Probabilities._fields)))
    off = augment.degrade(image, np.random.default_rng(3), augment.OFF)
    check(np.array_equal(off, image), "degrade with every probability 0 returns the picture")
    on = augment.degrade(image, np.random.default_rng(3), p_all)
    check(np.array_equal(on, augment.degrade(image, np.random.default_rng(3), p_all)) and
          float(np.abs(on - image).mean()) > 1e-3,
          "degrade with every probability 1 changes the picture, the same for the same seed")


def dataset_checks(work: str) -> None:
    """Samples of a generated foreground over generated backgrounds, with and without
    augmentations: the same alpha and trimap, another image."""
    os.makedirs(os.path.join(work, "fg"))
    os.makedirs(os.path.join(work, "bg"))
    os.makedirs(os.path.join(work, "bg2"))
    rgba = np.dstack([picture(3, 96, 96), person(96, 96) * 3]).clip(0, 1)
    Image.fromarray(np.round(rgba * 255).astype(np.uint8), "RGBA").save(
        os.path.join(work, "fg", "a.png"))
    for i in range(3):
        Image.fromarray(np.round(picture(10 + i, 96, 96) * 255).astype(np.uint8)).save(
            os.path.join(work, "bg" if i < 2 else "bg2", f"b{i}.jpg"))
    folders = [os.path.join(work, "bg"), os.path.join(work, "bg2")]
    p_all = augment.Probabilities(*([1.0] * len(augment.Probabilities._fields)))
    plain = data.CompositeDataset(os.path.join(work, "fg"), folders, 64, per_fg=3, seed=4)
    augmented = data.CompositeDataset(os.path.join(work, "fg"), folders, 64, per_fg=3, seed=4,
                                      augmentations=p_all)
    check(len(plain.backgrounds) == 3, "backgrounds come from every --bg folder")
    held = data.CompositeDataset(os.path.join(work, "fg"), folders, 64, per_fg=3, seed=4,
                                 held_out=lambda name: name == "b1")
    check([os.path.basename(b) for b in held.backgrounds] == ["b0.jpg", "b2.jpg"],
          "held-out backgrounds are left out")
    for key in plain.epoch_keys(0):
        a, b = plain[key], augmented[key]
        check(bool((a["alpha"] == b["alpha"]).all()) and bool((a["trimap"] == b["trimap"]).all()),
              f"sample {key}: augmentations leave alpha and trimap alone")
        check(float((a["image"] - b["image"]).abs().mean()) > 1e-3 and
              float(b["image"].min()) >= 0 and float(b["image"].max()) <= 1,
              f"sample {key}: augmentations change the image, kept in [0, 1]")
        check(bool((augmented[key]["image"] == b["image"]).all()),
              f"sample {key}: the same key gives the same augmented image")


def main() -> int:
    work = sys.argv[1]
    shutil.rmtree(work, ignore_errors=True)
    unit_checks()
    dataset_checks(work)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

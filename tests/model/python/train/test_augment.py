"""augment.py on tiny pictures: every augmentation keeps the shape, float32 and [0, 1], changes
the picture, repeats itself exactly from the same seed; and a CompositeDataset sample keeps its
alpha and trimap whatever the augmentations, while they change its image.
augment_device.py (the GPU trainer's, run here on the CPU) against augment.py: the blurs,
exposure error, harmonisation and composite to float rounding for the same draw; JPEG's steps
against hand-computed values, and the whole round trip less than a level from PIL's on average
and far nearer to it than to the picture; the noise field with the standard deviation
augment.py gives it, repeating from the generator's seed.
    test_augment.py WORKDIR"""
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "model", "python", "train"))
import augment  # noqa: E402
import augment_device  # noqa: E402
import data  # noqa: E402

failures = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def picture(seed: int, h: int = 24, w: int = 32, grain: float = 0.0) -> np.ndarray:
    """Edges and texture, so that blurs and compression have something to change."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    image = 0.5 + 0.3 * np.sin(x / 3.0 + seed)[..., None] * rng.uniform(0.5, 1, 3)
    image[(x // 8 + y // 8) % 2 == 0] *= 0.6
    image += rng.normal(0, grain, image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def person(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.clip((10 - np.hypot(x - w / 2, y - h / 2)) / 3, 0, 1).astype(np.float32)


# Each augmentation with the parameters augment.draw chooses when it alone runs.
ALONE = {name: augment.OFF._replace(**{name: 1.0}) for name in augment.Probabilities._fields}


def degradation(name: str):
    return lambda im, rng: augment.apply(im, augment.draw(rng, ALONE[name]), rng)


AUGMENTATIONS = {name: degradation(name)
                 for name in ("defocus", "motion_blur", "exposure", "noise", "jpeg")}
AUGMENTATIONS["harmonise"] = lambda im, rng: augment.harmonise(
    im, person(), picture(7)[::-1] * 0.5, augment.draw(rng, ALONE["harmonise"]).harmonise)


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
    out = augment.harmonise(fg, alpha, bg, 0.4)
    w = alpha[..., None]
    before = (w * fg).sum((0, 1)) / w.sum()
    after = (w * out).sum((0, 1)) / w.sum()
    target = np.array([0.1, 0.2, 0.9])
    check(bool((np.abs(after - target) < np.abs(before - target)).all()),
          "harmonise: the person's mean colour moves towards the background's")

    p_all = augment.Probabilities(*([1.0] * len(augment.Probabilities._fields)))

    def degrade(p, seed):  # a real photo's: every degradation drawn, no harmonisation
        rng = np.random.default_rng(seed)
        return augment.apply(image, augment.draw(rng, p, composited=False), rng)

    check(augment.draw(np.random.default_rng(3), p_all, composited=False).harmonise is None,
          "a real photo is not harmonised")
    check(np.array_equal(degrade(augment.OFF, 3), image),
          "degrading with every probability 0 returns the picture")
    on = degrade(p_all, 3)
    check(np.array_equal(on, degrade(p_all, 3)) and float(np.abs(on - image).mean()) > 1e-3,
          "degrading with every probability 1 changes the picture, the same for the same seed")


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


def chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


def jpeg_checks() -> None:
    # by hand: libjpeg's triangle upsampling of one chroma row 0, 64 (3/4 of the nearer sample,
    # 1/4 of the farther, edges repeated) and an 8 x 8 block through the DCT and back
    row = augment_device._upsample_chroma(torch.tensor([[[0.0, 64.0]]]))
    check(row.tolist() == [[[0, 16, 48, 64]] * 2], f"jpeg: chroma upsampling {row.tolist()}")
    block = torch.arange(64, dtype=torch.float32).view(1, 8, 8) * 3
    c = augment_device.dct_matrix("cpu")
    luma, chroma = augment_device.LUMA_TABLE, augment_device.CHROMA_TABLE
    ones = augment_device._code_plane(block, torch.ones(1, 8, 8), c)
    flat = augment_device._code_plane(torch.full((1, 8, 8), 100.0),
                                      augment_device.quant_table(luma, 50)[None], c)
    check(torch.equal(ones, block) and torch.equal(flat, torch.full((1, 8, 8), 100.0)),
          "jpeg: a block through the DCT and back with unit steps, a flat block at quality 50")
    check(augment_device.quant_table(luma, 50).flatten()[:3].tolist() == [16, 11, 10]
          and augment_device.quant_table(luma, 90)[0, 0] == 3
          and augment_device.quant_table(chroma, 10)[7, 7] == 255,
          "jpeg: the IJG tables scaled by quality as libjpeg does (16, 11, 10; 3 at 90; 255 at 10)")
    for h, w in ((64, 64), (48, 80), (37, 53)):  # whole MCUs, whole blocks only, neither
        for quality in (30, 60, 90):
            image = picture(quality + h, h, w, grain=0.03)
            pil = augment.jpeg(image, quality)
            ours = hwc(augment_device.jpeg(chw(image)[None], [quality])[0])
            diff = np.abs(ours - pil) * 255
            effect = float(np.abs(pil - image).mean()) * 255
            check(float(diff.mean()) < 1.0 and float(diff.mean()) < 0.15 * effect
                  and float(diff.max()) <= 16,
                  f"jpeg {h}x{w} q{quality}: |ours - PIL| mean {diff.mean():.2f}, max "
                  f"{diff.max():.0f} levels; PIL's own change {effect:.2f}")
    batch = np.stack([picture(1, 32, 32), picture(2, 32, 32)])
    both = augment_device.jpeg(torch.from_numpy(batch).permute(0, 3, 1, 2), [35, 85])
    alone = [augment_device.jpeg(chw(batch[i])[None], [q])[0] for i, q in enumerate((35, 85))]
    check(torch.equal(both[0], alone[0]) and torch.equal(both[1], alone[1]),
          "jpeg: each picture of a batch at its own quality, as alone")


def same_draw_checks() -> None:
    h, w = 40, 56
    fg, bg, a = picture(3, h, w), picture(4, h, w)[::-1] * 0.7, person(h, w)
    draws = [augment.Draw(harmonise=0.45, defocus=2.3, motion_blur=(9.5, 0.7),
                          exposure=(1.2, 0.9, 0.8)),
             augment.Draw(defocus=1.1),
             augment.Draw(motion_blur=(4.0, 2.9), exposure=(0.7, 0.7, 0.75))]
    generator = torch.Generator().manual_seed(0)
    for real in (False, True):
        backgrounds = [None if real else chw(bg.copy())] * len(draws)
        got = augment_device.pictures([chw(fg)] * len(draws), [chw(a[..., None])] * len(draws),
                                      backgrounds, draws, generator)
        for i, d in enumerate(draws):
            image = fg
            if not real:
                f = fg if d.harmonise is None else augment.harmonise(fg, a, bg, d.harmonise)
                image = (a[..., None] * f + (1 - a[..., None]) * bg).astype(np.float32)
            want = augment.apply(image, d, np.random.default_rng(0))
            worst = float(np.abs(hwc(got[i]) - want).max())
            check(worst < 1e-5, f"{'real photo' if real else 'composite'}, draw {i}: largest "
                                f"difference to augment.py {worst:.1e}")
    empty = augment_device.harmonise(chw(fg), torch.zeros(1, h, w), chw(bg.copy()), 0.5)
    check(torch.equal(empty, chw(fg)), "harmonise: a picture without a person is left alone")


def noise_checks() -> None:
    flat = torch.full((2, 3, 96, 96), 0.5)
    draws = [augment.Draw(noise=(0.01, 0.02)), augment.Draw(noise=(0.02, 0.0))]

    def noisy(seed):
        return augment_device.pictures(list(flat), [torch.ones(1, 96, 96)] * 2, [None, None],
                                       draws, torch.Generator().manual_seed(seed))

    out = noisy(5)
    for i, d in enumerate(draws):
        read, shot = d.noise
        want = np.sqrt(read ** 2 + shot ** 2 * 0.5)
        residual = out[i] - 0.5
        std = float(residual.std())
        check(abs(std / want - 1) < 0.05 and abs(float(residual.mean())) < 0.1 * want,
              f"noise {i}: standard deviation {std:.5f} against {want:.5f}")
    check(torch.equal(out, noisy(5)) and not torch.equal(out, noisy(6)),
          "noise: the same field from the same seed, another from another")


def main() -> int:
    work = sys.argv[1]
    shutil.rmtree(work, ignore_errors=True)
    unit_checks()
    dataset_checks(work)
    jpeg_checks()
    same_draw_checks()
    noise_checks()
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

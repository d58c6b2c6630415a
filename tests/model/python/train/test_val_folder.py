"""val_folder.py on a generated label folder: only held-out, accepted photos come in; each as
itself (the photo with EXIF orientation applied, its teacher alpha) and composited over held-out
backgrounds with I = a F + (1 - a) B; the same seed gives the same files; --two-people puts a
second person beside the first at the height asked for.
    test_val_folder.py WORKDIR"""
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..", "..")
TOOL = os.path.join(ROOT, "model", "python", "train", "val_folder.py")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "train"))
from pack import held_out  # noqa: E402


def names(n, want_held_out, prefix="x", fraction=0.1):
    """The first n names PREFIX<i> that are (or are not) held out."""
    found, i = [], 0
    while len(found) < n:
        if held_out(f"{prefix}{i}", fraction) == want_held_out:
            found.append(f"{prefix}{i}")
        i += 1
    return found


def smooth(rng, h, w):
    """A smooth RGB picture (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w]
    base = rng.uniform(40, 200, 3)
    return np.clip(base + 30 * np.sin(x / w * 3 + y / h * 2)[..., None] * rng.uniform(-1, 1, 3),
                   0, 255).astype(np.uint8)


def main():
    work = sys.argv[1]
    shutil.rmtree(work, ignore_errors=True)
    photos, labels, bgs = (os.path.join(work, d) for d in ("photos", "labels", "bgs"))
    for d in (photos, os.path.join(labels, "fg"), os.path.join(labels, "alpha"), bgs):
        os.makedirs(d)
    rng = np.random.default_rng(0)
    held, kept = names(2, True), names(2, False)
    rejected = names(3, True)[2]  # held out, but not accepted by the teachers' check
    for name in held + kept + [rejected]:
        h, w = 24, 32
        photo = smooth(rng, h, w)
        Image.fromarray(photo).save(os.path.join(photos, name + ".png"))
        Image.fromarray(smooth(rng, h, w)).save(os.path.join(labels, "fg", name + ".png"))
        alpha = (np.linspace(0, 65535, w)[None, :] * np.ones((h, 1))).astype(np.uint16)
        Image.fromarray(alpha).save(os.path.join(labels, "alpha", name + ".png"))
    with open(os.path.join(labels, "accepted.txt"), "w") as f:
        f.write("\n".join(held + kept) + "\n")
    for name in names(2, True, "b") + names(3, False, "b"):
        Image.fromarray(smooth(rng, 30, 40)).save(os.path.join(bgs, name + ".jpg"))

    outs = []
    for run in ("a", "b"):
        out = os.path.join(work, "val-" + run)
        subprocess.run([sys.executable, TOOL, photos, labels, bgs, out, "--per-photo", "2"],
                       check=True)
        outs.append(out)
    images = sorted(os.listdir(os.path.join(outs[0], "image")))
    want = sorted([n + ".jpg" for n in held] + [f"{n}_bg{k}.jpg" for n in held for k in (0, 1)])
    assert images == want, f"pictures {images}, want {want}"
    assert sorted(os.listdir(os.path.join(outs[0], "alpha"))) == [
        w.replace(".jpg", ".png") for w in want]
    for name in images:
        a = open(os.path.join(outs[0], "image", name), "rb").read()
        b = open(os.path.join(outs[1], "image", name), "rb").read()
        assert a == b, f"{name}: not the same with the same seed"
    # a composite: I = a F + (1 - a) B with the background cover-cropped, up to JPEG loss
    name = held[0]
    alpha = np.asarray(Image.open(os.path.join(outs[0], "alpha", name + "_bg0.png")),
                       dtype=np.float64)[..., None] / 255
    fg = np.asarray(Image.open(os.path.join(labels, "fg", name + ".png")), dtype=np.float64)
    comp = np.asarray(Image.open(os.path.join(outs[0], "image", name + "_bg0.jpg")),
                      dtype=np.float64)
    opaque = alpha[..., 0] > 0.99
    err = np.abs(comp - fg)[opaque].mean()
    assert err < 4, f"opaque pixels differ from the foreground by {err:.1f} on average"
    # the real photo: the photo itself
    real = np.asarray(Image.open(os.path.join(outs[0], "image", name + ".jpg")), dtype=np.float64)
    photo = np.asarray(Image.open(os.path.join(photos, name + ".png")), dtype=np.float64)
    assert np.abs(real - photo).mean() < 4, "the real picture is not the photo"
    print(f"ok: {len(images)} pictures from {len(held)} held-out photos, deterministic")

    # --two-people: each held-out person full height at the left, the other at half its
    # height standing at the right, both on the bottom edge; the target covers both
    two = os.path.join(work, "two")
    subprocess.run([sys.executable, TOOL, photos, labels, bgs, two, "--two-people", "0.5"],
                   check=True)
    images = sorted(os.listdir(os.path.join(two, "image")))
    assert images == sorted(n + "_two50.jpg" for n in held), images
    for name in held:
        target = np.asarray(Image.open(os.path.join(two, "alpha", name + "_two50.png")),
                            dtype=np.float64) / 255
        assert target.shape == (432, 768), target.shape
        # the generated alpha rises from 0 at a photo's left edge to 1 at its right
        for column, want in ((400, 416), (750, 208)):
            rows = np.nonzero(target[:, column] > 0.5)[0]
            assert rows[-1] == 431 and abs(len(rows) - want) <= 2, (name, column, rows)
    print(f"ok: two-person pictures {images}, each person of the height asked for")


if __name__ == "__main__":
    main()

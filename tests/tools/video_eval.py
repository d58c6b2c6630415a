#!/usr/bin/python3
"""hfam-video-eval on a tiny generated set and clip, with a tiny random model: the metrics it
prints (dtSSD, SAD, MSE, moving SAD, flicker) recomputed here from the mattes it saved and the
ground truth, as the tool's header defines them; the temporal path engaged (blend:1 keeps the
first matte, so nothing flickers); --interval N (the network on one frame in N, the others
showing its matte, as the element's inference-interval); and the errors (manifests with missing, out-of-range or
mistyped members, which must not trip json-glib's assertions either; a bad --temporal; frames
of different sizes).

Usage: video_eval.py HFAM_VIDEO_EVAL MODEL.safetensors. Needs numpy and PIL (exit 77 without)."""

import csv
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from PIL import Image
except ImportError:
    print("skipped: numpy or PIL missing")
    sys.exit(77)

TOOL, MODEL = sys.argv[1], sys.argv[2]
W, H, N = 40, 30, 5
STILL_LEVELS = 6


def run(*args, expect=0):
    r = subprocess.run([TOOL, "--model", MODEL, "--size", "64", "--threads", "1", *args],
                       capture_output=True, text=True)
    if r.returncode != expect or "CRITICAL" in r.stderr:
        sys.exit(f"hfam-video-eval {' '.join(args)}: exit {r.returncode}, expected {expect}\n"
                 f"{r.stdout}\n{r.stderr}")
    return r


def table(path):
    with open(path) as f:
        return {row[0]: [float(v) for v in row[1:]] for row in list(csv.reader(f))[1:]}


def frames(rng, n):
    """A bright square moving over a textured background, with noise."""
    y, x = np.mgrid[0:H, 0:W]
    out = []
    for t in range(n):
        bg = 60 + 40 * np.sin(x / 3.0 + y / 5.0)
        sq = (abs(x - 12 - 3 * t) < 6) & (abs(y - 15) < 8)
        img = np.where(sq, 220.0, bg)[..., None] * np.array([1.0, 0.8, 0.6])
        out.append(np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8))
    return out


def flicker(mattes, pictures):
    values = []
    for t in range(1, len(mattes)):
        still = (np.abs(pictures[t].astype(int) - pictures[t - 1]) <= STILL_LEVELS).all(axis=2)
        change = np.abs(mattes[t] - mattes[t - 1])[still]
        values.append(255 * change.mean() if change.size else 0.0)
    return float(np.mean(values))


def main():
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        # a make_videoset.py folder of one sequence
        root = os.path.join(tmp, "set")
        for sub in ("frames", "alpha"):
            os.makedirs(os.path.join(root, "s0", sub))
        pictures = frames(rng, N)
        truths = []
        for t, pic in enumerate(pictures):
            Image.fromarray(pic).save(os.path.join(root, "s0", "frames", f"{t:05d}.jpg"),
                                      quality=95)
            # read back: the tool sees the JPEG's pixels
            pictures[t] = np.asarray(Image.open(os.path.join(root, "s0", "frames",
                                                             f"{t:05d}.jpg")).convert("RGB"))
            g = (np.abs(np.mgrid[0:H, 0:W][1] - 12 - 3 * t) < 6) * 255
            truths.append(g / 255.0)
            Image.fromarray(g.astype(np.uint8)).save(
                os.path.join(root, "s0", "alpha", f"{t:05d}.png"))
        moving = [False, False, True, True, False]
        with open(os.path.join(root, "manifest.json"), "w") as f:
            json.dump({"version": 1, "sequences": [
                {"name": "s0", "frames": N, "width": W, "height": H, "moving": moving}]}, f)

        for temporal in ("none", "compensated:0.85", "motion:0.8", "blend:0.5"):
            out, saved = os.path.join(tmp, temporal + ".csv"), os.path.join(tmp, temporal)
            r = run("--temporal", temporal, "--csv", out, "--save", saved, root)
            if "dtSSD" not in r.stdout:
                sys.exit(f"--temporal {temporal}: no dtSSD column:\n{r.stdout}")
            rows = table(out)
            mattes = [np.asarray(Image.open(os.path.join(saved, "s0", f"{t:05d}.png")),
                                 dtype=np.float64) / 255 for t in range(N)]
            sad = [np.abs(a - g).sum() / 1000 for a, g in zip(mattes, truths)]
            dt = [0.0] + [100 * np.sqrt((((mattes[t] - mattes[t - 1])
                                          - (truths[t] - truths[t - 1])) ** 2).mean())
                          for t in range(1, N)]
            want = [np.mean(dt), np.mean(sad),
                    np.mean([((a - g) ** 2).mean() for a, g in zip(mattes, truths)]),
                    np.mean([s for s, m in zip(sad, moving) if m]), flicker(mattes, pictures)]
            got = rows["s0"]
            if not np.allclose(got, want, rtol=1e-6, atol=1e-9) or rows["mean"] != got:
                sys.exit(f"--temporal {temporal}: the tool says {got}, recomputed {want}")
            print(f"ok: --temporal {temporal}: dtSSD, SAD, MSE, moving SAD and flicker agree")

        # blend:1 keeps frame 0's matte: nothing changes from frame to frame (unrefined: the
        # refinement follows each frame's picture)
        run("--temporal", "blend:1", "--refine", "none", "--csv", os.path.join(tmp, "hold.csv"),
            root)
        if table(os.path.join(tmp, "hold.csv"))["s0"][4] != 0:
            sys.exit("--temporal blend:1: the matte changed, so the temporal path is not used")
        print("ok: blend:1 holds the first matte")

        # --interval 2 with the plain blend (unsmoothed, unrefined: each output is the kept
        # matte resized): frames 1 and 3 show the mattes of frames 0 and 2, which ran the
        # network as with --interval 1; with motion compensation (smoothing 0, as --temporal
        # none) they show them moved along the square's motion (hfam_context_follow;
        # test-engine-temporal checks how)
        saved = {}
        for name, interval, temporal in (("every", 1, "blend:0"), ("held", 2, "blend:0"),
                                         ("followed", 2, "none")):
            saved[name] = os.path.join(tmp, name)
            run("--temporal", temporal, "--refine", "none", "--interval", str(interval),
                "--save", saved[name], root)
        kept = {k: [np.asarray(Image.open(os.path.join(saved[k], "s0", f"{t:05d}.png")))
                    for t in range(N)] for k in saved}
        if np.array_equal(kept["every"][0], kept["every"][1]):
            sys.exit("--interval: frames 0 and 1 have one matte, so the check below cannot tell")
        for t in range(N):
            if not np.array_equal(kept["held"][t], kept["every"][t - t % 2]):
                sys.exit(f"--interval 2: frame {t} is not frame {t - t % 2}'s matte")
            if t % 2 == 0 and not np.array_equal(kept["followed"][t], kept["every"][t]):
                sys.exit(f"--interval 2, compensated: frame {t} did not run the network")
        if np.array_equal(kept["followed"][1], kept["followed"][0]):
            sys.exit("--interval 2, compensated: frame 1's matte did not follow the motion")
        print("ok: --interval 2 runs the network on every other frame; the others show its "
              "matte, moved with the picture where the smoothing compensates motion")

        # a clip: a folder of frames, flicker only
        clip = os.path.join(tmp, "clip")
        os.makedirs(clip)
        for t, pic in enumerate(pictures):
            Image.fromarray(pic).save(os.path.join(clip, f"{t:03d}.png"))
        r = run("--temporal", "none", "--csv", os.path.join(tmp, "clip.csv"), "--save",
                os.path.join(tmp, "clip-saved"), clip)
        mattes = [np.asarray(Image.open(os.path.join(tmp, "clip-saved", "clip", f"{t:05d}.png")),
                             dtype=np.float64) / 255 for t in range(N)]
        got = table(os.path.join(tmp, "clip.csv"))["clip"][0]
        if abs(got - flicker(mattes, pictures)) > 1e-6:
            sys.exit(f"clip: flicker {got}, recomputed {flicker(mattes, pictures)}")
        print("ok: a clip's flicker agrees")

        # errors name the problem
        bad = os.path.join(tmp, "bad")
        os.makedirs(bad)
        with open(os.path.join(bad, "manifest.json"), "w") as f:
            json.dump({"sequences": [{"name": "s0", "frames": N}]}, f)
        r = run(bad, expect=1)
        if "moving" not in r.stderr:
            sys.exit(f"a manifest without moving flags: {r.stderr}")
        for seq in ({"name": "../s0", "frames": N, "moving": moving}, 7,
                    {"name": 5, "frames": "five", "moving": "all"},
                    {"name": "s0", "frames": N, "moving": [1] * N},
                    {"name": "s0", "frames": 10 ** 9, "moving": moving},
                    {"name": "s0", "frames": N, "moving": moving[:2]}):
            with open(os.path.join(bad, "manifest.json"), "w") as f:
                json.dump({"sequences": [seq]}, f)
            r = run(bad, expect=1)
            if "sequence 0" not in r.stderr:
                sys.exit(f"a bad sequence {seq}: {r.stderr}")
        r = run("--interval", "0", root, expect=1)
        if "--interval" not in r.stderr:
            sys.exit(f"--interval 0: {r.stderr}")
        r = run("--temporal", "motion:2", root, expect=1)
        if "--temporal" not in r.stderr:
            sys.exit(f"--temporal motion:2: {r.stderr}")
        Image.fromarray(pictures[0][:20]).save(os.path.join(clip, "004.png"))
        r = run(clip, expect=1)
        if "004.png" not in r.stderr:
            sys.exit(f"frames of two sizes: {r.stderr}")
        print("ok: errors name the manifest, the option and the frame")


if __name__ == "__main__":
    main()

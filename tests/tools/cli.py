#!/usr/bin/python3
"""hfam-eval's command line on small generated folders: pairing by stem, the formats, the
table, --csv, --progress, the errors; and, given a model, the --model mode with --save, whose
saved folder must score exactly as the run that wrote it.

Usage: cli.py HFAM_EVAL [MODEL.safetensors]. Needs only the standard library; PIL (optional)
writes the JPEG cases, which are skipped without it."""

import csv
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pngfile  # noqa: E402

try:
    from PIL import Image
except ImportError:
    Image = None

HFAM_EVAL = sys.argv[1]
MODEL = sys.argv[2] if len(sys.argv) > 2 else None
W, H = 12, 9
N = W * H


def run(*args, expect=0):
    r = subprocess.run([HFAM_EVAL, *args], capture_output=True, text=True)
    if r.returncode != expect:
        sys.exit(f"hfam-eval {' '.join(args)}: exit {r.returncode}, expected {expect}\n"
                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r


def fails_naming(args, *names):
    r = run(*args, expect=1)
    for name in names:
        if name not in r.stderr:
            sys.exit(f"hfam-eval {' '.join(args)}: the error does not name {name}: {r.stderr}")
    print(f"ok: refuses ({r.stderr.strip()})")


def flat_gray(path, value, w=W, h=H, bit_depth=8):
    pngfile.write_png(path, w, h, [[value] * w] * h, bit_depth, pngfile.GRAY)


def table(stdout):
    """{image: [sad, mse, grad, conn]} from the rows under the header line."""
    rows = {}
    lines = [line for line in stdout.splitlines() if not line.startswith("#")]
    if lines[0].split() != ["image", "SAD", "MSE", "Grad", "Conn"]:
        sys.exit(f"unexpected table header: {lines[0]}")
    for line in lines[1:]:
        name, *values = line.split()
        rows[name] = [float(v) for v in values]
    return rows


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [(r["image"], [float(r[k]) for k in ("sad", "mse", "grad", "conn")]) for r in rows]


def check(condition, message):
    if not condition:
        sys.exit(message)
    print(f"ok: {message}")


def folder_mode(tmp):
    pred, gt = os.path.join(tmp, "pred"), os.path.join(tmp, "gt")
    os.mkdir(pred)
    os.mkdir(gt)
    # a: opaque against transparent. SAD = n / 1000, MSE = 1, Grad = 0; Conn: nothing is
    # above any threshold in gt, so l = 0: phi(1) = 0, phi(0) = 1, Conn = n / 1000.
    flat_gray(os.path.join(pred, "a.png"), 255)
    flat_gray(os.path.join(gt, "a.png"), 0)
    # b: an RGBA prediction (upper-case extension) of alpha 0.4 (16 bits) against 0.4 gray.
    v = 26214  # 0.4 * 65535
    pngfile.write_png(os.path.join(pred, "b.PNG"), W, H, [[7, 8, 9, v] * W] * H, 16,
                      pngfile.RGBA)
    flat_gray(os.path.join(gt, "b.png"), v, bit_depth=16)
    # c: a JPEG ground truth of flat gray 51 (0.2), which JPEG stores exactly.
    if Image:
        Image.new("L", (W, H), 51).save(os.path.join(gt, "c.jpg"), quality=100)
    else:
        flat_gray(os.path.join(gt, "c.png"), 51)
        print("skipped: JPEG ground truth (no PIL)")
    flat_gray(os.path.join(pred, "c.png"), 51)
    with open(os.path.join(pred, "notes.txt"), "w") as f:
        f.write("not an image: ignored\n")

    out = os.path.join(tmp, "scores.csv")
    r = run(pred, gt, "--csv", out)
    for convention in ("SAD  = sum |p - g| / 1000", "MSE  = mean (p - g)^2",
                       "Grad = sum (|grad p| - |grad g|)^2 / 1000", "sigma 1.4",
                       "Conn = sum |phi(p) - phi(g)| / 1000", "8-bit v / 255"):
        check(convention in r.stdout, f"the header states '{convention}'")
    check(r.stderr == "", "no progress on stderr when it is not a terminal")
    rows = table(r.stdout)
    check(list(rows) == ["a", "b", "c", "mean"], "one row per stem in name order, then mean")
    want_a = [N / 1000, 1, 0, N / 1000]
    check(all(abs(g - w) < 1e-4 for g, w in zip(rows["a"], want_a)), f"a scores {want_a}")
    check(rows["b"] == [0] * 4 and rows["c"] == [0] * 4, "b (RGBA, 16 bits), c: all 0")
    check(all(abs(m - sum(x) / 3) < 1e-4
              for m, x in zip(rows["mean"], zip(*[rows[k] for k in "abc"]))),
          "the mean row is the mean of the rows")
    scores = read_csv(out)
    check([name for name, _ in scores] == ["a", "b", "c", "mean"], "the CSV has the same rows")
    check(abs(scores[0][1][0] - N / 1000) < 1e-15 and scores[0][1][1] == 1,
          "the CSV has full precision")

    r = run(pred, gt, "--progress")
    check(r.stderr.splitlines() == ["1/3 a", "2/3 b", "3/3 c"], "--progress: a line per image")

    # Errors, each naming the file at fault.
    odd = os.path.join(tmp, "odd")
    os.mkdir(odd)
    flat_gray(os.path.join(odd, "a.png"), 0, w=W + 1)
    flat_gray(os.path.join(odd, "b.png"), 0)
    flat_gray(os.path.join(odd, "c.png"), 0)
    fails_naming([odd, gt], os.path.join(odd, "a.png"), os.path.join(gt, "a.png"), "13x9")
    flat_gray(os.path.join(pred, "d.png"), 0)
    fails_naming([pred, gt], os.path.join(pred, "d.png"))
    os.remove(os.path.join(pred, "d.png"))
    flat_gray(os.path.join(gt, "e.png"), 0)
    fails_naming([pred, gt], os.path.join(gt, "e.png"))
    os.remove(os.path.join(gt, "e.png"))
    flat_gray(os.path.join(pred, "a.jpeg"), 0)  # a PNG by its signature: still a duplicate
    fails_naming([pred, gt], "a.png", "a.jpeg")
    os.remove(os.path.join(pred, "a.jpeg"))
    with open(os.path.join(pred, "c.png"), "w") as f:
        f.write("not a PNG\n")
    fails_naming([pred, gt], os.path.join(pred, "c.png"))
    flat_gray(os.path.join(pred, "c.png"), 51)
    fails_naming([pred, pred], pred)
    fails_naming([pred, gt, "--save", os.path.join(tmp, "saved")], "--save")
    fails_naming([pred, os.path.join(tmp, "missing")], "missing")
    return gt


def model_mode(tmp, gt):
    pictures = os.path.join(tmp, "pictures")
    os.mkdir(pictures)
    for i, stem in enumerate(("a", "b", "c")):
        pixels = [[(x * 20 + y * 3 + i * 50) % 256 for x in range(W) for _ in range(3)]
                  for y in range(H)]
        pngfile.write_png(os.path.join(pictures, stem + ".png"), W, H, pixels, 8, pngfile.RGB)
    saved, out = os.path.join(tmp, "saved"), os.path.join(tmp, "model.csv")
    r = run("--model", MODEL, "--size", "64", "--threads", "1", "--save", saved, "--csv", out,
            pictures, gt)
    check(MODEL in r.stdout and "quantised to 8 bits" in r.stdout
          and "inference long side 64" in r.stdout, "the header names the model and the size")
    check(list(table(r.stdout)) == ["a", "b", "c", "mean"], "--model: a row per picture")
    check(all(pngfile.png_size(os.path.join(saved, s + ".png")) == (W, H) for s in "abc"),
          "--save writes a matte of the picture's size per picture")
    again = os.path.join(tmp, "again.csv")
    run(saved, gt, "--csv", again)
    check(read_csv(again) == read_csv(out), "the saved mattes score exactly as the run did")
    fails_naming(["--model", MODEL, "--save", gt, pictures, gt], "--save")
    refined = os.path.join(tmp, "refined.csv")
    run("--model", MODEL, "--size", "64", "--threads", "1", "--refine", "guided", "--csv",
        refined, pictures, gt)
    check([r[0] for r in read_csv(refined)] == [r[0] for r in read_csv(out)],
          "--refine guided: a row per picture")
    fails_naming(["--model", MODEL, "--refine", "bilateral", pictures, gt], "--refine")
    fails_naming(["--refine", "guided", pictures, gt], "--refine")

    if not Image:
        print("skipped: pictures and mattes in one folder (no PIL to write JPEG)")
        return
    # data/portrait-dev's layout: the JPEG files are the pictures, the PNG files the mattes.
    both = os.path.join(tmp, "both")
    os.mkdir(both)
    Image.new("RGB", (W, H), (200, 120, 40)).save(os.path.join(both, "x.jpg"))
    flat_gray(os.path.join(both, "x.png"), 255)
    r = run("--model", MODEL, "--size", "32", "--threads", "1", both, both)
    check(list(table(r.stdout)) == ["x", "mean"], "--model with one folder: JPEG against PNG")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        gt = folder_mode(tmp)
        if MODEL:
            model_mode(tmp, gt)
        else:
            print("skipped: --model mode (no model: configure found no PyTorch)")


if __name__ == "__main__":
    main()

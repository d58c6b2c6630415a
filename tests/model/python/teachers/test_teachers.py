#!/usr/bin/env python3
"""Offline checks of model/python/teachers: fgest.py (blur-fusion foreground estimation)
recovers the foreground colour of a synthetic composite with soft edges, agree.py's
disagreement rule accepts and rejects synthetic matte pairs as documented, label_check.py's
ratios, edge band, scores and summary and fg_check.py's scores and summary are right on
synthetic mattes. With node on PATH, teacher.js must pass `node --check`. No network. Exit 0
pass, 1 fail, 77 numpy/scipy missing."""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TEACHERS = os.path.join(HERE, "..", "..", "..", "..", "model", "python", "teachers")
sys.path.insert(0, TEACHERS)

try:
    import numpy as np
    import scipy  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

import agree  # noqa: E402
import fg_check  # noqa: E402
import fgest  # noqa: E402
import label_check  # noqa: E402

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def disc(h, w, cy, cx, r, soft):
    """A disc whose edge ramps linearly from 1 to 0 over `soft` pixels."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    return np.clip((r + soft / 2 - d) / soft, 0, 1).astype(np.float32)


def test_fgest():
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    # A smooth reddish foreground and a smooth, very different bluish-green background.
    F = np.stack([0.8 + 0.1 * np.sin(x / 40), 0.3 + 0.1 * np.cos(y / 50),
                  0.2 + 0.05 * np.sin((x + y) / 60)], -1).astype(np.float32)
    B = np.stack([0.1 + 0.05 * np.cos(y / 30), 0.7 + 0.1 * np.sin(x / 35),
                  0.8 - 0.1 * np.cos((x - y) / 45)], -1).astype(np.float32)
    # A soft disc plus a thin "hair" band of alpha 0.3 reaching into the background.
    a = disc(h, w, 120, 150, 70, 24)
    a[115:125, 220:300] = np.maximum(a[115:125, 220:300], 0.3)
    I = a[..., None] * F + (1 - a[..., None]) * B
    est = fgest.estimate_foreground(I, a)
    check(est.shape == F.shape and est.dtype == np.float32, f"shape/dtype {est.shape} {est.dtype}")
    # Blur-fusion is approximate (measured here: mean |F_est - F| 0.071 on soft pixels, 0.027
    # where alpha > 0.5, 0.083 where alpha < 0.2, where F hardly shows). What training needs is
    # a F (the composite over a new background differs from the truth by a |F_est - F|).
    soft = (a > 0.05) & (a < 0.95)
    e, n = np.abs(est - F), np.abs(I - F)
    err, naive = e[soft].mean(), n[soft].mean()
    werr, wnaive = (a[..., None] * e)[soft].mean(), (a[..., None] * n)[soft].mean()
    print(f"     soft pixels {soft.sum()}: |F_est - F| {err:.4f} (|I - F| {naive:.4f}); "
          f"a |F_est - F| {werr:.4f} (a |I - F| {wnaive:.4f})")
    check(werr < 0.035, f"composite error a |F_est - F| {werr:.4f} < 0.035")
    check(werr < 0.3 * wnaive, f"composite error under 0.3 x that of F = I ({wnaive:.4f})")
    check(err < 0.35 * naive, f"|F_est - F| {err:.4f} under 0.35 x that of F = I ({naive:.4f})")
    half = e[soft & (a > 0.5)].mean()
    check(half < 0.04, f"|F_est - F| where 0.5 < alpha < 0.95: {half:.4f} < 0.04")
    opaque = a >= 0.999
    check(np.abs(est - F)[opaque].max() < 1e-3, "opaque pixels keep the image colour")
    # A new background: the composite with F_est is close to the true one.
    B2 = np.zeros_like(B) + np.array([0.5, 0.5, 0.5], np.float32)
    comp = a[..., None] * est + (1 - a[..., None]) * B2
    true = a[..., None] * F + (1 - a[..., None]) * B2
    check(np.abs(comp - true).max() < 0.25 and np.abs(comp - true).mean() < 0.01,
          f"composite over grey: max {np.abs(comp - true).max():.3f}, "
          f"mean {np.abs(comp - true).mean():.4f}")
    # uint8 inputs are accepted and give (almost) the same answer.
    est8 = fgest.estimate_foreground(np.round(I * 255).astype(np.uint8),
                                     np.round(a * 255).astype(np.uint8))
    check(np.abs(est8 - est)[a > 0.2].mean() < 0.02, "uint8 inputs")


def test_agree():
    h, w = 200, 200
    a = disc(h, w, 100, 100, 50, 6)
    st = agree.compare(a, a)
    ok, why = agree.decide(st)
    check(ok and abs(st["iou"] - 1) < 1e-9 and st["mad"] == 0, f"identical mattes accepted ({why})")
    # Shifted by 5 px: IoU about 0.94, accepted.
    b = np.roll(a, 5, axis=1)
    st = agree.compare(a, b)
    ok, why = agree.decide(st)
    check(ok and 0.85 < st["iou"] < 0.97, f"5 px shift accepted, iou {st['iou']:.3f} ({why})")
    # Shifted by 25 px: IoU about 0.53, rejected by the IoU rule.
    c = np.roll(a, 25, axis=1)
    st = agree.compare(a, c)
    ok, why = agree.decide(st)
    check(not ok and "iou" in why, f"25 px shift rejected ({why})")
    # The second teacher marks an extra object (a statue) as large as the person: rejected.
    d = np.maximum(a, disc(h, w, 100, 100, 0, 1))
    d[10:90, 10:60] = 1.0
    st = agree.compare(a, d)
    ok, why = agree.decide(st)
    check(not ok, f"extra object rejected ({why}, iou {st['iou']:.3f})")
    # A soft disagreement that binarisation hides: alpha 0.45 everywhere vs 0 -> MAD rule.
    e = np.where(a > 0.5, a, 0.45).astype(np.float32)
    st = agree.compare(a, e)
    ok, why = agree.decide(st)
    check(not ok and "mad" in why and st["iou"] > 0.99, f"soft haze rejected by MAD ({why})")
    # Nobody found by either teacher: IoU defined as 1, rejected by the fg rule.
    z = np.zeros((h, w), np.float32)
    st = agree.compare(z, z)
    ok, why = agree.decide(st)
    check(not ok and st["iou"] == 1.0 and "fg" in why, f"empty mattes rejected ({why})")
    # Whole frame foreground: rejected.
    o = np.ones((h, w), np.float32)
    ok, why = agree.decide(agree.compare(o, o))
    check(not ok and "fg" in why, f"full-frame matte rejected ({why})")
    try:
        agree.compare(a, a[:10])
        check(False, "size mismatch raises")
    except ValueError:
        check(True, "size mismatch raises")


def test_label_check():
    rv = label_check.ratio_of
    check(rv("r0.375", 1024, 768) == 0.375 and rv("r0.375", 300, 200) == 0.375,
          "rR is the ratio whatever the size")
    check(rv("s512", 768, 1024) == 0.5 and rv("s512", 300, 400) == 1.0,
          "sS brings the long side to S, at most ratio 1")
    for bad in ("x0.5", "r0", "r1.5", "s8", "s"):
        try:
            rv(bad, 100, 100)
            check(False, f"variant {bad!r} refused")
        except ValueError:
            check(True, f"variant {bad!r} refused")

    # A hard disc at 1024 x 1024: the band is the 8 px either side of its contour.
    truth = (disc(1024, 1024, 512, 512, 200, 1e-6) > 0.5).astype(np.float64)
    band = label_check.edge_band(truth)
    check(band[512, 512 + 200 - 1] and band[512, 512 + 200 + 7] and band[512, 512 + 200 - 8],
          "the band holds the contour and 7-8 px either side")
    check(not band[512, 512 + 200 + 10] and not band[512, 512] and not band[0, 0],
          "the band leaves out the inside and the far background")
    small = label_check.edge_band(label_check.at_side(truth, 512))
    check(small[256, 256 + 100 + 3] and not small[256, 256 + 100 + 6],
          "the band's reach scales with the long side (4 px at 512)")
    check(label_check.at_side(truth, 512).shape == (512, 512)
          and label_check.at_side(truth, 0) is truth
          and label_check.at_side(truth, 2048) is truth, "at_side shrinks, never enlarges")

    pred = truth.copy()
    pred[10:30, 10:30] = 1.0          # a kept background object: 400 px, all outside the band
    pred[512, 512 + 199] = 0.5        # an edge error of 0.5
    s = label_check.score(pred, truth, band)
    check(abs(s["sad_rest"] - 0.4) < 1e-9 and abs(s["sad_band"] - 0.0005) < 1e-9,
          f"the object counts in the rest, the edge error in the band ({s})")
    check(abs(s["sad"] - s["sad_band"] - s["sad_rest"]) < 1e-9, "band + rest = SAD")

    check(label_check.parts_of("s512+s768") == ["s512", "s768"]
          and label_check.parts_of("r0.375") == ["r0.375"], "A+B needs A's and B's runs")
    for bad in ("s512+s640+s768", "s512+x1", "s512+"):
        try:
            label_check.parts_of(bad)
            check(False, f"variant {bad!r} refused")
        except ValueError:
            check(True, f"variant {bad!r} refused")
    fine = truth.copy()
    fine[512, 512 + 200 + 3] = 0.25   # a strand beyond the contour, in the band
    fine[100, 100] = 1.0              # a background object, outside it
    colour = np.ones(truth.shape + (3,))
    alpha, fg = label_check.combine((truth, 0 * colour), (fine, colour))
    check(alpha[512, 512 + 200 + 3] == 0.25 and alpha[100, 100] == 0.0
          and fg[512, 512 + 200 + 3].min() == 1 and fg[100, 100].max() == 0,
          "A+B takes B's matte and colour in A's edge band only")

    rows = []
    for comp, (base, other) in enumerate([(1.0, 0.5), (1.0, 2.0), (3.0, 1.0)]):
        for v, sad in (("r0.375", base), ("s512", other)):
            rows.append({"composite": f"c{comp}", "truth": "r0.375", "variant": v, "side": 0,
                         "sad": sad, "mse": 0.0, "grad": 0.0, "sad_band": sad, "sad_rest": 0.0})
    rows[1]["sad"] = rows[0]["sad"]   # composite 0: a tie
    table = label_check.summarise(rows, ["r0.375", "s512"], ["r0.375"], [0], "r0.375")
    line = [ln for ln in table.splitlines() if "| s512 |" in ln][0]
    check(line.startswith("| r0.375 | own | s512 | 1.333 |") and line.endswith("| 1, 1, 1 of 3 |"),
          f"summary: mean SAD; lower, equal, higher than the baseline ({line})")


def test_fg_check():
    h, w = 64, 96
    truth = disc(h, w, 32, 48, 20, 6).astype(np.float64)
    band = label_check.edge_band(truth)
    fg = np.full((h, w, 3), 0.6)
    bg = np.zeros((h, w, 3))
    s = fg_check.fg_scores(truth, fg, truth, fg, bg, band)
    check(all(v == 0.0 for v in s.values()), f"the truth itself scores 0 ({s})")
    off = fg.copy()
    off[..., 0] += 0.3                # one channel off by 0.3 wherever the person shows
    s = fg_check.fg_scores(truth, fg, truth, off, bg, band)
    want = 0.1 * truth.sum() / 1000   # (the mean of the channels: 0.3 / 3) x alpha
    check(abs(s["comp"] - want) < 1e-9 and abs(s["colour_err"] - want) < 1e-9,
          f"a colour error counts as much as the truth's alpha shows it ({s}, {want:.4f})")
    check(abs(s["comp"] - s["comp_band"] - s["comp_rest"]) < 1e-9, "band + rest = the error")
    check(fg_check.colour_at_side(np.ones((1024, 512, 3)), 512).shape == (512, 256, 3),
          "a colour shrinks as a matte does")
    rgb = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    est = fg_check.colour_of("estimate", rgb, truth, None)
    check(np.abs(est[truth == 1] - rgb[truth == 1] / 255).max() < 1e-5,
          "blur-fusion's colour is the picture's where alpha is 1")
    check(fg_check.colour_of("teacher", rgb, truth, fg) is fg, "teacher: RVM's own colour")

    rows = [{"composite": f"c{k}", "truth": "teacher", "colour": c, "side": 512, "comp": v,
             "comp_band": v, "comp_rest": 0.0, "colour_err": v}
            for k, (t, e) in enumerate([(1.0, 0.5), (1.0, 1.0), (1.0, 2.0)])
            for c, v in (("teacher", t), ("estimate", e))]
    table = fg_check.summarise(rows, ["teacher"], [512])
    line = [ln for ln in table.splitlines() if "| estimate |" in ln][0]
    check(line.startswith("| teacher | 512 | estimate | 1.167 |")
          and line.endswith("| 1, 1, 1 of 3 |"),
          f"summary: the means; estimate lower, equal, higher than teacher ({line})")


class FakeTeacher:
    """Stands in for teacher.js: alpha = the red channel (selfie: red > 0.5), foreground = the
    picture times the job's ratio, so that the files show which ratio reached it. A picture
    333 pixels wide fails."""

    def __init__(self, kind, model_dir, node_modules):
        self.kind, self.info = kind, {"ready": True, "fake": True}

    def run(self, raw, h, w, prefix, ratio=None):
        if w == 333:
            raise RuntimeError("teacher.js rvm: fake failure")
        rgb = np.fromfile(raw, np.uint8).reshape(h, w, 3).astype(np.float32) / 255
        alpha = rgb[..., 0] if self.kind == "rvm" else (rgb[..., 0] > 0.5).astype(np.float32)
        alpha.astype("<f4").tofile(prefix + ".pha.f32")
        if self.kind == "rvm":
            (rgb * ratio).astype("<f4").tofile(prefix + ".fgr.f32")
        return {"ok": True, "ms": 1.0}

    def close(self):
        pass


def test_label_jobs(tmp):
    """label.py's own loop on fake teachers: any number of jobs writes the same files and
    records; the ratio each photo needs reaches its teacher; an error stops the run before
    the manifest."""
    import json
    from PIL import Image
    import label
    label.Teacher = FakeTeacher
    label.node_env = lambda cache, log: "node_modules"
    label.fetch_models = lambda cache, log: "models"
    photos = os.path.join(tmp, "photos")
    os.makedirs(photos)
    for i, (w, h) in enumerate([(300, 280), (400, 300), (280, 300), (200, 200), (320, 320),
                                (300, 300), (360, 270)]):
        a = disc(h, w, h / 2, w / 2, min(h, w) / 3 + 5 * i, 8)
        rgb = np.stack([a, 0.5 * (1 - a), np.full_like(a, 0.2)], -1)
        Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(f"{photos}/p{i}.png")
    outs = {}
    for jobs in (1, 3):
        out = os.path.join(tmp, f"out{jobs}")
        # (the teacher's colour: it shows the ratio the teacher got)
        check(label.main([photos, out, "--side", "150", "--fg", "teacher", "--jobs", str(jobs),
                          "--cache", tmp]) == 0, f"label.py --jobs {jobs} on fake teachers")
        files = {}
        for root, _, names in os.walk(out):
            for n in names:
                if n != "manifest.json":
                    with open(os.path.join(root, n), "rb") as f:
                        files[os.path.relpath(os.path.join(root, n), out)] = f.read()
        with open(os.path.join(out, "manifest.json")) as f:
            m = json.load(f)
        outs[jobs] = files, [{k: v for k, v in r.items() if k != "seconds"} for r in m["images"]]
    check(outs[1] == outs[3] and len(outs[1][0]) == 2 + 3 * 7,
          f"--jobs 1 and 3 write the same {len(outs[1][0])} files and records")
    recs = {r["name"]: r for r in outs[1][1]}
    check(recs["p1"]["rvm_ratio"] == 0.375 and recs["p3"]["rvm_ratio"] == 0.75
          and not recs["p3"]["accepted"], "each photo's ratio is 150 / its long side")
    sub = "" if recs["p1"]["accepted"] else "rejected"
    fg = np.asarray(Image.open(os.path.join(tmp, "out3", sub, "fg", "p1.png")), np.float32)
    check(abs(fg[..., 2].mean() - round(0.2 * 255) * 0.375) < 1, "the ratio reaches the teacher")
    Image.fromarray(np.zeros((300, 333, 3), np.uint8)).save(f"{photos}/p9.png")
    out = os.path.join(tmp, "failed")
    try:
        label.main([photos, out, "--jobs", "2", "--cache", tmp])
        check(False, "a teacher's error stops label.py")
    except RuntimeError as e:
        check("fake failure" in str(e) and not os.path.exists(os.path.join(out, "manifest.json")),
              "a teacher's error stops label.py before the manifest")


def test_node_syntax():
    if not shutil.which("node"):
        print("skip node --check (no node)")
        return
    r = subprocess.run(["node", "--check", os.path.join(TEACHERS, "teacher.js")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "node --check teacher.js " + r.stdout.strip())


if __name__ == "__main__":
    test_fgest()
    test_agree()
    test_label_check()
    test_fg_check()
    with tempfile.TemporaryDirectory() as tmp:
        test_label_jobs(tmp)
    test_node_syntax()
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)

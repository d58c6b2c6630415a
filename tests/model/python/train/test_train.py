"""Smoke test of the training toolchain (model/python/train/), for the meson suite 'train'.

    /usr/bin/python3 tests/model/python/train/test_train.py TEST_ENGINE WORKDIR

TEST_ENGINE is tests/model/engine's test-engine binary; WORKDIR is emptied and keeps every artefact
for inspection (data/, run folders with their curves.png, the exported weights and golden file).
In about a minute on one core:
1. make_data.py draws 16 foregrounds, 8 backgrounds and 4 validation images at 128 px; the
   trimap, the losses and a composited sample are checked on known cases;
2. run A: the tiny preset trains 100 steps at 64 px (batch 8, lr 3e-3, seed 0), validating and
   checkpointing every 50 steps: the mean loss of the last 10 steps must be below 0.7 times
   that of the first 10, and the validation metrics finite;
3. run B resumes A's step-50 checkpoint into another folder: it must log steps 51..100 with the
   losses of A (the data order, optimiser state and BatchNorm statistics carry over);
4. run A resumed in place to 105 steps: train.csv then holds steps 1..105, once each;
5. export_checkpoint.py writes fp32 and fp16 weight files; PyTorch runs the fp32 file like the
   unfolded checkpoint, the fp16 file close to it;
6. the golden outputs (model/python/reference/golden.py's format) of the fp32 file on a training
   composite are written, and test-engine must reproduce them to 1e-4.
Prints one line per check and `N passed, N failed`; exits non-zero on a failure.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
TRAIN = os.path.join(ROOT, "model", "python", "train")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "reference"))
sys.path.insert(0, TRAIN)
import checkpoint as ckpt  # noqa: E402
import data  # noqa: E402
import hfam  # noqa: E402
import losses  # noqa: E402
import weights  # noqa: E402

SIZE = 64
COMMON = ["--config", "tiny", "--size", str(SIZE), "--batch", "8", "--lr", "3e-3", "--seed", "0",
          "--val-size", str(SIZE), "--val-every", "50", "--save-every", "50"]
# Machine options are not stored in checkpoints: every invocation gives them. One thread: the
# tiny network is too small to gain from more, and CI machines are shared.
MACHINE = ["--device", "cpu", "--workers", "0", "--threads", "1"]
LOSS_RATIO = 0.7
TOLERANCE = 1e-4

results = {"passed": 0, "failed": 0}


def check(ok: bool, what: str) -> bool:
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    return ok


def run(*argv: str) -> None:
    """Runs a command, echoing its output only when it fails."""
    start = time.time()
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    name = " ".join(os.path.basename(a) for a in argv[:2])
    if proc.returncode != 0:
        print(proc.stdout)
        raise SystemExit(f"FAIL {name}: exit status {proc.returncode}")
    print(f"     {name}: {time.time() - start:.1f} s", flush=True)


def python(script: str, *args: str) -> None:
    run(sys.executable, script, *args)


def read_rows(path: str):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def losses_by_step(path: str):
    return {int(r["step"]): float(r["loss"]) for r in read_rows(path)}


def training_composite(datadir: str) -> np.ndarray:
    """Foreground 00 over the top-left of background 00, reduced to the training size: an image
    like those the network trained on."""
    colour, alpha = data.open_foreground(
        data.Foreground("00", os.path.join(datadir, "fg", "00.png"), ""))
    w, h = alpha.size
    bg = data.load_rgb(os.path.join(datadir, "bg", "00.png"))[:h, :w]
    a = np.asarray(alpha)[..., None]
    rgb = np.rint(a * np.asarray(colour) + (1 - a) * bg).astype(np.uint8)
    return np.array(Image.fromarray(rgb).resize((SIZE, SIZE), Image.BILINEAR))


def write_golden(weights_path: str, golden_path: str, rgb: np.ndarray) -> dict:
    """model/python/reference/golden.py's golden file for a given weight file and frame (at the
    inference size): the folded network with exactly the file's weights, on exactly the fp32
    input, computed in float64."""
    tensors, metadata = weights.read_safetensors(weights_path)
    config = hfam.HfamConfig.from_metadata(metadata)
    x = hfam.preprocess(rgb, config, max(rgb.shape[:2]))
    with torch.no_grad():
        out = hfam.build_folded(config, tensors, torch.float64)(x.double())
    top2 = out["semantic"].topk(2, dim=1).values
    golden = {"image": rgb, "input": x,
              **{k: out[k].float() for k in ("semantic", "detail", "fused")},
              "margin": (top2[:, :1] - top2[:, 1:]).float()}
    weights.write_safetensors(golden_path, golden, {"case": "trained",
                                                    "weights": os.path.basename(weights_path)},
                              dtype=None)
    return out


def unit_checks(datadir: str) -> None:
    """The trimap, the losses and a composited sample, on known cases."""
    g = np.zeros((1, 40), dtype=np.float32)
    g[0, 20:] = 1
    g[0, 19] = 0.5
    trimap = data.make_trimap(g, 6)  # a disc of diameter 6: 3 px on either side of the edge
    expected = np.array([data.BACKGROUND] * 16 + [data.UNKNOWN] * 7 + [data.FOREGROUND] * 17)
    check(np.array_equal(trimap[0], expected), "trimap: unknown band k/2 px either side of the "
                                               "soft edge, fg and bg beyond it")

    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    window = losses.gaussian_window()
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    check(abs(float(losses.ssim(x, x, window)) - 1) < 1e-6 and
          float(losses.ssim(x, noisy, window)) < 0.9, "SSIM: 1 on equal maps, less with noise")
    unknown = (x > 0.5).float()
    charb = float(losses.unknown_charbonnier(noisy, x, unknown))
    mean_abs = float(((noisy - x).abs() * unknown).sum() / unknown.sum())
    check(abs(charb - mean_abs) < 1e-5 and
          float(losses.unknown_charbonnier(noisy, x, torch.zeros_like(x))) == 0,
          "L_u: the mean |alpha_d - g| over the unknown region, 0 without one")

    ds = data.CompositeDataset(os.path.join(datadir, "fg"), [os.path.join(datadir, "bg")], SIZE)
    sample = ds[ds.epoch_keys(0)[0]]
    a, t = sample["alpha"][0], sample["trimap"]
    check(sample["image"].shape == (3, SIZE, SIZE) and float(sample["image"].min()) >= 0 and
          float(sample["image"].max()) <= 1 and bool((a[t == data.FOREGROUND] > 0.99).all()) and
          bool((a[t == data.BACKGROUND] < 0.01).all()) and
          len({int(c) for c in t.unique()}) == 3,
          "a composited sample: RGB in [0, 1], a trimap with three classes that agrees with alpha")

    logits = torch.nn.functional.one_hot(t[None], 3).permute(0, 3, 1, 2).float() * 50
    perfect = {"logits": logits, "detail": a[None, None], "fused": a[None, None]}
    total, terms = losses.HfamLoss()(perfect, a[None, None], t[None])
    check(float(total) < 1e-4, f"the loss of a perfect prediction is 0 ({float(total):.1e})")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    test_engine, work = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    torch.set_num_threads(1)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    datadir, run_a, run_b = (os.path.join(work, d) for d in ("data", "run-a", "run-b"))
    train = os.path.join(TRAIN, "train.py")
    start = time.time()

    # 1-2. Data, unit checks, training, the loss falls.
    python(os.path.join(HERE, "make_data.py"), datadir)
    unit_checks(datadir)
    python(train, *COMMON, *MACHINE, "--fg", os.path.join(datadir, "fg"),
           "--bg", os.path.join(datadir, "bg"), "--val", os.path.join(datadir, "val"),
           "--out", run_a, "--steps", "100", "--keep-checkpoints")
    loss_a = losses_by_step(os.path.join(run_a, "train.csv"))
    first = np.mean([loss_a[s] for s in range(1, 11)])
    last = np.mean([loss_a[s] for s in range(91, 101)])
    check(sorted(loss_a) == list(range(1, 101)), "run A logs steps 1..100")
    check(last < LOSS_RATIO * first,
          f"the loss falls: last 10 steps {last:.3f} < {LOSS_RATIO} x first 10 {first:.3f} "
          f"(ratio {last / first:.2f})")
    val = read_rows(os.path.join(run_a, "val.csv"))
    check([int(r["step"]) for r in val] == [50, 100] and
          all(math.isfinite(float(r[k])) for r in val for k in ("sad", "mse", "grad", "conn")),
          "validation at steps 50 and 100 with finite SAD, MSE, Grad, Conn: " +
          ", ".join(f"{k} {float(val[-1][k]):.4g}" for k in ("sad", "mse", "grad", "conn")))
    if importlib.util.find_spec("matplotlib"):
        check(os.path.getsize(os.path.join(run_a, "curves.png")) > 0, "curves.png written")
    else:
        print("skip curves.png: no matplotlib")

    # 3. Resume A's step-50 checkpoint elsewhere: same steps, same losses.
    python(train, *MACHINE, "--out", run_b, "--resume",
           os.path.join(run_a, "checkpoint-0000050.pt"))
    loss_b = losses_by_step(os.path.join(run_b, "train.csv"))
    check(sorted(loss_b) == list(range(51, 101)), "run B, resumed at step 50, logs steps 51..100")
    worst = max(abs(loss_b[s] - loss_a[s]) / loss_a[s] for s in loss_b)
    check(worst < 1e-3, f"run B repeats run A's losses (largest relative difference {worst:.1e})")

    # 4. Resume in place with a larger step budget.
    python(train, *MACHINE, "--out", run_a, "--resume", "--steps", "105")
    steps = [int(r["step"]) for r in read_rows(os.path.join(run_a, "train.csv"))]
    state = ckpt.load(os.path.join(run_a, "checkpoint.pt"))
    check(steps == list(range(1, 106)) and state["step"] == 105,
          "run A resumed in place: train.csv holds steps 1..105 once each, checkpoint at 105")

    # 5. Export, fp32 and fp16; the files compute what the checkpoint computes.
    f32 = os.path.join(work, "trained.safetensors")
    f16 = os.path.join(work, "trained-f16.safetensors")
    export = os.path.join(TRAIN, "export_checkpoint.py")
    python(export, os.path.join(run_a, "checkpoint.pt"), "-o", f32)
    python(export, os.path.join(run_a, "checkpoint.pt"), "-o", f16, "--dtype", "f16")
    rgb = training_composite(datadir)
    out = write_golden(f32, os.path.join(work, "trained.golden.safetensors"), rgb)
    config = ckpt.config_of(state)
    unfolded = hfam.HFAM(config)
    unfolded.load_state_dict(state["state_dict"])
    x = hfam.preprocess(rgb, config, SIZE, torch.float64)
    with torch.no_grad():
        ref = unfolded.double().eval()(x)
        half = hfam.load_folded(f16, torch.float64)(x)
    err = max(float((ref[k] - out[k]).abs().max()) for k in ("semantic", "detail"))
    check(err < TOLERANCE, f"the fp32 file computes the checkpoint's network (P_s, alpha_d "
                           f"within {err:.1e})")
    err16 = max(float((half[k] - out[k]).abs().max()) for k in ("semantic", "detail"))
    check(err16 < 2e-2, f"the fp16 file is close to the fp32 one ({err16:.1e})")
    classes = out["semantic"].argmax(dim=1)
    print("     trained matte on a training image: bg/unknown/fg " +
          " ".join(f"{float((classes == k).double().mean()):.2f}" for k in range(3)))

    # 6. The engine against PyTorch on the trained weights.
    proc = subprocess.run([test_engine, work, "trained"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        print(proc.stdout)
    check(proc.returncode == 0, "test-engine: the engine's outputs on the trained weights match "
                                f"PyTorch's to {TOLERANCE}")

    print(f"{results['passed']} passed, {results['failed']} failed "
          f"({time.time() - start:.0f} s; artefacts in {work})")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

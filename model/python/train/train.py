"""Trains HFAM (../../../../shared/HFAM.md section 6) on foregrounds composited over backgrounds.

    /usr/bin/python3 model/python/train/train.py --config r50 --fg DIR --bg DIR [--bg DIR ...]
        [--val DIR] --out RUN_DIR
        [--steps N] [--batch 8] [--lr 1e-5] [--size 512] [--device auto|cpu|cuda] [--amp]
        [--encoder-init encoder.pt --stride-in-1x1 --input-caffe] ...
    /usr/bin/python3 model/python/train/train.py --out RUN_DIR --resume [--steps N]

RUN_DIR receives checkpoint.pt (every --save-every steps and at the end; see checkpoint.py),
train.csv (one row per step: the loss, its unweighted terms, images/s), val.csv (one row per
validation: the mean of each metric of metrics.py over the validation folder) and curves.png.
A resumed run takes every option it is not given again from the checkpoint, and continues the
step count, the data order and the random generators where the checkpoint left them. The data
layout is in data.py, the losses in losses.py; README.md has the whole story.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, HERE)
import augment  # noqa: E402
import checkpoint as ckpt  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
import hfam  # noqa: E402
import losses  # noqa: E402
import metrics  # noqa: E402
import pack  # noqa: E402
import plot  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:  # Debian: python3-tqdm
    tqdm = None

# Caffe-style input of the Keras ImageNet ResNet-50 (HFAM.md, "Tensors and notation").
CAFFE_INPUT = dict(input_order="BGR", input_scale=255.0, input_mean=(103.939, 116.779, 123.68),
                   input_std=(1.0, 1.0, 1.0))

# Options that define the network: taken from the checkpoint when resuming, never overridden.
ARCHITECTURE = ("config", "depth", "stride_in_1x1", "input_caffe", "encoder_init")

# Options that belong to the machine or the invocation: not stored in the checkpoint.
MACHINE = ("device", "threads", "workers", "resume")

DEFAULTS = dict(
    config="r50", depth=None, stride_in_1x1=False, input_caffe=False, encoder_init=None,
    fg=None, bg=None, val=None, out=None, resume=None,
    steps=100000, batch=8, lr=1e-5, weight_decay=5e-4, beta1=0.9, beta2=0.999,
    w_ce=1.0, w_unknown=10.0, w_fused=1.0,
    size=512, per_fg=20, seed=0, device="auto", amp=False, threads=0,
    workers=min(8, (os.cpu_count() or 2) // 2),
    val_every=1000, val_size=None, save_every=1000, keep_checkpoints=False,
    hold_out_backgrounds=0.1,
    **{f"p_{name}": p for name, p in augment.Probabilities()._asdict().items()},
)


def make_parser() -> argparse.ArgumentParser:
    """Every default is None here, so that a resumed run can tell what was given again."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    def add(group, flag, help_text, **kw):
        dest = flag.lstrip("-").replace("-", "_")
        if DEFAULTS[dest] not in (None, False):
            help_text += f" (default: {DEFAULTS[dest]})"
        group.add_argument(flag, default=None, help=help_text, **kw)

    net = p.add_argument_group("network (fixed by the checkpoint when resuming)")
    net.add_argument("--config", choices=sorted(hfam.PRESETS), default=None,
                     help=f"preset of reference/hfam.py (default: {DEFAULTS['config']})")
    net.add_argument("--depth", type=int, choices=sorted(hfam.ENCODER_BLOCKS), default=None,
                     help="override the preset's encoder depth")
    net.add_argument("--stride-in-1x1", action="store_true", default=None,
                     help="bottleneck stride on the first 1x1 (Caffe/Keras ResNet v1)")
    net.add_argument("--input-caffe", action="store_true", default=None,
                     help="Caffe input: BGR, 0..255, mean 103.939 116.779 123.68, std 1")
    net.add_argument("--encoder-init", metavar="FILE", default=None,
                     help="state_dict with the reference's encoder.* names (converted ImageNet "
                          "weights); without it the encoder is Kaiming-initialised too")

    io = p.add_argument_group("data and run folder")
    add(io, "--fg", "foregrounds: DIR/NAME.png (RGBA) or DIR/fg/NAME.* + DIR/alpha/NAME.png",
        metavar="DIR")
    add(io, "--bg", "backgrounds: DIR/*.{jpg,png}; repeat it for several folders",
        metavar="DIR", action="append")
    add(io, "--hold-out-backgrounds", "leave out the backgrounds that pack.py and val_folder.py "
        "hold out for validation at this fraction (0: train on all)", type=float)
    add(io, "--val", "validation: DIR/image/NAME.* + DIR/alpha/NAME.png", metavar="DIR")
    add(io, "--out", "run folder (checkpoint.pt, train.csv, val.csv, curves.png)",
        metavar="RUN_DIR")
    io.add_argument("--resume", nargs="?", const="", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default: RUN_DIR/checkpoint.pt)")

    opt = p.add_argument_group("optimisation")
    add(opt, "--steps", "total optimiser steps, counting those before a resume", type=int)
    add(opt, "--batch", "batch size (at least 2: BatchNorm on MFEM's 1x1 maps)", type=int)
    add(opt, "--lr", "Adam learning rate (constant)", type=float)
    add(opt, "--weight-decay", "Adam weight decay (L2, as torch.optim.Adam)", type=float)
    add(opt, "--beta1", "Adam beta1", type=float)
    add(opt, "--beta2", "Adam beta2", type=float)
    add(opt, "--w-ce", "weight of the semantic cross-entropy", type=float)
    add(opt, "--w-unknown", "weight of the unknown-region Charbonnier loss", type=float)
    add(opt, "--w-fused", "weight of L1 + (1 - SSIM) on the fused matte", type=float)
    add(opt, "--size", "training crop size in px, a multiple of 32", type=int)
    add(opt, "--per-fg", "samples (backgrounds) per foreground per epoch", type=int)
    add(opt, "--seed", "seed of the initialisation and of the data", type=int)

    aug = p.add_argument_group("augmentations (augment.py): the probability of each per sample, "
                               "0 turns it off")
    for name, description in augment.DESCRIPTIONS._asdict().items():
        add(aug, augment.option(name), description, type=float)

    run = p.add_argument_group("running")
    add(run, "--device", "auto: cuda when available", choices=("auto", "cpu", "cuda"))
    add(run, "--amp", "mixed precision (fp16 autocast, CUDA only)", action="store_true")
    add(run, "--threads", "CPU threads of torch (0: all cores)", type=int)
    add(run, "--workers", "data loader processes", type=int)
    add(run, "--val-every", "validate every N steps (and at the end)", type=int)
    add(run, "--val-size", "long side of the validation input (default: the config's "
        "inference_size, as the engine)", type=int)
    add(run, "--save-every", "write checkpoint.pt every N steps (and at the end)", type=int)
    add(run, "--keep-checkpoints", "also keep checkpoint-STEP.pt at every save",
        action="store_true")
    return p


def resolve_args(argv=None):
    """(options, checkpoint or None): given options, else the checkpoint's, else DEFAULTS."""
    parser = make_parser()
    given = vars(parser.parse_args(argv))
    state = None
    if given["resume"] is not None:
        if given["resume"] == "" and given["out"] is None:
            parser.error("--resume without a file needs --out")
        path = given["resume"] or os.path.join(given["out"], "checkpoint.pt")
        state = ckpt.load(path)
        fixed = [k for k in ARCHITECTURE if given[k] is not None]
        if fixed:
            parser.error(f"--{fixed[0].replace('_', '-')}: the network comes from the checkpoint")
        stored = state["args"]
    else:
        stored = {}
    args = argparse.Namespace(**{k: next((v for v in (given.get(k), stored.get(k))
                                          if v is not None), DEFAULTS[k])
                                 for k in DEFAULTS})
    args.resume = given["resume"]
    for name in ("fg", "bg", "out"):
        if getattr(args, name) is None:
            parser.error(f"--{name} is required")
    if isinstance(args.bg, str):  # a checkpoint from before --bg could be repeated
        args.bg = [args.bg]
    if args.size % 32 or args.size < 32:
        parser.error("--size must be a positive multiple of 32")
    if args.batch < 2:
        parser.error("--batch must be at least 2")
    if args.resume is None and os.path.exists(os.path.join(args.out, "checkpoint.pt")):
        parser.error(f"{args.out} holds a checkpoint: --resume it or choose another --out")
    return args, state


def build_config(args) -> hfam.HfamConfig:
    config = hfam.PRESETS[args.config]()
    if args.depth is not None:
        config = dataclasses.replace(config, encoder_depth=args.depth)
    if args.stride_in_1x1:
        config = dataclasses.replace(config, stride_in_1x1=True)
    if args.input_caffe:
        config = dataclasses.replace(config, **CAFFE_INPUT)
    return config


def kaiming_init(model: nn.Module) -> None:
    """HFAM.md: everything not ImageNet-initialised is Gaussian (Kaiming) initialised."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def load_encoder(model: hfam.HFAM, path: str, state: Optional[Dict] = None) -> int:
    """Loads encoder.* tensors (all of the encoder's) from `path`, or from `state` (read from
    `path`) when given; returns how many."""
    if state is None:
        state = ckpt.torch_load(path)
        state = state.get("state_dict", state)
    foreign = [k for k in state if not k.startswith("encoder.")]
    if foreign:
        raise ValueError(f"{path}: not an encoder state_dict (e.g. {foreign[0]})")
    # Keras convolutions have biases; BN(conv(x) + b) moves b into the running mean.
    state = export.absorb_conv_biases(model, state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing
               if k.startswith("encoder.") and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return len(state)


class KeySampler(torch.utils.data.Sampler):
    """Yields the sample keys of the current epoch (set before each pass), so that persistent
    worker processes survive from one epoch to the next."""

    def __init__(self):
        self.keys: List = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return len(self.keys)


class CsvLog:
    """Appends rows; on resume keeps only the rows up to the checkpoint's step."""

    def __init__(self, path: str, fields: List[str], keep_until: Optional[int]):
        self.path, self.fields = path, fields
        rows = []
        if keep_until is not None and os.path.isfile(path):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_until]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: Dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)


class PlainProgress:
    """tqdm's interface, reduced to what train() uses: a line on stderr every 10 s."""

    def __init__(self, total: int, initial: int):
        self.n, self.total, self.last, self.text = initial, total, 0.0, ""

    def update(self, n: int) -> None:
        self.n += n
        if time.time() - self.last >= 10 or self.n == self.total:
            self.last = time.time()
            print(f"step {self.n}/{self.total} {self.text}", file=sys.stderr, flush=True)

    def set_postfix_str(self, text: str, refresh: bool = False) -> None:
        self.text = text

    def close(self) -> None:
        pass


def say(text: str) -> None:
    """A message on stderr that does not break the progress bar."""
    if tqdm is None or not sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)
    else:
        tqdm.write(text, file=sys.stderr)


def progress_bar(total: int, initial: int):
    """tqdm on a terminal; in a log file, a plain line every 10 s."""
    if tqdm is None or not sys.stderr.isatty():
        return PlainProgress(total, initial)
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0,
                file=sys.stderr)


@torch.no_grad()
def validate(model: hfam.HFAM, images: List[data.ValidationImage], long_side: int,
             device: torch.device) -> Dict[str, float]:
    """Mean of metrics.all_metrics over the images, each matted as the engine does: resized
    to the inference size, alpha_p resized back to the image (hfam.matte, on `device`)."""
    model.eval()
    totals: Dict[str, float] = {}
    for im in images:
        x = hfam.preprocess(im.rgb, model.config, long_side).to(device)
        fused = model(x)["fused"].float().cpu()
        pred = F.interpolate(fused, size=im.alpha.shape, mode="bilinear", align_corners=False,
                             antialias=True)[0, 0].double().clamp(0, 1).numpy()
        for k, v in metrics.all_metrics(pred, im.alpha).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    model.train()
    return {k: v / len(images) for k, v in totals.items()}


def make_scaler(enabled: bool):
    # torch.amp.GradScaler is PyTorch >= 2.3; torch.cuda.amp's is deprecated there.
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def train(args, state) -> int:
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if args.amp and device.type != "cuda":
        raise SystemExit("--amp needs --device cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(args.seed)
    if state is None:
        config = build_config(args)
        model = hfam.HFAM(config)
        kaiming_init(model)
        if args.encoder_init:
            n = load_encoder(model, args.encoder_init)
            say(f"encoder: {n} tensors from {args.encoder_init}")
    else:
        config = ckpt.config_of(state)
        model = hfam.HFAM(config)
        model.load_state_dict(state["state_dict"])
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2),
                                 weight_decay=args.weight_decay)
    scaler = make_scaler(args.amp)
    step, epoch, epoch_sample = 0, 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the options of this run, not the stored ones
            group.update(lr=args.lr, betas=(args.beta1, args.beta2),
                         weight_decay=args.weight_decay)
        if args.amp and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        step, epoch, epoch_sample = state["step"], state["epoch"], state["epoch_sample"]
        ckpt.set_rng_state(state["rng"])
        say(f"resumed at step {step} (epoch {epoch}, sample {epoch_sample})")

    augmentations = augment.from_options(args)
    dataset = data.CompositeDataset(
        args.fg, args.bg, args.size, args.per_fg, args.seed, augmentations,
        held_out=lambda name: pack.held_out(name, args.hold_out_backgrounds))
    if dataset.epoch_length() < args.batch:
        raise SystemExit(f"an epoch has {dataset.epoch_length()} samples, fewer than a batch")
    sampler = KeySampler()
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch, sampler=sampler, drop_last=True,
        num_workers=args.workers, persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda")
    val_images = data.load_validation(args.val) if args.val else []
    val_size = args.val_size or config.inference_size
    criterion = losses.HfamLoss(args.w_ce, args.w_unknown, args.w_fused)

    def autocast():
        return torch.autocast("cuda", dtype=torch.float16) if args.amp \
            else contextlib.nullcontext()

    n_params = sum(p.numel() for p in model.parameters())
    say(f"ResNet-{config.encoder_depth} HFAM, {n_params / 1e6:.2f} M parameters, on {device}"
        f"{' (AMP)' if args.amp else ''}, {torch.get_num_threads()} threads; "
        f"{len(dataset.foregrounds)} foregrounds x {args.per_fg} over "
        f"{len(dataset.backgrounds)} backgrounds at {args.size} px: "
        f"{dataset.epoch_length() // args.batch} steps per epoch of batch {args.batch}; "
        f"{len(val_images)} validation images at long side {val_size}")

    resumed_at = step if state is not None else None
    train_log = CsvLog(os.path.join(args.out, "train.csv"),
                       ["step", "epoch", "loss", "ce", "unknown", "fused", "lr", "img_per_s",
                        "time"], resumed_at)
    val_log = None

    def run_validation():
        nonlocal val_log
        start = time.time()
        result = validate(model, val_images, val_size, device)
        if val_log is None:
            val_log = CsvLog(os.path.join(args.out, "val.csv"),
                             ["step", *result, "images", "seconds"], resumed_at)
        val_log.write(dict(result, step=step, images=len(val_images),
                           seconds=f"{time.time() - start:.2f}"))
        say(f"validation at step {step}: " +
            ", ".join(f"{k} {v:.5g}" for k, v in result.items()))
        plot.plot_run(args.out)

    def save():
        checkpoint = dict(config=config.to_metadata(), state_dict=model.state_dict(),
                          optimizer=optimizer.state_dict(),
                          scaler=scaler.state_dict() if args.amp else {},
                          step=step, epoch=epoch, epoch_sample=epoch_sample,
                          args={k: getattr(args, k) for k in DEFAULTS if k not in MACHINE},
                          rng=ckpt.rng_state())
        ckpt.save(os.path.join(args.out, "checkpoint.pt"), checkpoint)
        if args.keep_checkpoints:
            ckpt.save(os.path.join(args.out, f"checkpoint-{step:07d}.pt"), checkpoint)

    bar = progress_bar(args.steps, step)
    rate = None
    last = time.time()
    while step < args.steps:
        sampler.keys = dataset.epoch_keys(epoch)[epoch_sample:]
        for batch in loader:
            image = batch["image"].to(device, non_blocking=True)
            alpha = batch["alpha"].to(device, non_blocking=True)
            trimap = batch["trimap"].to(device, non_blocking=True)
            with autocast():
                out = model(data.normalise(image, config))
            loss, terms = criterion(out, alpha, trimap)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_value = loss.item()
            if not np.isfinite(loss_value):
                raise SystemExit(f"step {step + 1}: the loss is {loss_value}")

            step += 1
            epoch_sample += args.batch
            now = time.time()
            speed = args.batch / (now - last)
            last = now
            rate = speed if rate is None else 0.9 * rate + 0.1 * speed
            train_log.write(dict(step=step, epoch=epoch, loss=f"{loss_value:.6g}",
                                 **{k: f"{v:.6g}" for k, v in terms.items()}, lr=args.lr,
                                 img_per_s=f"{speed:.4g}", time=f"{now:.3f}"))
            bar.set_postfix_str(f"loss {loss_value:.4f} ce {terms['ce']:.4f} "
                                f"u {terms['unknown']:.4f} f {terms['fused']:.4f} "
                                f"{rate:.2f} img/s", refresh=False)
            bar.update(1)
            if val_images and step % args.val_every == 0:
                run_validation()
            if step % args.save_every == 0 or step == args.steps:
                save()
            last = time.time()  # validation and saving are not training throughput
            if step >= args.steps:
                break
        else:
            epoch, epoch_sample = epoch + 1, 0
    if val_images and step % args.val_every:
        run_validation()
    plotted = plot.plot_run(args.out)
    bar.close()
    say(f"{args.out}: step {step}, checkpoint.pt, train.csv" +
        (", val.csv" if val_images else "") + (", curves.png" if plotted else ""))
    return 0


def main(argv=None) -> int:
    args, state = resolve_args(argv)
    return train(args, state)


if __name__ == "__main__":
    sys.exit(main())

"""Trains HFAM on a lent GPU within a fixed time, with every sample cropped and resized on the GPU
from a pack of pack.py (the GPU machine has no network and 16 cores: decoding and resizing the
sources on the CPU would starve it). Same network, losses, trimap rule, optimiser and
augmentations as train.py; what differs is said in README.md, "Training on a lent GPU".

    python3 model/python/train/train_device.py --pack PACK --out RUN --seconds 420
        [--config r50-slim]

Samples: each epoch gives every training person --per-fg samples, each with its own pack
background drawn without replacement, in a shuffled order (data.epoch_keys, as train.py). A
sample is, with probability --p-real, the photo itself (its own real background) with the
teacher's alpha; with probability --p-pair the teacher foreground over another training photo,
the target then covering both people, g + (1 - g) g_B; else the teacher foreground composited
over the sample's background, I = g F + (1 - g) B. Each is a random square crop (side U(0.5, 1)
of the short side) resized to --size, flipped with p = 0.5 (the background independently); so
the person always fills most of the picture. With probability --p-zoom a composite shows the
whole photo's person small instead (zoom_out: long side U(0.25, 0.75) of --size, kept against
the edges its alpha touches), as a distant person or a second one is.
augment.py's augmentations follow, with train.py's --p-NAME options, defaults and per-sample
seeds (augment.draw: the foreground harmonised to the background, then blur, exposure, noise
and JPEG; a real photo is only degraded), applied on the GPU too (augment_device.py) while the
previous batch trains. The trimap target of data.make_trimap (discs of diameter k, k in 10..30
px at 512) is computed by convolution.
The learning rate warms up over 100 steps and then follows a cosine to 1 % over --seconds.
With --init FILE the run starts from a folded weight file (the default model, say) instead of
the ImageNet encoder: each BatchNorm becomes the identity plus the folded bias and stays in
eval mode (its affine parameters still learn), so the start computes exactly FILE's network.

Validation, on the held-out photos of split.json (teacher alpha is the target, not a human's):
'real' (the photos as they are) and 'composite' (each over two held-out backgrounds), SAD and
MSE as hfam-eval counts them, matted as the engine does (inference size, alpha resized back).
At the end the inference size and the precision are chosen on that split; RUN gets
model.safetensors (fp16, folded; the config's inference_size set to the choice), train.csv,
val.csv, choice.json, curves.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

import augment  # noqa: E402
import augment_device  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
import hfam  # noqa: E402
import losses  # noqa: E402
import pack  # noqa: E402
import plot  # noqa: E402
import train  # noqa: E402
import weights  # noqa: E402


@torch.no_grad()
def unfold_into(model: hfam.HFAM, path: str) -> None:
    """Loads a folded weight file into the trainable network: convolution weights as they are;
    a convolution's BatchNorm set to the identity (mean 0, variance 1, gain sqrt(1 + eps)) with
    the folded bias as its shift, so that in eval mode the network computes the file's. The
    activation ranges of a calibrated file (NAME.act_max, for int8 inference) are not weights."""
    tensors, _ = weights.read_safetensors(path)
    tensors = {name: t for name, t in tensors.items() if not name.endswith(".act_max")}
    modules = dict(model.named_modules())
    for name, conv in model.named_modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        conv.weight.copy_(torch.from_numpy(tensors.pop(f"{name}.weight")))
        bias = torch.from_numpy(tensors.pop(f"{name}.bias"))
        bn = modules.get(hfam.batchnorm_of(name))
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(math.sqrt(1.0 + bn.eps))
            bn.bias.copy_(bias)
        else:
            conv.bias.copy_(bias)
    if tensors:
        raise SystemExit(f"{path}: tensors the network does not have: {sorted(tensors)[:3]}")


def train_mode(model: nn.Module, frozen_batchnorm: bool) -> None:
    model.train()
    if frozen_batchnorm:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def load_u8(path: str, device) -> torch.Tensor:
    """An image file -> uint8 (C, H, W) on `device` (RGB, or 1 channel for grey)."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("L" if im.mode in ("L", "I", "I;16") else "RGB"))
    t = torch.from_numpy(a.copy())
    return (t[None] if t.dim() == 2 else t.permute(2, 0, 1)).contiguous().to(device)


def random_box(h: int, w: int, g: torch.Generator) -> Tuple[int, int, int]:
    short = min(h, w)
    side = max(1, int(short * (0.5 + 0.5 * torch.rand((), generator=g).item())))
    y = int(torch.randint(0, h - side + 1, (), generator=g))
    x = int(torch.randint(0, w - side + 1, (), generator=g))
    return y, x, side


def crop_resize(t: torch.Tensor, box, size: int) -> torch.Tensor:
    y, x, side = box
    c = t[:, y:y + side, x:x + side][None].float()
    return F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=side > size)[0]


def zoom_out(fg: torch.Tensor, alpha: torch.Tensor, size: int,
             g: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """A whole photo's foreground and alpha (uint8, C x H x W) made small on a size x size
    canvas (float in [0, 1], 0 around it): long side U(0.25, 0.75) of size, placed at random
    but against the bottom (else the top) and the left (else the right) edge of the canvas
    where its alpha touches that edge of the photo (a portrait cut by the photo's bottom edge
    stands on the canvas's), so that no cut shows in mid-picture."""
    h, w = alpha.shape[1:]
    scale = (0.25 + 0.5 * torch.rand((), generator=g).item()) * size / max(h, w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    y = int(torch.randint(0, size - sh + 1, (), generator=g))
    x = int(torch.randint(0, size - sw + 1, (), generator=g))
    touch = 0.1 * 255
    if alpha[0, -1].max() > touch:
        y = size - sh
    elif alpha[0, 0].max() > touch:
        y = 0
    if alpha[0, :, 0].max() > touch:
        x = 0
    elif alpha[0, :, -1].max() > touch:
        x = size - sw
    out = []
    for t in (fg, alpha):
        small = F.interpolate(t[None].float(), size=(sh, sw), mode="bilinear",
                              align_corners=False, antialias=True)[0]
        canvas = torch.zeros((t.shape[0], size, size), device=t.device)
        canvas[:, y:y + sh, x:x + sw] = small.clamp(0, 255) / 255
        out.append(canvas)
    return out[0], out[1]


def trimap(alpha: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """data.make_trimap for a batch (B, 1, S, S), one k per sample: a pixel is foreground when
    no pixel within distance k/2 is short of opaque, background when none within k/2 is
    covered; outside the image counts as neither (zero padding)."""
    tol = data.ALPHA_TOLERANCE
    out = torch.full(alpha.shape[:1] + alpha.shape[2:], data.UNKNOWN, dtype=torch.long,
                     device=alpha.device)
    for i in range(alpha.shape[0]):
        r = float(k[i]) / 2
        R = int(math.floor(r))
        yy, xx = torch.meshgrid(torch.arange(-R, R + 1, device=alpha.device),
                                torch.arange(-R, R + 1, device=alpha.device), indexing="ij")
        disc = ((yy * yy + xx * xx) <= r * r).float()[None, None]
        a = alpha[i:i + 1].float()
        near_clear = F.conv2d((a < 1 - tol).float(), disc, padding=R)[0, 0] > 0.5
        near_cover = F.conv2d((a > tol).float(), disc, padding=R)[0, 0] > 0.5
        out[i][~near_clear] = data.FOREGROUND
        out[i][~near_cover] = data.BACKGROUND
    return out


class DeviceSamples:
    """The training photos, their teacher foregrounds and alphas, and the backgrounds, all as
    uint8 on the GPU. Each epoch gives every person `per_person` samples, each with its own
    background (data.epoch_keys, as train.py). Everything runs on the device: crops and
    resizes, and harmonisation, the composite and the degradations (augment_device.pictures)
    as augment.draw chooses them for each sample from data.augmentation_rng(seed, epoch,
    position); the noise fields come from a generator of the device's seeded with `seed`."""

    def __init__(self, pack_dir: str, names: List[str], backgrounds: List[str], device,
                 seed: int, per_person: int = 20,
                 augmentations: augment.Probabilities = augment.OFF):
        self.photos = [load_u8(os.path.join(pack_dir, "image", n + ".jpg"), device) for n in names]
        self.fgs = [load_u8(os.path.join(pack_dir, "fg", n + ".jpg"), device) for n in names]
        self.alphas = [load_u8(os.path.join(pack_dir, "alpha", n + ".png"), device) for n in names]
        self.bgs = [load_u8(os.path.join(pack_dir, "bg", n + ".jpg"), device) for n in backgrounds]
        for n, p, f, a in zip(names, self.photos, self.fgs, self.alphas):
            if p.shape[1:] != a.shape[1:] or f.shape[1:] != a.shape[1:]:
                raise SystemExit(f"{n}: photo {tuple(p.shape)}, fg {tuple(f.shape)} and alpha "
                                 f"{tuple(a.shape)} differ in size")
        self.g = torch.Generator().manual_seed(seed)
        self.device = device
        self.seed = seed
        self.per_person = per_person
        self.augmentations = augmentations
        self.noise = torch.Generator(device).manual_seed(seed)
        self.stream = torch.cuda.Stream(device) if torch.device(device).type == "cuda" else None
        self.epoch = 0
        self.keys: List[Tuple[int, int, int, int]] = []

    def next_key(self) -> Tuple[int, int, int, int]:
        """(epoch, position, person, background) of the next sample."""
        if not self.keys:
            self.keys = data.epoch_keys(self.seed, self.epoch, len(self.alphas), len(self.bgs),
                                        self.per_person)[::-1]
            self.epoch += 1
        return self.keys.pop()

    def crops(self, size: int, p_real: float, p_pair: float, p_zoom: float = 0.0):
        """One sample's GPU part: (key, foreground or photo, alpha, background or None, target),
        float in [0, 1], flipped together."""
        g = self.g
        key = self.next_key()
        _, _, i, b = key
        h, w = self.alphas[i].shape[1:]
        box = random_box(h, w, g)
        a = crop_resize(self.alphas[i], box, size).clamp(0, 255) / 255
        target = a
        r = torch.rand((), generator=g).item()
        if r < p_real:
            fg, bg = crop_resize(self.photos[i], box, size).clamp(0, 255) / 255, None
        else:
            fg = crop_resize(self.fgs[i], box, size).clamp(0, 255) / 255
            if r < p_real + p_pair:
                # over another training photo: a real scene, its person included in the target
                j = int(torch.randint(0, len(self.alphas), (), generator=g))
                box_j = random_box(*self.alphas[j].shape[1:], g)
                bg = crop_resize(self.photos[j], box_j, size).clamp(0, 255) / 255
                a_j = crop_resize(self.alphas[j], box_j, size).clamp(0, 255) / 255
                if torch.rand((), generator=g).item() < 0.5:
                    bg, a_j = bg.flip(-1), a_j.flip(-1)
                target = a + (1 - a) * a_j
            else:
                bg_t = self.bgs[b]
                bg = crop_resize(bg_t, random_box(*bg_t.shape[1:], g), size).clamp(0, 255) / 255
                if torch.rand((), generator=g).item() < 0.5:
                    bg = bg.flip(-1)
                # drawn only where asked for, so that runs without it repeat as before
                if p_zoom > 0 and torch.rand((), generator=g).item() < p_zoom:
                    fg, a = zoom_out(self.fgs[i], self.alphas[i], size, g)
                    target = a
        if torch.rand((), generator=g).item() < 0.5:
            fg, a, target = fg.flip(-1), a.flip(-1), target.flip(-1)
            bg = None if bg is None else bg.flip(-1)
        return key, fg, a, bg, target

    def batch(self, n: int, size: int, p_real: float, p_pair: float = 0.0, p_zoom: float = 0.0):
        """images (n, 3, S, S) in [0, 1], alphas (n, 1, S, S), trimaps (n, S, S), and the epoch
        of the last sample. On CUDA made on a stream of its own, so that it overlaps the
        training step queued before it."""
        with torch.cuda.stream(self.stream):  # no-op for None (the CPU)
            parts = [self.crops(size, p_real, p_pair, p_zoom) for _ in range(n)]
            draws = [augment.draw(data.augmentation_rng(self.seed, key[0], key[1]),
                                  self.augmentations, size / 512, composited=bg is not None)
                     for key, _, _, bg, _ in parts]
            images = augment_device.pictures([fg for _, fg, *_ in parts],
                                             [a for _, _, a, *_ in parts],
                                             [bg for *_, bg, _ in parts], draws, self.noise)
            k = torch.randint(data.TRIMAP_K_AT_512[0], data.TRIMAP_K_AT_512[1] + 1, (n,),
                              generator=self.g).float() * size / 512
            alpha = torch.stack([target for *_, target in parts])
            out = (images, alpha, trimap(alpha, k))
        if self.stream is not None:
            self.stream.synchronize()
            for t in out:  # used and freed on the training stream: no reuse before it is done
                t.record_stream(torch.cuda.default_stream(self.device))
        return (*out, parts[-1][0][0])


def validation_set(pack_dir: str, names: List[str], backgrounds: List[str],
                   wallpapers: Sequence[str] = ()):
    """[(kind, rgb uint8 H x W x 3, alpha float64 H x W)]: each held-out photo as it is
    ("real"), composited over two held-out backgrounds ("composite") and, where the pack has
    held-out wallpapers, over one of them ("wallpaper": DEV's composites are over wallpapers,
    and a run can gain on photographs while it loses there); backgrounds cover-resized,
    centred."""
    out = []
    for j, n in enumerate(names):
        photo = np.asarray(Image.open(os.path.join(pack_dir, "image", n + ".jpg")).convert("RGB"))
        fg = np.asarray(Image.open(os.path.join(pack_dir, "fg", n + ".jpg")).convert("RGB"))
        alpha = np.asarray(Image.open(os.path.join(pack_dir, "alpha", n + ".png")).convert("L"))
        a = alpha.astype(np.float64) / 255
        out.append(("real", photo, a))
        h, w = a.shape
        over = [("composite", backgrounds[k % len(backgrounds)]) for k in (2 * j, 2 * j + 1)]
        if wallpapers:
            over.append(("wallpaper", wallpapers[j % len(wallpapers)]))
        for kind, b in over:
            bg = Image.open(os.path.join(pack_dir, "bg", b + ".jpg")).convert("RGB")
            s = max(w / bg.width, h / bg.height)
            bg = bg.resize((max(w, round(bg.width * s)), max(h, round(bg.height * s))),
                           Image.BILINEAR)
            x0, y0 = (bg.width - w) // 2, (bg.height - h) // 2
            bgn = np.asarray(bg)[y0:y0 + h, x0:x0 + w].astype(np.float64)
            comp = a[..., None] * fg + (1 - a[..., None]) * bgn
            out.append((kind, np.clip(np.round(comp), 0, 255).astype(np.uint8), a))
    return out


@torch.no_grad()
def evaluate(model, val, long_side: int, half: bool, device: str,
             frozen_batchnorm: bool) -> Dict[str, float]:
    """Mean SAD (/1000) and MSE per kind, matted as the engine does. Without cuDNN's autotuner:
    every image has its own size, and tuning each costs seconds."""
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    model.eval()
    sums: Dict[str, List[float]] = {}
    for kind, rgb, a in val:
        x = hfam.preprocess(rgb, model.config, long_side).to(device)
        with torch.autocast(device, dtype=torch.float16 if device == "cuda" else torch.bfloat16,
                            enabled=half):
            fused = model(x.contiguous(memory_format=torch.channels_last))["fused"].float()
        pred = F.interpolate(fused, size=a.shape, mode="bilinear", align_corners=False,
                             antialias=True)[0, 0].clamp(0, 1).double()
        gt = torch.from_numpy(a).to(pred.device)
        d = pred - gt
        sums.setdefault(f"{kind}_sad", []).append(float(d.abs().sum()) / 1000)
        sums.setdefault(f"{kind}_mse", []).append(float((d * d).mean()))
    train_mode(model, frozen_batchnorm)
    torch.backends.cudnn.benchmark = benchmark
    return {k: float(np.mean(v)) for k, v in sums.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pack", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, required=True, help="training time")
    p.add_argument("--config", default="r50-slim", choices=sorted(hfam.PRESETS))
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--p-real", type=float, default=0.3)
    p.add_argument("--p-pair", type=float, default=0.0,
                   help="share of samples composited over another training photo (its person "
                        "joins the target); 0 for the shipped model, untried so far")
    p.add_argument("--p-zoom", type=float, default=0.0,
                   help="share of the composites that show the whole person small (a quarter "
                        "to three quarters of the crop), as distant and second people are; 0 "
                        "for the shipped model, tried in one CPU sitting (README.md)")
    p.add_argument("--per-fg", type=int, default=train.DEFAULTS["per_fg"],
                   help="samples (backgrounds) per person per epoch (default: %(default)s)")
    for name, default in augment.Probabilities()._asdict().items():
        p.add_argument(augment.option(name), type=float, default=default,
                       help=f"{getattr(augment.DESCRIPTIONS, name)} (default: %(default)s)")
    p.add_argument("--val-every", type=float, default=90, help="seconds")
    p.add_argument("--sizes", default="320,384,448,512", help="inference sizes to choose from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda",
                   help="cuda; cpu for a smoke test, or for the slow fine-tune that issue 19 "
                        "allows without a GPU (with --init and --freeze-encoder)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch's CPU threads (0: torch's own choice)")
    p.add_argument("--init", metavar="FILE",
                   help="start from this folded weight file (its configuration), not ImageNet")
    p.add_argument("--freeze-encoder", type=int, nargs="?", const=4, default=0,
                   choices=range(1, 5), metavar="STAGES",
                   help="keep the stem and the first STAGES of the encoder's 4 stages as --init "
                        "has them (default 4: train MFEM, the decoders and the fusion only; a "
                        "CPU fine-tune's backward pass is then a fraction of the network's)")
    args = p.parse_args(argv)
    if args.freeze_encoder and not args.init:
        p.error("--freeze-encoder needs --init: a frozen encoder must come from trained weights")
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.time()
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True
    os.makedirs(args.out, exist_ok=True)
    split = json.load(open(os.path.join(args.pack, "split.json")))
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(args.pack, "alpha")))
    bgs = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(args.pack, "bg")))
    train_names = [n for n in names if n not in split["val"]]
    val_wallpapers = split.get("val_wallpapers", [])  # packs of before 2026-12-07 have none
    train_bgs = [b for b in bgs if b not in split["val_backgrounds"] and b not in val_wallpapers]
    val = validation_set(args.pack, split["val"], split["val_backgrounds"], val_wallpapers)
    augmentations = augment.from_options(args)
    samples = DeviceSamples(args.pack, train_names, train_bgs, args.device, args.seed,
                            args.per_fg, augmentations)

    if args.init:
        config = hfam.HfamConfig.from_metadata(weights.read_safetensors(args.init)[1])
        model = hfam.HFAM(config)
        unfold_into(model, args.init)
        start_from = f"weights of {args.init}, BatchNorms frozen"
    else:
        config = dataclasses.replace(hfam.PRESETS[args.config](), **train.CAFFE_INPUT,
                                     stride_in_1x1=True)
        model = hfam.HFAM(config)
        train.kaiming_init(model)
        enc = pack.dequantise_encoder(torch.load(os.path.join(args.pack, "encoder.pt")))
        n_enc = train.load_encoder(model, os.path.join(args.pack, "encoder.pt"), enc)
        start_from = f"ImageNet encoder, {n_enc} tensors (int8 pack)"
    frozen = bool(args.init)
    model = model.to(args.device, memory_format=torch.channels_last)
    train_mode(model, frozen)
    if args.freeze_encoder:
        model.encoder.requires_grad_(False)
        for stage in range(args.freeze_encoder + 1, 5):
            getattr(model.encoder, f"layer{stage}").requires_grad_(True)
        start_from += (", encoder frozen" if args.freeze_encoder == 4 else
                       f", encoder frozen to stage {args.freeze_encoder}")
    trained = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.Adam(trained, lr=args.lr, weight_decay=args.weight_decay)
    criterion = losses.HfamLoss()
    n_params = sum(q.numel() for q in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters ({sum(q.numel() for q in trained) / 1e6:.2f} M "
          f"trained), from the {start_from}; "
          f"{len(train_names)} training photos, {len(train_bgs)} backgrounds, "
          f"{args.per_fg} samples per person per epoch; augmentations {augmentations}; "
          f"validation: {len(split['val'])} photos, {len(val)} images; set up in "
          f"{time.time() - start:.1f} s", flush=True)

    train_log = train.CsvLog(os.path.join(args.out, "train.csv"),
                             ["step", "epoch", "loss", "ce", "unknown", "fused", "lr",
                              "img_per_s", "time"], None)
    val_log = None

    def validate(step: int) -> None:
        nonlocal val_log
        result = evaluate(model, val, max(args.size, 320), False, args.device, frozen)
        if val_log is None:
            val_log = train.CsvLog(os.path.join(args.out, "val.csv"), ["step", *result], None)
        val_log.write(dict(result, step=step))
        print(f"validation at step {step}: "
              + ", ".join(f"{k} {v:.4g}" for k, v in result.items()), flush=True)

    if args.init:  # the start's figures on this split, the baseline the run has to beat
        validate(0)
    t0 = time.time()
    last_val = t0
    step = 0
    # the next batch is made (crops and augmentations, on a stream of their own) while this
    # one trains
    prefetch = ThreadPoolExecutor(1)

    def next_batch():
        return prefetch.submit(samples.batch, args.batch, args.size, args.p_real, args.p_pair,
                               args.p_zoom)

    pending = next_batch()
    data_wait = 0.0
    while True:
        elapsed = time.time() - t0
        if elapsed >= args.seconds:
            break
        cosine = 0.5 * (1 + math.cos(math.pi * elapsed / args.seconds))
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.01 + 0.99 * cosine)
        for group in opt.param_groups:
            group["lr"] = lr
        ts = time.time()
        image, alpha, tri, epoch = pending.result()
        waited = time.time() - ts
        data_wait += waited
        pending = next_batch()
        x = data.normalise(image, config).contiguous(memory_format=torch.channels_last)
        with torch.autocast(args.device, dtype=torch.bfloat16):
            out = model(x)
        loss, terms = criterion(out, alpha, tri)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if not math.isfinite(loss.item()):
            raise SystemExit(f"step {step}: the loss is {loss.item()}")
        train_log.write(dict(step=step, epoch=epoch, loss=f"{loss.item():.6g}",
                             **{k: f"{v:.6g}" for k, v in terms.items()}, lr=f"{lr:.3g}",
                             img_per_s=f"{args.batch / (time.time() - ts):.4g}",
                             time=f"{time.time():.3f}"))
        if step % 50 == 0:
            print(f"step {step} {elapsed:.0f} s loss {loss.item():.4f} ce {terms['ce']:.4f} "
                  f"u {terms['unknown']:.4f} f {terms['fused']:.4f} lr {lr:.2e} "
                  f"{args.batch / (time.time() - ts):.0f} img/s, {waited * 1000:.0f} ms waiting "
                  f"for data, epoch {epoch}", flush=True)
        if time.time() - last_val >= args.val_every:
            validate(step)
            last_val = time.time()
    print(f"trained {step} steps ({step * args.batch} samples) in {time.time() - t0:.0f} s, "
          f"{data_wait:.0f} s of it waiting for data", flush=True)

    # the inference size and precision, chosen on the validation split
    choices = []
    for long_side in [int(s) for s in args.sizes.split(",")]:
        for half in (False, True):
            r = evaluate(model, val, long_side, half, args.device, frozen)
            r.update(long_side=long_side, precision="fp16" if half else "fp32",
                     score=sum(v for k, v in r.items() if k.endswith("_sad")))
            choices.append(r)
            print("choice " + json.dumps(r), flush=True)
    fp32 = [c for c in choices if c["precision"] == "fp32"]
    best = min(fp32, key=lambda c: c["score"])
    if val_log is None:
        val_log = train.CsvLog(os.path.join(args.out, "val.csv"), ["step", *best], None)
    with open(os.path.join(args.out, "choice.json"), "w") as f:
        json.dump({"chosen": best, "all": choices, "steps": step, "batch": args.batch,
                   "size": args.size, "seconds": args.seconds, "lr": args.lr,
                   "p_real": args.p_real, "p_pair": args.p_pair, "p_zoom": args.p_zoom,
                   "per_fg": args.per_fg,
                   "augmentations": augmentations._asdict(), "config": args.config,
                   "init": args.init, "bg_part": split.get("bg_part"),
                   "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"},
                  f, indent=1)
    plot.plot_run(args.out)

    config = dataclasses.replace(config, inference_size=best["long_side"])
    state_path = os.path.join(args.out, "state.pt")
    torch.save({"state_dict": {k: v.float().cpu() for k, v in model.state_dict().items()}},
               state_path)
    export.export(config, os.path.join(args.out, "model.safetensors"), state_path, dtype="F16")
    os.remove(state_path)
    print(f"{args.out}/model.safetensors: inference size {best['long_side']}; total "
          f"{time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

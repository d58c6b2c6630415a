"""Activation ranges for int8 inference on the CPU: a weight file copied with NAME.act_max added.

The CPU backend runs the encoder and L-BB in int8 (model/README.md, "Activation ranges"): each value
there is stored as q * scale, with scale = act_max / 255 after a ReLU and act_max / 127 otherwise.
act_max is the largest over the calibration pictures of the 99.99th percentile of the value's
magnitudes in a picture (--percentile; 100: the largest magnitude; chosen on validation data,
BENCHMARKS.md), on the held-out photos of the training set (pack.held_out, never the DEV set), run
at the inference size through the PyTorch reference. Tensors: `input.act_max` (the normalised
frame), and `NAME.act_max` for every convolution NAME of the encoder and L-BB, the value after its
residual sum and ReLU; --lbb-fp32 leaves L-BB's out, and the engine then runs L-BB in fp32 (or
bf16). --decoders adds the decoders' group, which the engine then runs in int8 too: MFEM's branches
b0..b3 and its projection (`mfemL.project.conv`, the SK projection's output), the context and PSP
convolutions, and every convolution of both decoders but their last layers.

    /usr/bin/python3 model/python/quant/calibrate.py --model model/default/default.safetensors \\
        --images ../shared/data/people-train/images -o /tmp/calibrated.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from typing import Dict

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
import hfam  # noqa: E402
import weights  # noqa: E402
from pack import held_out  # noqa: E402

SUFFIX = ".act_max"


def frame_peak(value: torch.Tensor, relu: bool, percentile: float) -> float:
    """The percentile of a value's magnitudes in one frame (100: the largest)."""
    magnitudes = (value.clamp_min(0) if relu else value.abs()).flatten()
    if percentile >= 100:
        return float(magnitudes.max())
    rank = max(1, int(np.ceil(percentile / 100 * magnitudes.numel())))
    return float(magnitudes.kthvalue(rank).values)


def range_hooks(model: torch.nn.Module, ranges: Dict[str, float], percentile: float = 100,
                lbb: bool = True, decoders: bool = False):
    """Forward hooks that raise ranges[name] to each value's percentile of magnitudes in a
    frame: the range is the largest of these over the calibration frames. The encoder's
    always, L-BB's and the decoders' group's if asked."""
    encoder = model.encoder
    def keep(name, value, relu):
        peak = frame_peak(value, relu, percentile)
        ranges[name] = max(ranges.get(name, 0.0), peak)

    def on(module, name, relu):
        return module.register_forward_hook(lambda m, i, y: keep(name, y, relu))

    hooks = [encoder.register_forward_pre_hook(lambda m, i: keep("input", i[0], False)),
             on(encoder.conv1, "encoder.conv1", True)]
    for layer in range(1, 5):
        for index, block in enumerate(getattr(encoder, f"layer{layer}")):
            prefix = f"encoder.layer{layer}.{index}"
            convs = ["conv1", "conv2", "conv3"] if hasattr(block, "conv3") else ["conv1", "conv2"]
            # the last convolution's value is the block's output, after the sum and the ReLU
            for c in convs[:-1]:
                hooks.append(on(getattr(block, c), f"{prefix}.{c}", True))
            hooks.append(on(block, f"{prefix}.{convs[-1]}", True))
            if block.downsample is not None:
                hooks.append(on(block.downsample, f"{prefix}.downsample.0", False))
    if lbb:
        for j, layer in enumerate(model.lbb):
            hooks.append(on(layer, f"lbb.{j}.conv", True))
    if decoders:
        for level in (2, 3, 4):
            mfem = getattr(model, f"mfem{level}")
            for part in ("b0", "b1", "b2", "b3", "project"):
                hooks.append(on(getattr(mfem, part), f"mfem{level}.{part}.conv", True))
        hooks.append(on(model.context, "context.conv", True))
        for i in range(5):
            hooks.append(on(getattr(model, f"psp{i}"), f"psp{i}.conv", True))
            for decoder in ("semantic", "detail"):
                # the last layers (plain, no ReLU) keep their logits out of int8
                for j, layer in enumerate(getattr(model, f"{decoder}{i}")):
                    if layer.relu:
                        hooks.append(on(layer, f"{decoder}{i}.{j}.conv", True))
    return hooks


def stored_dtype(path: str) -> str:
    """The dtype the exporter wrote the file's weights in (I8: convolutions only), kept."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    dtypes = {v["dtype"] for k, v in header.items() if k.endswith(".weight")}
    return "I8" if "I8" in dtypes else dtypes.pop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="the weight file to calibrate")
    p.add_argument("--images", required=True, help="the training photos (people-train/images)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="pack.py's held-out fraction (its default)")
    p.add_argument("--size", type=int, default=0, help="inference long side (0: the file's)")
    p.add_argument("--percentile", type=float, default=99.99,
                   help="each range is the largest over the photos of this percentile of a "
                        "value's magnitudes in a photo (100: the largest magnitude)")
    p.add_argument("--lbb-fp32", action="store_true",
                   help="leave L-BB's ranges out, so that the engine runs L-BB in fp32")
    p.add_argument("--decoders", action="store_true",
                   help="add the ranges of MFEM, the context and PSP convolutions and the "
                        "decoders, so that the engine runs them in int8 too")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args(argv)

    names = sorted(f for f in os.listdir(args.images)
                   if f.lower().endswith((".jpg", ".jpeg", ".png"))
                   and held_out(os.path.splitext(f)[0], args.val_fraction))
    if not names:
        raise SystemExit(f"{args.images}: no held-out photos")
    tensors, metadata = weights.read_safetensors(args.model)
    tensors = {k: v for k, v in tensors.items() if not k.endswith(SUFFIX)}
    model = hfam.build_folded(hfam.HfamConfig.from_metadata(metadata), tensors)
    ranges: Dict[str, float] = {}
    if args.decoders and args.lbb_fp32:
        # the detail decoder's last block reads L-BB's output in L-BB's range
        raise SystemExit("--decoders needs L-BB's ranges: leave out --lbb-fp32")
    if not 0 < args.percentile <= 100:
        raise SystemExit(f"--percentile {args.percentile}: want a value in (0, 100]")
    hooks = range_hooks(model, ranges, args.percentile, not args.lbb_fp32, args.decoders)
    with torch.no_grad():
        for name in names:
            rgb = np.asarray(Image.open(os.path.join(args.images, name)).convert("RGB"))
            x = hfam.preprocess(rgb, model.config, args.size or None)
            if args.decoders:
                model(x)
                continue
            f = model.encoder(x)
            # L-BB as HFAM.forward runs it; without --decoders the rest needs no ranges
            if not args.lbb_fp32:
                model.lbb(torch.cat([f[0], hfam.up(f[1], f[0].shape[-2:])], dim=1))
    for h in hooks:
        h.remove()
    bad = [k for k, v in ranges.items() if not np.isfinite(v) or v <= 0]
    if bad:
        raise SystemExit(f"{args.model}: no usable range for {', '.join(bad)}")
    for name, peak in ranges.items():
        tensors[name + SUFFIX] = np.array([peak], dtype=np.float32)
    weights.write_safetensors(args.output, tensors, metadata, dtype=stored_dtype(args.model))
    print(f"{args.output}: {len(ranges)} activation ranges from {len(names)} photos; "
          f"input {ranges['input']:.4g}, encoder.conv1 {ranges['encoder.conv1']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

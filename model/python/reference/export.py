"""Writes an HFAM weight file (model/README.md): BatchNorm folded, hyper-parameters as metadata.

    /usr/bin/python3 model/python/reference/export.py --config {tiny,r18,r34,r50,r50-slim,r101}
        [--depth N] [--checkpoint state_dict.pt] [--bn-eps E] [--seed S] [--dtype f32|f16|i8]
        -o OUT.safetensors

Without --checkpoint the network gets random weights (hfam.random_init, seeded). A checkpoint
is a state_dict of the unfolded reference network `hfam.HFAM(config)` (names as model/README.md
before folding), optionally wrapped in {"state_dict": ...}; it may also hold the bias of a
convolution that a BatchNorm follows (`X.conv.bias`, `encoder.layer1.0.conv1.bias`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections import OrderedDict
from typing import Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfam  # noqa: E402
import weights  # noqa: E402


def absorb_conv_biases(model: hfam.HFAM, state: dict) -> dict:
    """Keras ResNets have biased convolutions before their BatchNorms (HFAM.md allows them):
    BN(conv(x) + b) is BN(conv(x)) with running_mean - b, so the bias moves into the mean."""
    state = dict(state)
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and m.bias is None and f"{name}.bias" in state:
            mean = f"{hfam.batchnorm_of(name)}.running_mean"
            state[mean] = state[mean] - state.pop(f"{name}.bias")
    return state


def export(config: hfam.HfamConfig, path: str, checkpoint: Optional[str] = None, seed: int = 0,
           dtype: str = "F32", bn_eps: float = 1e-5) -> "OrderedDict[str, torch.Tensor]":
    """Builds the network (from `checkpoint` or random), folds it in float64 and writes `path`.
    Returns the folded tensors (float64)."""
    model = hfam.HFAM(config)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = bn_eps
    if checkpoint is None:
        hfam.random_init(model, seed)
    else:
        state = torch.load(checkpoint, map_location="cpu")
        state = absorb_conv_biases(model, state.get("state_dict", state))
        model.load_state_dict(state, strict=True)
    folded = hfam.fold_batchnorm(model.double().eval())
    weights.write_safetensors(path, folded, config.to_metadata(), dtype)
    return folded


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(hfam.PRESETS), required=True)
    parser.add_argument("--depth", type=int, choices=sorted(hfam.ENCODER_BLOCKS),
                        help="override the preset's encoder depth")
    parser.add_argument("--checkpoint", help="state_dict of the unfolded network")
    parser.add_argument("--bn-eps", type=float, default=1e-5,
                        help="BatchNorm epsilon of the checkpoint (Keras: 1.001e-5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--dtype", choices=("f32", "f16", "i8"), default="f32",
                        help="i8: convolution weights int8 per output channel, the rest f32")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)

    config = hfam.PRESETS[args.config]()
    if args.depth is not None:
        config = dataclasses.replace(config, encoder_depth=args.depth)
    folded = export(config, args.output, args.checkpoint, args.seed, args.dtype.upper(),
                    args.bn_eps)
    n = sum(t.numel() for t in folded.values())
    print(f"{args.output}: ResNet-{config.encoder_depth} HFAM, {n / 1e6:.2f} M parameters, "
          f"{args.dtype}, {os.path.getsize(args.output) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Writes an HFAM weight file's folded network as ONNX, for ONNX Runtime (hfam-bench's ORT side).

    /usr/bin/python3 model/python/reference/export_onnx.py --model M.safetensors [--size WxH]
        -o OUT.onnx

The network is the reference's folded HFAM in fp32 (an int8 or fp16 file is dequantised as the
reference loads it), traced at one input size (default 512x512): input `input` (1, 3, H, W),
normalised; outputs `logits`, `semantic`, `detail` and `fused` as hfam.HFAM.forward returns
them. Opset 17, which ONNX Runtime 1.17 supports. torch.onnx writes the file itself: the
Python `onnx` package is not needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfam  # noqa: E402
from torch_bench import parse_size  # noqa: E402

OPSET = 17
OUTPUTS = ("logits", "semantic", "detail", "fused")


class AsTuple(torch.nn.Module):
    """The network with its outputs as a tuple in OUTPUTS' order: ONNX outputs are positional."""

    def __init__(self, model: hfam.HFAM):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return tuple(out[name] for name in OUTPUTS)


def export_onnx(model: hfam.HFAM, width: int, height: int, path: str) -> None:
    x = torch.zeros(1, 3, height, width)
    # torch 1.13 warns of its own constants' missing shape inference; the shapes are static.
    warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
    with torch.no_grad():
        torch.onnx.export(AsTuple(model.float().eval()), (x,), path, opset_version=OPSET,
                          input_names=["input"], output_names=list(OUTPUTS),
                          do_constant_folding=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="weight file (safetensors)")
    parser.add_argument("--size", type=parse_size, default=(512, 512), help="WxH (default 512x512)")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    args = parser.parse_args(argv)

    model = hfam.load_folded(args.model)
    w, h = args.size
    export_onnx(model, w, h, args.output)
    print(f"{args.output}: ResNet-{model.config.encoder_depth} HFAM at {w}x{h}, opset {OPSET}, "
          f"{os.path.getsize(args.output) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

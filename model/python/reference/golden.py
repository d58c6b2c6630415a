"""Golden test data for the engine: small weight files and the reference outputs on them.

    /usr/bin/python3 model/python/reference/golden.py --outdir DIR

For each case NAME writes DIR/NAME.safetensors (a weight file, F32) and DIR/NAME.golden.safetensors:
  image     U8  (H, W, 3)     the 8-bit RGB frame
  input     F32 (1, 3, H, W)  preprocess(image) at its own size (the resize is an identity)
  semantic  F32 (1, 3, H, W)  P_s
  detail    F32 (1, 1, H, W)  alpha_d
  fused     F32 (1, 1, H, W)  alpha_p
  margin    F32 (1, 1, H, W)  P_s's largest minus second largest probability: where it is
                              small, argmax, and so alpha_p, may legitimately differ
Outputs are those of the folded network with exactly the file's fp32 weights, on exactly the
fp32 input, computed in float64: the mathematically exact function of the file. Weights are
random (hfam.random_init) with non-trivial BatchNorm statistics, folded in float64.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfam  # noqa: E402
import weights  # noqa: E402

# ResNet-18 structure, narrow, with widths that are not multiples of 8 and non-default
# dilations (so that nothing may be hard-wired to the presets).
R18 = hfam.HfamConfig(
    encoder_depth=18, encoder_width=16, mfem_channels=32, sk_width=8,
    mfem_rates=(3, 6, 9, 2, 3, 5, 1, 2, 2),
    context_widths=(32, 24, 16, 12, 8),
    semantic_widths=(48, 40, 24, 24, 24, 20, 20, 16, 12, 12, 12, 8, 8, 8, 3),
    detail_widths=(40, 32, 24, 24, 20, 16, 16, 12, 12, 12, 8, 8, 8, 8, 1),
    lbb_width=12, lbb_dilation=3)

# ResNet-50 structure (bottlenecks, 3-4-6-3 blocks), an eighth of the HFAM.md widths or less.
R50 = hfam.HfamConfig(
    encoder_depth=50, encoder_width=8, mfem_channels=24, sk_width=8,
    context_widths=(24, 16, 16, 8, 8),
    semantic_widths=(48, 32, 24, 24, 16, 16, 16, 12, 8, 8, 8, 8, 8, 8, 3),
    detail_widths=(48, 32, 24, 24, 16, 16, 16, 12, 8, 8, 8, 8, 8, 8, 1),
    lbb_width=8)

# Twice as wide: f0 has 16 channels.
R50_WIDE = dataclasses.replace(R50, encoder_width=16)

# The same with the conventions of the Keras ImageNet ResNet-50: strided 1x1, Caffe input.
R50_CAFFE = dataclasses.replace(
    R50, stride_in_1x1=True, input_order="BGR", input_scale=255.0,
    input_mean=(103.939, 116.779, 123.68), input_std=(1.0, 1.0, 1.0))

# name, configuration, width, height, seed, storage dtype of the weight file
CASES = (
    ("tiny_64x64", hfam.tiny(), 64, 64, 1, "F32"),
    ("tiny_f16_64x64", hfam.tiny(), 64, 64, 1, "F16"),
    ("r18_i8_64x64", R18, 64, 64, 2, "I8"),
    ("r18_64x64", R18, 64, 64, 2, "F32"),
    ("r18_160x96", R18, 160, 96, 3, "F32"),
    ("r50_64x64", R50, 64, 64, 4, "F32"),
    ("r50_160x96", R50_CAFFE, 160, 96, 5, "F32"),
    # MFEM's maps at H/8 large enough for the CPU backend to split them into phase images;
    # f0 in whole channel blocks of AVX-512's layout, so that it runs L-BB's first convolution
    # at f1's size
    ("r50_256x256", R50_WIDE, 256, 256, 6, "F32"),
    # MFEM's maps at 64 x 52 (H/8), sides that 12 (and 8) do not divide: phase images padded
    # with zeros, those of dilation 12 two to an image both across and down
    ("r50_512x416", R50, 512, 416, 7, "F32"),
)

# Sanity bounds on the random network's outputs (the point of the tests is a network that
# uses every path: all three classes, an unsaturated alpha_d, no vanishing activations).
MIN_CLASS_FRACTION = 0.1
MIN_UNSATURATED_FRACTION = 0.5


def make_case(outdir: str, name: str, config: hfam.HfamConfig, width: int, height: int,
              seed: int, dtype: str) -> None:
    rng = np.random.default_rng(seed)
    # The first frame is the golden input; the others only help calibrate the BatchNorms.
    frames = [hfam.random_image(width, height, rng) for _ in range(3)]
    x = torch.cat([hfam.preprocess(f, config, max(width, height), torch.float64) for f in frames])
    model = hfam.random_init(hfam.HFAM(config).double(), seed, x)

    weights_path = os.path.join(outdir, f"{name}.safetensors")
    weights.write_safetensors(weights_path, hfam.fold_batchnorm(model), config.to_metadata(), dtype)
    # the golden outputs are those of the weights as stored (fp16-rounded for an F16 file,
    # dequantised for an I8 one)
    reference = hfam.load_folded(weights_path, torch.float64)
    x0 = x[:1].float()

    with torch.no_grad():
        out = reference(x0.double())
        unfolded = model(x0.double())
        fp32 = hfam.load_folded(weights_path, torch.float32)(x0)
        activations = model.encoder(x0.double())
    top2 = out["semantic"].topk(2, dim=1).values
    margin = top2[:, :1] - top2[:, 1:]

    golden = {"image": frames[0], "input": x0}
    golden.update({k: out[k] for k in ("semantic", "detail", "fused")})
    golden["margin"] = margin
    golden_meta = {"case": name, "weights": os.path.basename(weights_path),
                   "width": str(width), "height": str(height), "seed": str(seed)}
    weights.write_safetensors(os.path.join(outdir, f"{name}.golden.safetensors"),
                              {k: v if isinstance(v, np.ndarray) else v.float()
                               for k, v in golden.items()}, golden_meta, dtype=None)

    # Report, and refuse a degenerate network.
    cls = out["semantic"].argmax(dim=1)
    fractions = [float((cls == k).double().mean()) for k in range(3)]
    detail = out["detail"]
    unsaturated = float(((detail > 0.05) & (detail < 0.95)).double().mean())
    rms = [float(f.pow(2).mean().sqrt()) for f in activations]
    folding_error = max(float((out[k] - unfolded[k]).abs().max()) for k in ("semantic", "detail"))
    tie_free = margin > 1e-3
    fp32_error = {k: float((fp32[k].double() - out[k]).abs().max()) for k in ("semantic", "detail")}
    fp32_error["fused"] = float(((fp32["fused"].double() - out["fused"]).abs() * tie_free).max())
    size = os.path.getsize(weights_path) / 1e6
    print(f"{name}: ResNet-{config.encoder_depth} w{config.encoder_width}, {width}x{height}, "
          f"{size:.1f} MB\n"
          f"  classes bg/unknown/fg {fractions[0]:.2f} {fractions[1]:.2f} {fractions[2]:.2f}; "
          f"alpha_d in (0.05, 0.95) on {unsaturated:.2f}, mean {float(detail.mean()):.2f}\n"
          f"  rms f0..f4 {' '.join(f'{v:.2f}' for v in rms)}\n"
          f"  folded vs unfolded (float64, fp32-rounded weights) {folding_error:.1e}; fp32 PyTorch "
          f"vs golden: " + ", ".join(f"{k} {v:.1e}" for k, v in fp32_error.items()))
    if min(fractions) < MIN_CLASS_FRACTION or unsaturated < MIN_UNSATURATED_FRACTION:
        raise SystemExit(f"{name}: degenerate random network (see above)")
    if not all(0.1 < v < 10 for v in rms):
        raise SystemExit(f"{name}: activations vanish or explode (see above)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outdir", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    os.makedirs(args.outdir, exist_ok=True)
    start = time.time()
    for case in CASES:
        make_case(args.outdir, *case)
    print(f"{len(CASES)} cases in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

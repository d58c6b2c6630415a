"""Exports a training checkpoint to the engine's weight file (BatchNorm folded, fp32 or fp16).

    /usr/bin/python3 model/python/train/export_checkpoint.py RUN_DIR/checkpoint.pt -o M.safetensors
        [--dtype f32|f16|i8]

The hyper-parameters come from the checkpoint; the folding and writing are
reference/export.py's `export` (folded in float64, then rounded to the file's dtype).
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, HERE)
import checkpoint as ckpt  # noqa: E402
import export  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a train.py checkpoint (RUN_DIR/checkpoint.pt)")
    parser.add_argument("-o", "--output", required=True, help="weight file to write")
    parser.add_argument("--dtype", choices=("f32", "f16", "i8"), default="f32")
    args = parser.parse_args(argv)

    state = ckpt.load(args.checkpoint)
    config, step = ckpt.config_of(state), state["step"]
    del state  # export() reads the file again, for its state_dict
    folded = export.export(config, args.output, args.checkpoint, dtype=args.dtype.upper())
    n = sum(t.numel() for t in folded.values())
    print(f"{args.output}: step {step}, ResNet-{config.encoder_depth} HFAM, "
          f"{n / 1e6:.2f} M parameters, {args.dtype}, {os.path.getsize(args.output) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

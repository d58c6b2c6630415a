"""Rewrites a weight file in another storage dtype (metadata and values otherwise as they are).

    /usr/bin/python3 model/python/reference/convert.py IN.safetensors OUT.safetensors --dtype i8

i8 quantises the convolution weights per output channel (weights.py); converting an I8 file
back to f16/f32 gives its dequantised values, not the original ones.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weights  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--dtype", choices=("f32", "f16", "i8"), required=True)
    args = parser.parse_args(argv)
    tensors, metadata = weights.read_safetensors(args.input)
    weights.write_safetensors(args.output, tensors, metadata, args.dtype.upper())
    print(f"{args.output}: {len(tensors)} tensors, {args.dtype}, "
          f"{os.path.getsize(args.output) / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

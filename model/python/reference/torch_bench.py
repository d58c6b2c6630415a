"""Times the folded HFAM network in PyTorch (frozen TorchScript), the baseline for hfam-bench.

    /usr/bin/python3 model/python/reference/torch_bench.py
        (--model M.safetensors | --config C --random) [--size WxH] [-n N] [--threads T]
        [--device cpu|cuda] [--half] [--eager]

Builds the folded network (fp32; --half: fp16, CUDA only) in channels_last layout, traces and
freezes it (--eager: runs the module as it is), runs it twice to warm up, then times N runs on
one random normalised input. The last line printed is exactly `median_ms <value>` (hfam-bench
parses it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfam  # noqa: E402


def parse_size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not WxH: {text!r}") from None
    if w <= 0 or h <= 0 or w % 32 or h % 32:
        raise argparse.ArgumentTypeError(
            f"{text}: width and height must be positive multiples of 32")
    return w, h


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="weight file")
    source.add_argument("--config", choices=sorted(hfam.PRESETS),
                        help="with --random: a randomly initialised network of this preset")
    parser.add_argument("--random", action="store_true")
    parser.add_argument("--size", type=parse_size, default=(512, 512), help="WxH (default 512x512)")
    parser.add_argument("-n", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: PyTorch's)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--half", action="store_true", help="fp16 (CUDA only)")
    parser.add_argument("--eager", action="store_true", help="no TorchScript: PyTorch eager")
    args = parser.parse_args(argv)
    if args.config and not args.random:
        parser.error("--config needs --random")
    if args.half and args.device != "cuda":
        parser.error("--half needs --device cuda")
    if args.n < 1:
        parser.error("-n must be at least 1")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.model:
        model = hfam.load_folded(args.model)
    else:
        unfolded = hfam.random_init(hfam.HFAM(hfam.PRESETS[args.config]()), seed=0)
        model = hfam.build_folded(unfolded.config, hfam.fold_batchnorm(unfolded))
        del unfolded
    config = model.config
    w, h = args.size

    dtype = torch.float16 if args.half else torch.float32
    device = torch.device(args.device)
    # cuDNN's algorithms timed for the shape, as the engine times its own (the warm-up runs
    # pay for the search)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last).eval()
    x = torch.randn(1, 3, h, w, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        frozen = model if args.eager else torch.jit.freeze(
            torch.jit.trace(model, x, strict=False))
        for _ in range(2):
            frozen(x)
        sync()
        times = []
        for _ in range(args.n):
            start = time.perf_counter()
            frozen(x)
            sync()
            times.append((time.perf_counter() - start) * 1e3)

    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f", {torch.get_num_threads()} threads")
          + f", {'fp16' if args.half else 'fp32'}, channels_last, "
          + ("cudnn.benchmark, " if torch.backends.cudnn.benchmark else "")
          + ("eager" if args.eager else "frozen TorchScript"))
    print(f"ResNet-{config.encoder_depth} HFAM at {w}x{h}")
    print(f"runs {args.n}: min {min(times):.2f} ms, mean {statistics.mean(times):.2f} ms")
    print(f"median_ms {statistics.median(times):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Times the folded HFAM network compiled by torch.compile on CUDA (the other PyTorch baseline
of tests/gpu/run.sh; model/python/reference/torch_bench.py times frozen TorchScript).

    python3 tests/gpu/torch_compile_bench.py --model M.safetensors [--size WxH] [-n N] [--half]
        [--mode default|reduce-overhead|max-autotune]

channels_last, fp32 or fp16 (--half), torch.compile(mode), three warm-up runs (compilation),
then N runs timed with CUDA events on one random normalised input. The last line printed is
exactly `median_ms <value>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "model", "python", "reference"))
import hfam  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--size", default="512x288")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--mode", default="default")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    dtype = torch.float16 if args.half else torch.float32
    device = torch.device("cuda")
    # cuDNN's algorithms timed for the shape, as the engine times its own
    torch.backends.cudnn.benchmark = True

    model = hfam.load_folded(args.model).to(device=device, dtype=dtype,
                                             memory_format=torch.channels_last).eval()
    x = torch.randn(1, 3, h, w, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    with torch.no_grad():
        compiled = torch.compile(model, mode=args.mode)
        start = time.perf_counter()
        for _ in range(3):
            compiled(x)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(args.n):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            compiled(x)
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(device)}, "
          f"{'fp16' if args.half else 'fp32'}, channels_last, cudnn.benchmark, "
          f"torch.compile mode {args.mode} "
          f"(compiled and warmed up in {compile_s:.1f} s)")
    print(f"ResNet-{model.config.encoder_depth} HFAM at {w}x{h}: runs {args.n}, "
          f"min {min(times):.2f} ms, mean {statistics.mean(times):.2f} ms")
    print(f"median_ms {statistics.median(times):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

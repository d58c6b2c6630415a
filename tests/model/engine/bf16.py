"""bf16 on the CPU (issue 18) through hfam-matte: on random R18 and R50 models, precision bf16
(every convolution in bf16) and int8-bf16 (int8's layers, the other convolutions in bf16; on
the R18 calibrated as in int8.py, with and without the decoders' group) give mattes close to
fp32's and int8's; without
AVX512-BF16 both are refused, naming it; int8-bf16 on a file without activation ranges is
refused as int8 is. Precision default gives, to the bit, bf16's matte for a file without
activation ranges and int8-bf16's for one with them where the CPU has AVX512-BF16 (int8.py
checks it where the CPU has none).

Usage: bf16.py HFAM_MATTE R18_MODEL R50_MODEL   (the golden r18_160x96, r50_160x96)
"""

import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# (int8.py's fixture, tool call and CPU flags)
from int8 import calibrate, calibrated_fixture, matte, onednn_flags  # noqa: E402

# Mean |difference| against the matte's own spread, so that a flat matte cannot pass. Measured:
# bf16 vs fp32 0.042 (R18) and 0.099 (R50: random weights through 50 layers magnify bf16's
# rounding; the trained default model's mattes differ by 1e-4 to 3e-4 in absolute terms,
# BENCHMARKS.md), int8-bf16 vs int8 0.028 (0.040 with the decoders' group in int8). The fused
# matte's argmax flips where the two round differently, as with int8 (int8.py's bound is 0.25);
# a wrong reorder or scale gives errors near 1.
MAX_ERROR = 0.2


def has_bf16():
    """As oneDNN sees it: AVX512-BF16 beside AVX-512 core (VNNI comes with it)."""
    return {"avx512_bf16", "avx512bw", "avx512_vnni"} <= onednn_flags()


def compare(failures, what, got, want):
    if isinstance(got, tuple) or isinstance(want, tuple):
        failures.append(f"{what}: hfam-matte failed: {got if isinstance(got, tuple) else want}")
        return
    spread = max(want.std(), 1e-3)
    error = np.abs(got - want).mean() / spread
    print(f"{what}: mean |difference| {np.abs(got - want).mean():.5f}, matte spread "
          f"{spread:.4f}, normalised {error:.4f}")
    if error > MAX_ERROR:
        failures.append(f"{what}: {error:.4f} of the matte's spread (at most {MAX_ERROR})")
    if np.array_equal(got, want):
        failures.append(f"{what}: the same matte to the bit: did it compute in bf16?")


def main() -> int:
    tool, r18, r50 = sys.argv[1:4]
    rng = np.random.default_rng(18)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        photos, photo, out, calibrated = calibrated_fixture(tmp, r18, rng)

        if not has_bf16():
            for model, precision in [(r18, "bf16"), (calibrated, "int8-bf16")]:
                refused = matte(tool, model, photo, out, precision)
                if not (isinstance(refused, tuple) and "no AVX512-BF16" in refused[1]):
                    failures.append(f"{precision} without AVX512-BF16 was not refused: "
                                    f"{refused}")
        else:
            for name, model in [("R18", r18), ("R50", r50)]:
                bf16 = matte(tool, model, photo, out, "bf16")
                compare(failures, f"{name} bf16 vs fp32", bf16,
                        matte(tool, model, photo, out, "fp32"))
                chosen = matte(tool, model, photo, out, "default")
                if isinstance(chosen, tuple) or not np.array_equal(chosen, bf16):
                    failures.append(f"{name}: precision default did not give the bf16 matte")
            int8_bf16 = matte(tool, calibrated, photo, out, "int8-bf16")
            compare(failures, "R18 int8-bf16 vs int8", int8_bf16,
                    matte(tool, calibrated, photo, out, "int8"))
            # with the decoders' group in int8 too, bf16 keeps the SK projections, MFEM's
            # pooled branches and the decoders' last layers
            decoders = os.path.join(tmp, "decoders.safetensors")
            calibrate.main(["--model", r18, "--images", photos, "--val-fraction", "1",
                            "--decoders", "-o", decoders])
            compare(failures, "R18 with the decoders' group, int8-bf16 vs int8",
                    matte(tool, decoders, photo, out, "int8-bf16"),
                    matte(tool, decoders, photo, out, "int8"))
            chosen = matte(tool, calibrated, photo, out, "default")
            if isinstance(chosen, tuple) or not np.array_equal(chosen, int8_bf16):
                failures.append("calibrated R18: precision default did not give the int8-bf16 "
                                "matte")
            refused = matte(tool, r18, photo, out, "int8-bf16")
            if not (isinstance(refused, tuple) and "no activation ranges" in refused[1]):
                failures.append(f"int8-bf16 without activation ranges was not refused: "
                                f"{refused}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""The ONNX export against the reference: /usr/bin/python3 tests/model/python/ort/test_ort.py

Exports a tiny random network (export.py --config tiny) with export_onnx.py, runs it once in
ONNX Runtime through model/python/ort/ort_bench.js --input, and compares every output with the
PyTorch reference on the same input. Exits 77 (skipped) without node and npm, or when
onnxruntime-node is not cached and the npm registry cannot be reached (prepare.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..")
ORT = os.path.join(ROOT, "model", "python", "ort")
sys.path.insert(0, ORT)
sys.path.insert(0, os.path.join(ROOT, "model", "python", "reference"))
import export  # noqa: E402
import export_onnx  # noqa: E402
import hfam  # noqa: E402
import prepare  # noqa: E402

WIDTH, HEIGHT = 96, 64
# fp32 through two different convolution libraries: rounding only.
TOLERANCE = {"logits": 1e-3, "semantic": 1e-4, "detail": 1e-4}
# Where the two largest class probabilities are this close, rounding may pick either class.
TIE_MARGIN = 1e-4


def main() -> int:
    try:
        modules = prepare.node_modules(prepare.npm_cache.default_cache())
    except prepare.Unavailable as e:
        print(f"skipped: {e}")
        return prepare.SKIP

    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "tiny.safetensors")
        onnx_path = os.path.join(tmp, "tiny.onnx")
        export.main(["--config", "tiny", "-o", weights])
        model = hfam.load_folded(weights)
        export_onnx.export_onnx(model, WIDTH, HEIGHT, onnx_path)

        x = torch.randn(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3))
        inp = os.path.join(tmp, "input.f32")
        x.numpy().astype("<f4").tofile(inp)
        r = subprocess.run(["node", os.path.join(ORT, "ort_bench.js"), onnx_path,
                            "--size", f"{WIDTH}x{HEIGHT}", "--threads", "1", "--input", inp,
                            "--output", os.path.join(tmp, "ort")],
                           env=dict(os.environ, NODE_PATH=modules), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(f"FAIL ort_bench.js --input:\n{r.stdout}")
            return 1
        with torch.no_grad():
            expected = {k: v.numpy() for k, v in model(x).items()}

        got = {}
        for name in export_onnx.OUTPUTS:
            data = np.fromfile(os.path.join(tmp, f"ort.{name}.f32"), dtype="<f4")
            got[name] = data.reshape(expected[name].shape)
        for name, tolerance in TOLERANCE.items():
            diff = float(np.abs(got[name] - expected[name]).max())
            ok = diff <= tolerance
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: max |ort - torch| {diff:.2e} "
                  f"(tolerance {tolerance:g})")

        top2 = np.sort(expected["semantic"], axis=1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > TIE_MARGIN
        diff = float(np.abs(got["fused"] - expected["fused"])[clear[:, None]].max())
        ok = diff <= TOLERANCE["detail"] and clear.mean() > 0.99
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} fused: max |ort - torch| {diff:.2e} on the "
              f"{clear.mean():.1%} of pixels whose class is not a near tie")
    print(f"{len(TOLERANCE) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

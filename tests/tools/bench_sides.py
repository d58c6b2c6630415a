"""hfam-bench's comparison sides on a tiny model: the PyTorch and ONNX Runtime ratios, their
round lines, --no-torch/--no-ort, and the line that says why the ONNX Runtime side is skipped
without node; and --batch, several streams in one batch group, which has no sides.

    python3 tests/tools/bench_sides.py BUILD/tools/hfam-bench TINY.safetensors

Timings are not checked (a shared machine); only that each side ran or says why it did not.
The ONNX Runtime side may itself be skipped (no node, or onnxruntime-node not cached and no
registry): then its line must say so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

NUMBER = r"[0-9]+\.[0-9]+"


def bench(binary: str, model: str, *extra: str, env=None) -> str:
    r = subprocess.run([binary, "-m", model, "-s", "64x64", "-n", "1", "-t", "1", "-b", "cpu",
                        *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env)
    if r.returncode != 0:
        raise AssertionError(f"hfam-bench {' '.join(extra)} exited {r.returncode}:\n{r.stdout}")
    return r.stdout


def ratio_line(output: str, side: str):
    lines = [l for l in output.splitlines() if l.startswith(f"ratio engine/{side}: ")]
    assert len(lines) <= 1, lines
    return lines[0] if lines else None


def main() -> int:
    binary, model = sys.argv[1], sys.argv[2]
    failed = 0

    def check(name, fn):
        nonlocal failed
        try:
            fn()
            print(f"ok   {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}")

    def both_sides():
        out = bench(binary, model, "-r", "2", "--precision", "fp32")
        torch_line = ratio_line(out, "pytorch")
        assert torch_line and re.match(rf"ratio engine/pytorch: {NUMBER} \(median of 2 round",
                                       torch_line), out
        ort_line = ratio_line(out, "onnxruntime")
        assert ort_line, f"no ONNX Runtime ratio line:\n{out}"
        if ort_line.startswith("ratio engine/onnxruntime: n/a ("):
            assert "onnxruntime: skipped: " in out, out
            print(f"note: ONNX Runtime side skipped here: {ort_line}")
            return
        assert re.match(rf"ratio engine/onnxruntime: {NUMBER} \(median of 2 round\(s\); "
                        rf"engine {NUMBER} ms fp32, onnxruntime {NUMBER} ms fp32, 1 threads, "
                        r"64x64\)$", ort_line), ort_line
        rounds = [l for l in out.splitlines() if re.match(r"round [12]: engine", l)]
        assert len(rounds) == 2 and all("pytorch" in l and "onnxruntime" in l for l in rounds), \
            out
        assert "onnxruntime: median_ms" not in out and "onnxruntime: onnxruntime-node 1.17.3" in out

    def no_sides():
        out = bench(binary, model, "--no-torch", "--no-ort")
        assert ratio_line(out, "pytorch") is None and ratio_line(out, "onnxruntime") is None, out
        assert "onnxruntime:" not in out and "pytorch:" not in out, out

    def no_node():
        with tempfile.TemporaryDirectory() as empty:
            out = bench(binary, model, "--no-torch", env=dict(os.environ, PATH=empty))
        assert ratio_line(out, "onnxruntime") == \
            "ratio engine/onnxruntime: n/a (node is not installed)", out
        assert ratio_line(out, "pytorch") is None, out

    def batch():
        out = bench(binary, model, "--depth", "1", "--batch", "3")
        assert "--batch 3: the engine alone (no PyTorch or ONNX Runtime side)" in out, out
        assert re.search(r"3 stream\(s\) in one batch group, 1 frames each", out), out
        assert re.search(rf"throughput {NUMBER} frames/s .*all streams", out), out
        assert ratio_line(out, "pytorch") is None and ratio_line(out, "onnxruntime") is None, out
        r = subprocess.run([binary, "-m", model, "-s", "64x64", "--batch", "2", "-b", "cpu"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode != 0 and "with --depth only" in r.stdout, r.stdout

    checks = [("both sides, two rounds", both_sides), ("--no-torch --no-ort", no_sides),
              ("no node on PATH", no_node), ("--batch: streams in one group", batch)]
    for name, fn in checks:
        check(name, fn)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

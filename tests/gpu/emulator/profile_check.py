#!/usr/bin/env python3
"""HFAM_CUDA_PROFILE on the CUDA emulator: hfam-bench with the profile on, through the CUDA
backend's module built against the emulator ($HFAMMATTE_CUDA_MODULE), one frame at a time and
in a batch group at depth 2. Checks that the gated stages finish, that the profile's rows add
up (every node counted once by kind, the shares to 100 %, the slowest first), that it covers
every run but the ungated first, and that two runs print the same profile: the emulator's
clocks make the times reproducible, so a difference means an event recorded out of place.

Usage: profile_check.py HFAM_BENCH MODEL
"""
import os
import re
import subprocess
import sys

HEADER = re.compile(r"cuda backend profile: ([\d.]+) ms in all (\d+) nodes, over every run "
                    r"\((\d+) runs of (\d+) frames\)")
NODE = re.compile(r"  (\S+)\s+(.+?)\s+([\d.]+) ms\s+([\d.]+) %\s+\d+x\d+x\d+(.*)$")
KIND = re.compile(r"  (.+?)\s+(\d+) nodes\s+([\d.]+) ms\s+([\d.]+) %(?: ([\d.]+) TFLOP/s)?$")
PLAN = re.compile(r"median of (\d+) runs after (\d+) warm-up runs")

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


def profile(bench, model, extra):
    env = dict(os.environ, HFAM_CUDA_PROFILE="1")
    cmd = [bench, "--model", model, "--size", "64x64", "--backend", "cuda", "--no-torch",
           "--no-ort"] + extra
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    if not check(run.returncode == 0, f"{' '.join(extra)}: exit {run.returncode}:\n{out}"):
        return None, out
    lines = out.splitlines()
    start = next((i for i, l in enumerate(lines) if HEADER.match(l)), None)
    if not check(start is not None, f"{' '.join(extra)}: no profile in\n{out}"):
        return None, out
    end = lines.index("by kind:", start)
    kinds = []
    for line in lines[end + 1:]:
        m = KIND.match(line)
        if not m:
            break
        kinds.append(m)
    return (lines[start:end + 1 + len(kinds)]), out


def check_sums(name, section, batch):
    total, n_nodes, runs, frames = HEADER.match(section[0]).groups()
    total, n_nodes, runs, frames = float(total), int(n_nodes), int(runs), int(frames)
    end = section.index("by kind:")
    nodes = [NODE.match(l) for l in section[1:end]]
    kinds = [KIND.match(l) for l in section[end + 1:]]
    check(all(nodes), f"{name}: a node row does not read: {section[1:end]}")
    nodes = [m for m in nodes if m]
    check(frames == batch, f"{name}: {frames} frames a run, not {batch}")
    check(len(nodes) == min(40, n_nodes), f"{name}: {len(nodes)} node rows of {n_nodes}")
    node_ms = [float(m.group(3)) for m in nodes]
    check(node_ms == sorted(node_ms, reverse=True), f"{name}: nodes not slowest first")
    check(all(ms > 0 for ms in node_ms), f"{name}: a listed node took no time")
    check(len({m.group(1) for m in nodes}) == len(nodes), f"{name}: a node listed twice")
    for m in nodes:
        check(abs(float(m.group(4)) - 100 * float(m.group(3)) / total) < 0.1,
              f"{name}: {m.group(1)}'s share {m.group(4)} % of {total} ms")
        if " conv" in m.group(5):
            check("TFLOP/s" in m.group(5), f"{name}: convolution {m.group(1)} without TFLOP/s")
    kind_ms = [float(m.group(3)) for m in kinds]
    check(sum(int(m.group(2)) for m in kinds) == n_nodes,
          f"{name}: the kinds count {sum(int(m.group(2)) for m in kinds)} nodes of {n_nodes}")
    check(abs(sum(kind_ms) - total) <= 0.0005 * len(kinds) + 1e-9,
          f"{name}: the kinds add up to {sum(kind_ms):.3f} ms, not {total}")
    check(abs(sum(float(m.group(4)) for m in kinds) - 100) <= 0.05 * len(kinds),
          f"{name}: the kinds' shares add up to {sum(float(m.group(4)) for m in kinds)} %")
    check(kind_ms == sorted(kind_ms, reverse=True), f"{name}: kinds not largest first")
    check(any(m.group(1).startswith("conv") and m.group(5) for m in kinds),
          f"{name}: no convolution kind with TFLOP/s")
    return runs


def main():
    bench, model = sys.argv[1:3]
    one = ["--precision", "fp16", "-n", "3"]
    first, out = profile(bench, model, one)
    if first:
        runs = check_sums("fp16, one frame at a time", first, 1)
        timed, warm = map(int, PLAN.search(out).groups())
        # the first run is not gated (it loads the kernels), every other is profiled
        check(runs == warm + timed - 1, f"profiled {runs} runs of {warm} + {timed}")
        again, _ = profile(bench, model, one)
        check(again == first, "two runs' profiles differ:\n" + "\n".join(first) + "\n--\n"
              + "\n".join(again or []))
    grouped, _ = profile(bench, model, ["--precision", "fp32", "-n", "3", "--depth", "2",
                                        "--batch", "2"])
    if grouped:
        runs = check_sums("fp32, a batch group of 2 at depth 2", grouped, 2)
        check(runs >= 3, f"batch group: profiled {runs} runs")
    for f in failures:
        print("FAIL:", f)
    print("profile checks:", "failed" if failures else "passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

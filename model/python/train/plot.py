"""Plots a training run's curves: RUN_DIR/train.csv and val.csv -> RUN_DIR/curves.png.

    /usr/bin/python3 model/python/train/plot.py RUN_DIR

Top: the total loss and its three unweighted terms against the step (log scale; thin lines are
the per-step values, thick ones a moving average). Below: one panel per validation metric.
train.py redraws it after every validation and at the end. Needs matplotlib
(Debian: python3-matplotlib); without it, training goes on without plots.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Dict, List

import numpy as np

LOSS_COLUMNS = ("loss", "ce", "unknown", "fused")


def read_csv(path: str) -> Dict[str, np.ndarray]:
    if not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _moving_average(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < n:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:n] / np.arange(1, n)  # the first n-1 points average what exists so far
    return np.concatenate([head, (c[n:] - c[:-n]) / n])


def plot_run(run_dir: str) -> bool:
    """Writes RUN_DIR/curves.png; False when matplotlib is missing or there is nothing yet."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    train = read_csv(os.path.join(run_dir, "train.csv"))
    val = read_csv(os.path.join(run_dir, "val.csv"))
    if not train:
        return False
    metrics: List[str] = [k for k in val if k not in ("step", "images", "seconds")]

    cols = max(1, len(metrics))
    fig = plt.figure(figsize=(3.2 * max(cols, 3), 7 if metrics else 4), constrained_layout=True)
    grid = fig.add_gridspec(2 if metrics else 1, cols)
    ax = fig.add_subplot(grid[0, :])
    window = max(1, len(train["step"]) // 50)
    for name in LOSS_COLUMNS:
        line, = ax.plot(train["step"], train[name], linewidth=0.5, alpha=0.3)
        ax.plot(train["step"], _moving_average(train[name], window), color=line.get_color(),
                linewidth=1.5, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("training loss (total, and the unweighted terms)")
    ax.legend(loc="upper right")
    ax.grid(True, which="both", alpha=0.3)
    for i, name in enumerate(metrics):
        axm = fig.add_subplot(grid[1, i])
        axm.plot(val["step"], val[name], marker="o")
        axm.set_xlabel("step")
        axm.set_title(f"validation {name}")
        axm.grid(True, alpha=0.3)

    path = os.path.join(run_dir, "curves.png")
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    if not plot_run(args.run_dir):
        print("no plot: matplotlib missing or no train.csv yet", file=sys.stderr)
        return 1
    print(os.path.join(args.run_dir, "curves.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Matting errors of HFAM.md section 7, over the whole image, as the Deep Image Matting (DIM)
evaluation defines them; the same conventions as the C tool hfam-eval (tools/matte-metrics.h),
written independently of it with scipy.ndimage, so that each checks the other
(tests/tools/agreement.py).

pred and gt: 2-D float64 arrays of alphas in [0, 1], of one shape.

  sad  = sum |p - g| / 1000
  mse  = mean (p - g)^2                                      (not scaled)
  grad = sum (|grad p| - |grad g|)^2 / 1000; grad is DIM's gaussgradient: sigma 1.4,
         kernel half size 4, the 2-D kernel gauss(y) dgauss(x) scaled to unit L2 norm,
         borders replicated. Unlike DIM's Matlab code, no min-max stretch (mat2gray) of the
         alphas: the two agree whenever a matte spans 0 to 1.
  conn = sum |phi(p) - phi(g)| / 1000, phi(a) = 1 - (a - l) where a - l >= 0.15, else 1;
         l = the threshold before the first of t = 0.1, 0.2, ..., 1 (k / 10) at which the pixel
         is outside the largest 4-connected region of (p >= t) & (g >= t), 1 if never.
         Regions of equal size: the one whose first pixel comes first in column-major order
         wins, as with Matlab's bwconncomp and max.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
from scipy import ndimage

SCALE = 1000.0          # DIM reports SAD, Grad and Conn in thousands
GRAD_SIGMA = 1.4
GRAD_EPSILON = 1e-2     # gaussgradient's cut-off: the half size is where gauss(x) = epsilon
CONN_STEPS = 10         # thresholds 0.1 .. 1
CONN_PHI_CUT = 0.15


def _pair(pred, gt) -> Tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"want two 2-D mattes of one shape, got {pred.shape} and {gt.shape}")
    return pred, gt


def sad(pred, gt) -> float:
    pred, gt = _pair(pred, gt)
    return float(np.abs(pred - gt).sum() / SCALE)


def mse(pred, gt) -> float:
    pred, gt = _pair(pred, gt)
    return float(np.mean(np.square(pred - gt)))


def _gaussgradient_radius() -> int:
    s = GRAD_SIGMA
    return math.ceil(s * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * s * GRAD_EPSILON)))


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    """scipy's Gaussian derivative filter has DIM's kernel shape up to a constant factor (its
    Gaussian sums to 1); dividing by the L2 norm of its impulse response gives DIM's kernel."""
    r = _gaussgradient_radius()
    impulse = np.zeros((2 * r + 1, 2 * r + 1))
    impulse[r, r] = 1
    kernel = ndimage.gaussian_filter(impulse, GRAD_SIGMA, order=(0, 1), mode="constant",
                                     radius=r)
    norm = np.sqrt(np.sum(np.square(kernel)))
    gx = ndimage.gaussian_filter(alpha, GRAD_SIGMA, order=(0, 1), mode="nearest", radius=r)
    gy = ndimage.gaussian_filter(alpha, GRAD_SIGMA, order=(1, 0), mode="nearest", radius=r)
    return np.hypot(gx, gy) / norm


def grad(pred, gt) -> float:
    pred, gt = _pair(pred, gt)
    return float(np.sum(np.square(_gradient_magnitude(pred) - _gradient_magnitude(gt))) / SCALE)


def _largest_region(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)  # the default structure is 4-connectivity
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    tied = np.flatnonzero(sizes == sizes.max()) + 1
    winner = tied[0]
    if len(tied) > 1:  # the tied region met first in column-major order
        in_column_order = labels.T.ravel()
        winner = in_column_order[np.isin(in_column_order, tied)][0]
    return labels == winner


def conn(pred, gt) -> float:
    pred, gt = _pair(pred, gt)
    thresholds = np.arange(CONN_STEPS + 1) / CONN_STEPS
    level = np.full(pred.shape, -1.0)
    for below, t in zip(thresholds[:-1], thresholds[1:]):
        inside = _largest_region((pred >= t) & (gt >= t))
        level[(level == -1) & ~inside] = below
    level[level == -1] = 1.0

    def phi(alpha):
        d = alpha - level
        return np.where(d >= CONN_PHI_CUT, 1 - d, 1.0)

    return float(np.abs(phi(pred) - phi(gt)).sum() / SCALE)


def all_metrics(pred, gt) -> Dict[str, float]:
    return {"sad": sad(pred, gt), "mse": mse(pred, gt), "grad": grad(pred, gt),
            "conn": conn(pred, gt)}

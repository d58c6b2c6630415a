"""Foreground colour estimation from an image and its alpha: blur-fusion.

T. Germer, T. Uelwer, S. Conrad, S. Harmeling, "Fast Multi-Level Foreground Estimation",
ICPR 2020 / "Approximate Fast Foreground Colour Estimation", ICIP 2021. With I = a F + (1 - a) B,
F and B are assumed locally smooth: their local means are estimated by alpha-weighted box blurs,
    F_hat = blur(F a) / blur(a),   B_hat = blur(B (1 - a)) / blur(1 - a),
and then F is corrected so that the compositing equation holds at every pixel:
    F = F_hat + a (I - a F_hat - (1 - a) B_hat),   clipped to [0, 1].
Two passes (the paper's "blur-fusion x2"): the first with a large box (radius 90 px, F = B = I as
the initial guesses), the second with a small one (radius 6 px) starting from the first pass's F
and B_hat. Box blurs are scipy.ndimage.uniform_filter (reflecting edges), O(1) per pixel in the
radius. Where alpha is 0 the result is meaningless and irrelevant (training uses a F); where alpha
is 1 it is the image itself.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
from scipy.ndimage import uniform_filter

EPS = 1e-5


def _blur(x: np.ndarray, size: int) -> np.ndarray:
    size = max(1, int(size))
    if x.ndim == 3:
        return uniform_filter(x, size=(size, size, 1), mode="reflect")
    return uniform_filter(x, size=size, mode="reflect")


def blur_fusion_pass(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
                     size: int) -> Tuple[np.ndarray, np.ndarray]:
    """One pass of blur-fusion. image, fg, bg: H x W x 3 float in [0, 1]; alpha: H x W in [0, 1].
    Returns (F, B_hat)."""
    a = alpha[..., None]
    blurred_a = _blur(a, size)
    f_hat = _blur(fg * a, size) / (blurred_a + EPS)
    b_hat = _blur(bg * (1.0 - a), size) / ((1.0 - blurred_a) + EPS)
    f = f_hat + a * (image - a * f_hat - (1.0 - a) * b_hat)
    return np.clip(f, 0.0, 1.0), b_hat


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, sizes=(90, 6)) -> np.ndarray:
    """Blur-fusion foreground estimate (float32 H x W x 3 in [0, 1]).

    image: H x W x 3, uint8 (0..255) or float in [0, 1]; alpha: H x W, uint8, uint16 or float in
    [0, 1]. sizes: the box sizes of the passes (default: the paper's 90 then 6)."""
    img = np.asarray(image)
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    a = np.asarray(alpha)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    else:
        a = a.astype(np.float32)
    a = np.clip(a, 0.0, 1.0)
    if img.shape[:2] != a.shape:
        raise ValueError(f"image {img.shape} and alpha {a.shape} differ in size")
    f, b = img, img
    for s in sizes:
        f, b = blur_fusion_pass(img, f, b, a, s)
    return f.astype(np.float32)

"""augment.py's augmentations applied to a batch of torch tensors where the batch already is
(the GPU, for train_device.py), from the same draws (augment.draw): the blurs with the same
kernels, the same exposure gains, harmonisation and composite; the noise field from a torch
Generator on that device; JPEG as libjpeg does it at PIL's settings (4:2:0 chroma, the IJG
tables scaled by quality, the accurate DCT, fancy upsampling when decoding), in floating
point, so less than a level from PIL's round trip on average rather than equal to it.

Without this, each sample went to the CPU and back, and a 384 px sample took 29-31 ms of a CPU
core on average, a blur alone 71-73 ms (BENCHMARKS.md, "The augmentations moved to the GPU"),
while a GPU trains on one in about 6 ms.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

import augment

# The IJG tables (JPEG standard, Annex K), row by row, for quality 50.
LUMA_TABLE = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
              14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
              18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA_TABLE = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def quant_table(base: Sequence[int], quality: int) -> torch.Tensor:
    """libjpeg's jpeg_set_quality with baseline tables: the table scaled, in 1..255 (8 x 8)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return torch.tensor([min(255, max(1, (q * scale + 50) // 100)) for q in base],
                        dtype=torch.float32).view(8, 8)


def dct_matrix(device) -> torch.Tensor:
    """The orthonormal 8-point DCT-II: C @ block @ C.T is JPEG's forward transform."""
    u = torch.arange(8, dtype=torch.float64)[:, None]
    x = torch.arange(8, dtype=torch.float64)[None, :]
    c = torch.cos((2 * x + 1) * u * math.pi / 16) * math.sqrt(2 / 8)
    c[0] = math.sqrt(1 / 8)
    return c.float().to(device)


def _round(x: torch.Tensor) -> torch.Tensor:
    """libjpeg's descaling: halves rounded up."""
    return torch.floor(x + 0.5)


def _code_plane(plane: torch.Tensor, tables: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Planes (n, H, W) of 0..255 samples, sides multiples of 8, through the DCT, the
    quantisation by each picture's table (n, 8, 8) (halves away from zero, as libjpeg) and back,
    limited to 0..255 as the decoder's range limit does."""
    n, h, w = plane.shape
    blocks = (plane - 128).view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coef = c @ blocks @ c.T
    q = tables[:, None, None]
    coef = torch.sign(coef) * torch.floor(coef.abs() / q + 0.5) * q
    back = _round(c.T @ coef @ c + 128).clamp(0, 255)
    return back.permute(0, 1, 3, 2, 4).reshape(n, h, w)


def _upsample_chroma(plane: torch.Tensor) -> torch.Tensor:
    """libjpeg's h2v2 fancy upsampling of (n, h, w) to (n, 2h, 2w): each output sample is 3/4
    of its nearer and 1/4 of its farther neighbour in each direction (edges repeated), with
    libjpeg's integer rounding (8 added at even columns, 7 at odd ones)."""
    p = F.pad(plane[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    above = 3 * p[:, 1:-1] + p[:, :-2]  # rows 2i: nearer row i, farther i - 1
    below = 3 * p[:, 1:-1] + p[:, 2:]
    rows = torch.stack([above, below], dim=2).flatten(1, 2)  # (n, 2h, w + 2)
    left = torch.floor((3 * rows[..., 1:-1] + rows[..., :-2] + 8) / 16)
    right = torch.floor((3 * rows[..., 1:-1] + rows[..., 2:] + 7) / 16)
    return torch.stack([left, right], dim=-1).flatten(-2)


def jpeg(images: torch.Tensor, qualities: Sequence[int]) -> torch.Tensor:
    """A JPEG round trip of (n, 3, H, W) RGB in [0, 1], each picture at its own quality."""
    n, _, h, w = images.shape
    device = images.device
    c = dct_matrix(device)
    luma = torch.stack([quant_table(LUMA_TABLE, q) for q in qualities]).to(device)
    chroma = torch.stack([quant_table(CHROMA_TABLE, q) for q in qualities]).to(device)
    r, g, b = torch.round(images.clamp(0, 1) * 255).unbind(1)
    y = _round(0.299 * r + 0.587 * g + 0.114 * b)
    cb = _round(-0.168736 * r - 0.331264 * g + 0.5 * b + 128)
    cr = _round(0.5 * r - 0.418688 * g - 0.081312 * b + 128)
    # libjpeg pads to whole MCUs (16 x 16 at 4:2:0) by repeating the last row and column
    ph, pw = -h % 16, -w % 16
    ycc = F.pad(torch.stack([y, cb, cr], 1), (0, pw, 0, ph), mode="replicate")
    y = _code_plane(ycc[:, 0], luma, c)
    # h2v2 downsampling: each 2 x 2 summed, a bias alternating 1 and 2 along the row, / 4
    sums = F.avg_pool2d(ycc[:, 1:], 2) * 4
    bias = torch.arange(sums.shape[-1], device=device) % 2 + 1
    sub = torch.floor((sums + bias) / 4)
    cb = _upsample_chroma(_code_plane(sub[:, 0], chroma, c))
    cr = _upsample_chroma(_code_plane(sub[:, 1], chroma, c))
    y, cb, cr = y[:, :h, :w], cb[:, :h, :w] - 128, cr[:, :h, :w] - 128
    rgb = torch.stack([y + _round(1.402 * cr),
                       y + _round(-0.344136 * cb - 0.714136 * cr),
                       y + _round(1.772 * cb)], 1)
    return rgb.clamp(0, 255) / 255


def blur(image: torch.Tensor, kernel) -> torch.Tensor:
    """(3, H, W) convolved with a numpy kernel that sums to 1, the border reflected."""
    k = torch.as_tensor(kernel, dtype=torch.float32, device=image.device).flip(0, 1)
    ry, rx = k.shape[0] // 2, k.shape[1] // 2
    padded = F.pad(image[None], (rx, rx, ry, ry), mode="reflect")
    weight = k.expand(3, 1, *k.shape).contiguous()
    return F.conv2d(padded, weight, groups=3)[0].clamp(0, 1)


def harmonise(foreground: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor,
              t: float) -> torch.Tensor:
    """augment.harmonise on (3, H, W), alpha (1, H, W); without a host round trip, which would
    wait for the device."""
    w = alpha.double()
    total = w.sum()
    fg = foreground.double()
    mean_f = (w * fg).sum((1, 2), keepdim=True) / total
    std_f = ((w * (fg - mean_f) ** 2).sum((1, 2), keepdim=True) / total).sqrt()
    bg = background.double()
    mean_b = bg.mean((1, 2), keepdim=True)
    std_b = bg.std((1, 2), correction=0, keepdim=True)
    target_mean = (1 - t) * mean_f + t * mean_b
    target_std = (1 - t) * std_f + t * std_b
    out = (fg - mean_f) * (target_std / std_f.clamp(min=1e-3)) + target_mean
    return torch.where(total < 1, foreground, out.clamp(0, 1).float())


def pictures(foregrounds: List[torch.Tensor], alphas: List[torch.Tensor],
             backgrounds: List[Optional[torch.Tensor]], draws: List[augment.Draw],
             generator: torch.Generator) -> torch.Tensor:
    """One batch's pictures (n, 3, H, W): for each sample the foreground (3, H, W) harmonised
    and composited over its background by its alpha (1, H, W), or, where the background is
    None, the foreground itself (a real photo); then the draw's degradations, in augment.apply's
    order."""
    out = []
    for fg, a, bg, d in zip(foregrounds, alphas, backgrounds, draws):
        if bg is not None:
            if d.harmonise is not None:
                fg = harmonise(fg, a, bg, d.harmonise)
            fg = a * fg + (1 - a) * bg
        if d.defocus is not None:
            fg = blur(fg, augment.defocus_kernel(d.defocus))
        if d.motion_blur is not None:
            fg = blur(fg, augment.motion_kernel(*d.motion_blur))
        if d.exposure is not None:
            gains = torch.tensor(d.exposure, dtype=torch.float32, device=fg.device)
            fg = (fg * gains[:, None, None]).clamp(0, 1)
        out.append(fg)
    images = torch.stack(out)
    noisy = [i for i, d in enumerate(draws) if d.noise is not None]
    if noisy:
        sel = images[noisy]
        read, shot = (torch.tensor(v, dtype=torch.float32, device=images.device).view(-1, 1, 1, 1)
                      for v in zip(*(draws[i].noise for i in noisy)))
        sigma = (read ** 2 + shot ** 2 * sel).sqrt()
        field = torch.randn(sel.shape, generator=generator, device=images.device)
        images[noisy] = (sel + sigma * field).clamp(0, 1)
    coded = [i for i, d in enumerate(draws) if d.jpeg is not None]
    if coded:
        images[coded] = jpeg(images[coded], [draws[i].jpeg for i in coded])
    return images

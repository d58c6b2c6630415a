"""The three HFAM losses (../../../../shared/HFAM.md section 6) and their weighted sum.

  L_ce = cross-entropy(S, trimap)                                   on the semantic logits
  L_u  = sum(sqrt((alpha_d - g)^2 + eps^2) * U) / sum(U), eps 1e-6  on the detail matte
  L_f  = L1(alpha_p, g) + (1 - SSIM(alpha_p, g))                    on the fused matte
  L    = 1 L_ce + 10 L_u + 1 L_f

alpha_p is the network's own fused output (reference/hfam.py): the class is a hard argmax, as
in GFM's collaborative matting and in the engine, so L_f has no gradient through the class
choice; it reaches alpha_d where the argmax says unknown (torch.where passes the gradient of
the branch it selects) and nothing where it says foreground or background, whose alpha_p is a
constant 1 or 0. The semantic branch learns only from L_ce.

SSIM: Gaussian window 11, sigma 1.5, c1 = 0.01^2, c2 = 0.03^2 (data range 1), the mean of the
SSIM map over the window positions inside the image (no padding: a zero border would invent
dark pixels), averaged over the batch. Sums and means run over the whole batch.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from data import UNKNOWN

CHARBONNIER_EPS = 1e-6
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = 0.01 ** 2, 0.03 ** 2


def unknown_charbonnier(detail: torch.Tensor, alpha: torch.Tensor, unknown: torch.Tensor,
                        eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """L_u; 0 for a batch without unknown pixels (sum(U) = 0)."""
    err = torch.sqrt((detail - alpha) ** 2 + eps ** 2)
    return (err * unknown).sum() / unknown.sum().clamp_min(1)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                    dtype=torch.float32, device=None) -> torch.Tensor:
    """(1, 1, size, size), sums to 1."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype=dtype, device=device)[None, None]


def ssim(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of (N, 1, H, W) maps in [0, 1] (Wang et al. 2004, valid window positions)."""
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x ** 2
    var_y = F.conv2d(y * y, window) - mu_y ** 2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return (num / den).mean()


class HfamLoss:
    """L = w_ce L_ce + w_u L_u + w_f L_f. Computed in float32 whatever the forward's dtype."""

    def __init__(self, w_ce: float = 1.0, w_unknown: float = 10.0, w_fused: float = 1.0):
        self.w_ce, self.w_unknown, self.w_fused = w_ce, w_unknown, w_fused
        self._window = None

    def __call__(self, out: Dict[str, torch.Tensor], alpha: torch.Tensor,
                 trimap: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Returns the total (to back-propagate) and the unweighted terms as floats."""
        if self._window is None or self._window.device != alpha.device:
            self._window = gaussian_window(device=alpha.device)
        l_ce = F.cross_entropy(out["logits"].float(), trimap)
        unknown = (trimap == UNKNOWN).unsqueeze(1).float()
        l_u = unknown_charbonnier(out["detail"].float(), alpha, unknown)
        fused = out["fused"].float()
        l_f = (fused - alpha).abs().mean() + (1 - ssim(fused, alpha, self._window))
        total = self.w_ce * l_ce + self.w_unknown * l_u + self.w_fused * l_f
        terms = {"ce": l_ce.item(), "unknown": l_u.item(), "fused": l_f.item()}
        return total, terms

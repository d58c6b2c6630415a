"""The disagreement check between two teachers' mattes of one photo.

The second teacher (MediaPipe selfie segmentation) gives a soft person mask at 256 x 256 without
hair detail, so only coarse agreement is asked of it. Both mattes are compared at full size:
  - iou:  IoU of the binarised mattes (alpha > 0.5);
  - mad:  mean absolute difference of the soft mattes (SAD / number of pixels), in [0, 1];
  - fg:   the fraction of pixels with primary alpha > 0.5.
An image is accepted when
    iou >= IOU_MIN (0.8)  and  mad <= MAD_MAX (0.1)  and  FG_MIN (0.01) <= fg <= FG_MAX (0.95).
The IoU rule catches a teacher that matted a different object (a statue, a poster, a second
person the other one missed); the MAD rule catches large soft disagreements the binarisation
hides; the fg rule rejects photos where the primary teacher found (almost) nobody, or marked
the whole frame, where IoU is meaningless. When both teachers find nobody the IoU is defined
as 1 and the fg rule rejects the photo.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

IOU_MIN = 0.8
MAD_MAX = 0.1
FG_MIN = 0.01
FG_MAX = 0.95


def compare(primary: np.ndarray, second: np.ndarray) -> Dict[str, float]:
    """Agreement statistics of two mattes (H x W floats in [0, 1])."""
    p = np.asarray(primary, dtype=np.float32)
    s = np.asarray(second, dtype=np.float32)
    if p.shape != s.shape:
        raise ValueError(f"matte sizes differ: {p.shape} vs {s.shape}")
    pb, sb = p > 0.5, s > 0.5
    union = int(np.count_nonzero(pb | sb))
    inter = int(np.count_nonzero(pb & sb))
    return {
        "iou": inter / union if union else 1.0,
        "mad": float(np.mean(np.abs(p - s))),
        "sad_k": float(np.sum(np.abs(p - s)) / 1000.0),
        "fg": float(np.count_nonzero(pb) / pb.size),
    }


def decide(stats: Dict[str, float], iou_min: float = IOU_MIN, mad_max: float = MAD_MAX,
           fg_min: float = FG_MIN, fg_max: float = FG_MAX) -> Tuple[bool, str]:
    """(accepted, reason): the rule of the module docstring on compare()'s statistics."""
    reasons = []
    if stats["fg"] < fg_min:
        reasons.append(f"fg {stats['fg']:.3f} < {fg_min}")
    if stats["fg"] > fg_max:
        reasons.append(f"fg {stats['fg']:.3f} > {fg_max}")
    if stats["iou"] < iou_min:
        reasons.append(f"iou {stats['iou']:.3f} < {iou_min}")
    if stats["mad"] > mad_max:
        reasons.append(f"mad {stats['mad']:.3f} > {mad_max}")
    return (not reasons), "; ".join(reasons) if reasons else "ok"

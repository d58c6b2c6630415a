"""Training checkpoints: one torch.save'd dict, written atomically.

  format       "hfam-train-1"
  config       the network's hyper-parameters as the weight file's __metadata__ (strings)
  state_dict   the unfolded reference network's state_dict (reference/export.py reads this key)
  optimizer    Adam's state_dict; scaler: the AMP GradScaler's (empty without AMP)
  step         optimiser steps done; epoch, epoch_sample: where in the data the next one starts
  args         the training options (a resumed run takes the ones not given again from here)
  rng          Python, NumPy, torch CPU and CUDA generator states

Only tensors, numbers, strings, lists, tuples and dicts, so `torch.load(..., weights_only=True)`
reads it (the default from PyTorch 2.6 on, used by reference/export.py).
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any, Dict

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import hfam  # noqa: E402

FORMAT = "hfam-train-1"


def rng_state() -> Dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    # random.setstate wants the nested tuples that a round trip may have turned into lists.
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save(path: str, checkpoint: Dict[str, Any]) -> None:
    """Writes next to `path`, then renames: a crash never leaves a torn checkpoint."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(dict(checkpoint, format=FORMAT), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def torch_load(path: str):
    """torch.load onto the CPU, restricted to tensors and plain data where PyTorch can (2.x;
    1.13's restricted unpickler rejects floats)."""
    if int(torch.__version__.split(".")[0]) >= 2:
        return torch.load(path, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu")


def load(path: str) -> Dict[str, Any]:
    checkpoint = torch_load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path}: not a training checkpoint ({FORMAT})")
    return checkpoint


def config_of(checkpoint: Dict[str, Any]) -> hfam.HfamConfig:
    return hfam.HfamConfig.from_metadata(checkpoint["config"])

"""safetensors reading and writing with json + struct + numpy (model/README.md, "Weight file").

Layout: 8-byte little-endian header length N, N bytes of JSON (padded with spaces to a multiple
of 8, so the data section starts 8-byte aligned), then the raw little-endian row-major data.
An I8 tensor NAME is quantised per first index (per output channel): NAME.scale (F32, one value
per first index) gives value = q * scale.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I8": np.dtype("i1"),
          "U8": np.dtype("u1")}
SCALE_SUFFIX = ".scale"


def quantise_i8(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per first index: (q, scale) with a ~= q * scale[:, None, ...]."""
    a = a.astype(np.float64)
    peak = np.abs(a.reshape(a.shape[0], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / 127, 1.0)
    q = np.clip(np.rint(a / scale.reshape((-1,) + (1,) * (a.ndim - 1))), -127, 127)
    return q.astype(np.int8), scale.astype(np.float32)


def dequantise_i8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale.reshape((-1,) + (1,) * (q.ndim - 1))
_NAMES = {v: k for k, v in DTYPES.items()}


def _as_array(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def write_safetensors(path: str, tensors: Dict[str, object], metadata: Dict[str, str],
                      dtype: Optional[str] = "F32") -> None:
    """Writes `tensors` (name -> numpy array or torch tensor) and `metadata` (str -> str).

    dtype 'F32' or 'F16' converts every tensor to it (a weight file has a single dtype); 'I8'
    quantises the convolution weights (4-D tensors) per output channel, with an F32 scale
    each, and keeps the rest (biases, the small SK and attention tensors) in F32; None keeps
    each array's own dtype, which must be float32, float16 or uint8. Tensors are stored widest
    element first so that every tensor's data is aligned to its element size."""
    if any(not isinstance(k, str) or not isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("metadata keys and values must be strings")
    arrays = []
    for name, value in tensors.items():
        a = _as_array(value)
        if dtype == "I8":
            if a.ndim == 4:
                q, scale = quantise_i8(a)
                arrays += [(name, q), (name + SCALE_SUFFIX, scale)]
                continue
            a = a.astype(DTYPES["F32"])
        elif dtype is not None:
            with np.errstate(over="ignore"):  # reported below, naming the tensor
                converted = a.astype(DTYPES[dtype])
            if not np.all(np.isfinite(converted)) and np.all(np.isfinite(a)):
                raise ValueError(f"{name}: values out of the range of {dtype}")
            a = converted
        elif a.dtype.newbyteorder("<") not in _NAMES:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        arrays.append((name, np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))))
    arrays.sort(key=lambda item: -item[1].itemsize)  # stable: keeps the order within a width

    header = OrderedDict()
    header["__metadata__"] = dict(metadata)
    offset = 0
    for name, a in arrays:
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, a in arrays:
            f.write(a.tobytes())


def read_safetensors(path: str) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    """Returns (name -> numpy array, in file order; metadata). Checks sizes, ranges, overlaps."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n == 0 or 8 + n > len(blob):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + n:]
    tensors = OrderedDict()
    previous_end = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        if info["dtype"] not in DTYPES:
            raise ValueError(f"{path}: {name}: unknown dtype {info['dtype']}")
        dt = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if not previous_end <= begin <= end <= len(data) or end - begin != count * dt.itemsize:
            raise ValueError(f"{path}: {name}: bad or overlapping data range {begin}..{end}")
        previous_end = end
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"]).copy()
    for name in [n for n, t in tensors.items() if t.dtype == DTYPES["I8"]]:
        scale = tensors.pop(name + SCALE_SUFFIX, None)
        if scale is None or scale.shape != tensors[name].shape[:1]:
            raise ValueError(f"{path}: {name}: I8 without a matching {name}{SCALE_SUFFIX}")
        tensors[name] = dequantise_i8(tensors[name], scale)
    return tensors, metadata

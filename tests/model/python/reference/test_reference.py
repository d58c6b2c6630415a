"""Tests of the PyTorch reference. /usr/bin/python3 tests/model/python/reference/test_reference.py

Prints one line per test and `N passed, N failed`; exits non-zero on a failure.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import sys
import tempfile
import time
import traceback

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..",
                                "model", "python", "reference"))
import export  # noqa: E402
import golden  # noqa: E402
import hfam  # noqa: E402
import weights  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def max_diff(a, b) -> float:
    return float((torch.as_tensor(a).double() - torch.as_tensor(b).double()).abs().max())


def randomised(config: hfam.HfamConfig, seed: int = 0, dtype=torch.float64) -> hfam.HFAM:
    return hfam.random_init(hfam.HFAM(config).to(dtype), seed)


def expected_shapes(cfg: hfam.HfamConfig) -> dict:
    """Tensor names and shapes of a weight file, derived from model/README.md independently of
    the module code."""
    shapes = {}

    def conv(name, cout, cin, k):
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)

    w, c, cm, d = cfg.encoder_width, cfg.encoder_channels(), cfg.mfem_channels, cfg.sk_width
    conv("encoder.conv1", w, 3, 7)
    cin = w
    for layer, n in enumerate(cfg.encoder_blocks(), start=1):
        planes = w * 2 ** (layer - 1)
        for i in range(n):
            p = f"encoder.layer{layer}.{i}"
            if cfg.bottleneck:
                conv(f"{p}.conv1", planes, cin, 1)
                conv(f"{p}.conv2", planes, planes, 3)
                conv(f"{p}.conv3", 4 * planes, planes, 1)
                out = 4 * planes
            else:
                conv(f"{p}.conv1", planes, cin, 3)
                conv(f"{p}.conv2", planes, planes, 3)
                out = planes
            if i == 0 and (layer > 1 or cin != out):
                conv(f"{p}.downsample.0", out, cin, 1)
            cin = out
    for level, cl in zip((2, 3, 4), c[2:]):
        conv(f"mfem{level}.b0.conv", cm, cl, 1)
        for b in (1, 2, 3):
            conv(f"mfem{level}.b{b}.conv", cm, cl, 3)
        conv(f"mfem{level}.b4.conv", cm, cl, 1)
        conv(f"mfem{level}.squeeze.conv", d, cm, 1)
        conv(f"mfem{level}.select", 5 * cm, d, 1)
        conv(f"mfem{level}.project.conv", cm, 5 * cm, 1)
    conv("context.conv", cm, 3 * cm, 1)
    p = dict(zip((4, 3, 2, 1, 0), cfg.context_widths))
    for i in p:
        conv(f"psp{i}.conv", p[i], cm, 3)
    lw = cfg.lbb_width
    for branch, widths, first_in, skips in (
            ("semantic", cfg.semantic_widths, c[4] + p[4], [p[3], p[2], p[1], p[0]]),
            ("detail", cfg.detail_widths, c[4], [c[3], c[2], c[1], lw])):
        cin = first_in
        for k, i in enumerate((4, 3, 2, 1, 0)):
            for j in range(3):
                conv(f"{branch}{i}.{j}.conv", widths[3 * k + j], cin, 3)
                cin = widths[3 * k + j]
            if k < 4:
                cin += skips[k]
    conv("lbb.0.conv", lw, c[0] + c[1], 3)
    conv("lbb.1.conv", lw, lw, 3)
    conv("lbb.2.conv", lw, lw, 3)
    conv("attention", 1, 3, 1)
    return shapes


# ---------------------------------------------------------------------------------------------

@test
def safetensors_roundtrip():
    rng = np.random.default_rng(0)
    tensors = {"a.weight": rng.normal(size=(3, 2, 3, 3)).astype(np.float32),
               "a.bias": rng.normal(size=(3,)).astype(np.float32),
               "odd": rng.normal(size=(5,)).astype(np.float32)}
    meta = {"format": "hfam", "x": "1,2,3"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.safetensors")
        for dtype, np_dtype in (("F32", np.float32), ("F16", np.float16)):
            weights.write_safetensors(path, tensors, meta, dtype)
            blob = open(path, "rb").read()
            (n,) = struct.unpack("<Q", blob[:8])
            assert n % 8 == 0, "header not padded to a multiple of 8"
            back, back_meta = weights.read_safetensors(path)
            assert back_meta == meta
            assert list(back) == list(tensors), "order of tensors of one dtype changed"
            for k, v in tensors.items():
                assert back[k].dtype == np_dtype and back[k].shape == v.shape
                assert np.array_equal(back[k], v.astype(np_dtype)), k
        # Mixed dtypes (golden files): widest first, so every tensor stays aligned.
        mixed = {"img": rng.integers(0, 256, (3, 5, 3), dtype=np.uint8),
                 "h": np.ones(3, np.float16), "f": torch.arange(3, dtype=torch.float32)}
        weights.write_safetensors(path, mixed, {}, dtype=None)
        back, _ = weights.read_safetensors(path)
        assert list(back) == ["f", "h", "img"]
        assert np.array_equal(back["img"], mixed["img"]) and back["f"].dtype == np.float32
        try:
            weights.write_safetensors(path, {"big": np.array([1e6])}, {}, "F16")
        except ValueError:
            pass
        else:
            raise AssertionError("F16 overflow not refused")
        blob = bytearray(open(path, "rb").read())
        blob[:8] = struct.pack("<Q", len(blob))
        open(path, "wb").write(bytes(blob))
        try:
            weights.read_safetensors(path)
        except ValueError:
            pass
        else:
            raise AssertionError("header longer than the file not refused")


@test
def metadata_roundtrip():
    configs = [f() for f in hfam.PRESETS.values()] + [golden.R18, golden.R50, golden.R50_CAFFE]
    for cfg in configs:
        meta = cfg.to_metadata()
        assert all(isinstance(v, str) for v in meta.values())
        assert hfam.HfamConfig.from_metadata(meta) == cfg
    meta = hfam.r50().to_metadata()
    assert meta["input_mean"] == "0.485,0.456,0.406" and meta["input_scale"] == "1"
    assert golden.R50_CAFFE.to_metadata()["input_mean"] == "103.939,116.779,123.68"
    for key, value in (("format", "gguf"), ("encoder_depth", "42"), ("semantic_widths", "1,2"),
                       ("stride_in_1x1", "yes"), ("input_order", "RGBA"), ("mfem_rates", "1,x")):
        bad = dict(meta, **{key: value})
        try:
            hfam.HfamConfig.from_metadata(bad)
        except ValueError:
            continue
        raise AssertionError(f"bad {key} accepted")
    missing = dict(meta)
    del missing["lbb_width"]
    try:
        hfam.HfamConfig.from_metadata(missing)
    except ValueError:
        pass
    else:
        raise AssertionError("missing key accepted")


@test
def inference_dims():
    cases = {(1920, 1080, 512): (512, 288), (1080, 1920, 512): (288, 512), (1, 1, 512): (512, 512),
             (4097, 31, 512): (512, 32), (31, 4097, 512): (32, 512), (512, 512, 512): (512, 512),
             (640, 416, 320): (320, 224),  # 416 * 0.5 / 32 = 6.5: halves round away from zero
             (160, 96, 160): (160, 96), (1280, 720, 1024): (1024, 576)}
    for (w, h, side), want in cases.items():
        got = hfam.inference_dims(w, h, side)
        assert got == want, f"{w}x{h} at {side}: {got}, want {want}"


@test
def batchnorm_folding():
    torch.manual_seed(0)
    for eps in (1e-5, 1.001e-5):
        for bias in (False, True):
            conv = nn.Conv2d(4, 6, 3, padding=2, dilation=2, bias=bias).double()
            bn = nn.BatchNorm2d(6, eps=eps).double().eval()
            with torch.no_grad():
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_()
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2)
            block = nn.Module()
            block.conv, block.bn = conv, bn
            folded = hfam.fold_batchnorm(block)
            assert list(folded) == ["conv.weight", "conv.bias"]
            x = torch.randn(2, 4, 9, 7, dtype=torch.float64)
            want = bn(conv(x))
            got = nn.functional.conv2d(x, folded["conv.weight"], folded["conv.bias"], padding=2,
                                       dilation=2)
            assert max_diff(got, want) < 1e-12, max_diff(got, want)
    # Module naming: torchvision's bnK, downsample.1, plain convs keep their own bias.
    model = randomised(hfam.tiny())
    folded = hfam.fold_batchnorm(model)
    bn, conv = model.encoder.layer2[0].downsample[1], model.encoder.layer2[0].downsample[0]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    name = "encoder.layer2.0.downsample.0"
    assert max_diff(folded[f"{name}.bias"], bn.bias - bn.running_mean * scale) < 1e-12
    assert max_diff(folded[f"{name}.weight"], conv.weight * scale.view(-1, 1, 1, 1)) < 1e-12
    assert torch.equal(folded["mfem3.select.bias"], model.mfem3.select.bias)
    assert torch.equal(folded["semantic0.2.conv.weight"], model.semantic0[2].conv.weight)


@test
def tensor_names_and_shapes():
    # The structure of every depth at narrow widths (full widths only cost time).
    narrow = [dataclasses.replace(hfam.tiny(), encoder_depth=d) for d in (34, 50, 101)]
    for cfg in [hfam.tiny(), golden.R18, golden.R50, golden.R50_CAFFE] + narrow:
        model = hfam.HFAM(cfg, folded=True)
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        want = expected_shapes(cfg)
        assert got == want, (f"ResNet-{cfg.encoder_depth}: "
                             f"missing {sorted(set(want) - set(got))[:5]}, "
                             f"extra {sorted(set(got) - set(want))[:5]}, differing "
                             f"{[k for k in got if k in want and got[k] != want[k]][:5]}")
    model = randomised(golden.R50)
    got = {k: tuple(v.shape) for k, v in hfam.fold_batchnorm(model).items()}
    assert got == expected_shapes(golden.R50)


@test
def output_shapes_and_fusion():
    model = randomised(hfam.tiny())
    x = torch.randn(2, 3, 96, 64, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
    shapes = {"logits": (2, 3, 96, 64), "semantic": (2, 3, 96, 64), "detail": (2, 1, 96, 64),
              "fused": (2, 1, 96, 64)}
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes
    assert max_diff(out["semantic"].sum(1), torch.ones(2, 96, 64)) < 1e-12
    assert max_diff(out["semantic"], out["logits"].softmax(1)) == 0
    cls = out["semantic"].argmax(1, keepdim=True)
    want = torch.where(cls == 0, torch.zeros_like(out["detail"]),
                       torch.where(cls == 2, torch.ones_like(out["detail"]), out["detail"]))
    assert torch.equal(out["fused"], want)
    assert bool((out["detail"] > 0).all() and (out["detail"] < 1).all())
    # torch.argmax takes the first of equal maxima (the README's tie rule).
    ties = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    assert torch.equal(ties.argmax(1), torch.tensor([0, 1]))


@test
def folded_matches_unfolded():
    caffe_tiny = dataclasses.replace(hfam.tiny(), encoder_depth=50, stride_in_1x1=True)
    for cfg in (hfam.tiny(), caffe_tiny, golden.R18):
        model = randomised(cfg, seed=3)
        folded = hfam.build_folded(cfg, hfam.fold_batchnorm(model), torch.float64)
        folded32 = hfam.build_folded(cfg, hfam.fold_batchnorm(model), torch.float32)
        x = torch.randn(1, 3, 64, 96, dtype=torch.float64)
        with torch.no_grad():
            want, got, got32 = model(x), folded(x), folded32(x.float())
        for k in ("logits", "semantic", "detail"):
            assert max_diff(got[k], want[k]) < 1e-10, (k, max_diff(got[k], want[k]))
            assert max_diff(got32[k], want[k]) < 1e-4, (k, "fp32", max_diff(got32[k], want[k]))
        assert max_diff(got["fused"], want["fused"]) < 1e-10


@test
def stride_in_1x1_changes_the_network():
    cfg = dataclasses.replace(hfam.tiny(), encoder_depth=50)
    a = hfam.HFAM(cfg)
    b = hfam.HFAM(dataclasses.replace(cfg, stride_in_1x1=True))
    assert a.encoder.layer2[0].conv2.stride == (2, 2) and a.encoder.layer2[0].conv1.stride == (1, 1)
    assert b.encoder.layer2[0].conv1.stride == (2, 2) and b.encoder.layer2[0].conv2.stride == (1, 1)
    assert b.encoder.layer2[0].downsample[0].stride == (2, 2)
    assert hfam.HFAM(hfam.tiny()).encoder.layer1[0].downsample is None


@test
def export_and_load():
    with tempfile.TemporaryDirectory() as tmp:
        path32, path16 = os.path.join(tmp, "t32.safetensors"), os.path.join(tmp, "t16.safetensors")
        assert export.main(["--config", "tiny", "--seed", "7", "-o", path32]) == 0
        assert export.main(["--config", "tiny", "--seed", "7", "--dtype", "f16", "-o", path16]) == 0
        tensors, meta = weights.read_safetensors(path32)
        assert hfam.HfamConfig.from_metadata(meta) == hfam.tiny()
        assert all(t.dtype == np.float32 for t in tensors.values())
        assert all(t.dtype == np.float16 for t in weights.read_safetensors(path16)[0].values())
        # Same seed, same weights; the file runs in PyTorch.
        again = export.export(hfam.tiny(), os.path.join(tmp, "again.safetensors"), seed=7)
        assert all(np.array_equal(tensors[k], again[k].float().numpy()) for k in tensors)
        m32, m16 = hfam.HFAM.from_file(path32), hfam.load_folded(path16)
        x = hfam.preprocess(hfam.random_image(96, 64, np.random.default_rng(1)), m32.config, 96)
        with torch.no_grad():
            o32, o16 = m32(x), m16(x)
        assert max_diff(o32["detail"], o16["detail"]) < 2e-2
        # The Keras epsilon reaches the folding.
        export.export(hfam.tiny(), os.path.join(tmp, "eps.safetensors"), seed=7, bn_eps=1e-1)
        eps = weights.read_safetensors(os.path.join(tmp, "eps.safetensors"))[0]
        assert max_diff(eps["encoder.conv1.bias"], tensors["encoder.conv1.bias"]) > 1e-3


@test
def checkpoint_export():
    model = randomised(hfam.tiny(), seed=4, dtype=torch.float32)
    state = model.state_dict()
    bias = torch.randn(model.encoder.conv1.out_channels)  # a Keras-style biased convolution
    state["encoder.conv1.bias"] = bias
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, out = os.path.join(tmp, "c.pt"), os.path.join(tmp, "c.safetensors")
        torch.save({"state_dict": state}, ckpt)
        assert export.main(["--config", "tiny", "--checkpoint", ckpt, "-o", out]) == 0
        tensors, _ = weights.read_safetensors(out)
    want = hfam.fold_batchnorm(model.double())
    bn = model.encoder.bn1
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    want["encoder.conv1.bias"] = bn.bias + (bias.double() - bn.running_mean) * scale
    assert max(max_diff(tensors[k], want[k]) for k in want) < 1e-6


@test
def preprocess_and_matte():
    rng = np.random.default_rng(0)
    rgb = hfam.random_image(64, 32, rng)
    cfg = hfam.tiny()
    x = hfam.preprocess(rgb, cfg, 64, torch.float64)
    assert x.shape == (1, 3, 32, 64)
    want = (rgb[5, 7, 1] / 255 - 0.456) / 0.224
    assert abs(float(x[0, 1, 5, 7]) - want) < 1e-12  # same size: the resize is an identity
    caffe = golden.R50_CAFFE
    x = hfam.preprocess(rgb, caffe, 64, torch.float64)
    assert abs(float(x[0, 0, 5, 7]) - (rgb[5, 7, 2] - 103.939)) < 1e-9  # B first
    assert abs(float(x[0, 2, 5, 7]) - (rgb[5, 7, 0] - 123.68)) < 1e-9
    # A frame at another size: the network runs at the inference size, alpha at the frame's.
    model = randomised(cfg)
    frame = hfam.random_image(100, 70, rng)
    assert hfam.preprocess(frame, cfg, 64).shape == (1, 3, 32, 64)
    alpha = hfam.matte(model, frame, 64)
    assert alpha.shape == (70, 100) and alpha.dtype == np.float32
    assert alpha.min() >= 0 and alpha.max() <= 1
    # At the inference size matte is alpha_p itself.
    same = hfam.random_image(64, 32, rng)
    with torch.no_grad():
        fused = model(hfam.preprocess(same, cfg, 64, torch.float64))["fused"]
    assert max_diff(hfam.matte(model, same, 64), fused[0, 0]) < 1e-6


@test
def frozen_torchscript_matches_eager():
    model = hfam.build_folded(hfam.tiny(), hfam.fold_batchnorm(randomised(hfam.tiny())))
    x = torch.randn(1, 3, 64, 96).contiguous(memory_format=torch.channels_last)
    model = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model, x, strict=False))
        want, got = model(x), frozen(x)
    assert max_diff(got["detail"], want["detail"]) < 1e-5


@test
def golden_case_reproduces():
    with tempfile.TemporaryDirectory() as tmp:
        golden.make_case(tmp, "tiny_64x64", hfam.tiny(), 64, 64, 1, "F32")
        data, meta = weights.read_safetensors(os.path.join(tmp, "tiny_64x64.golden.safetensors"))
        assert meta["weights"] == "tiny_64x64.safetensors"
        model = hfam.load_folded(os.path.join(tmp, "tiny_64x64.safetensors"), torch.float64)
        x = hfam.preprocess(data["image"], model.config, 64)
        assert max_diff(x, data["input"]) < 1e-6
        with torch.no_grad():
            out = model(torch.from_numpy(data["input"]).double())
        for k in ("semantic", "detail", "fused"):
            assert data[k].dtype == np.float32 and max_diff(out[k], data[k]) < 1e-6, k
        assert data["margin"].shape == (1, 1, 64, 64) and data["margin"].min() >= 0


@test
def full_size_cost():
    # HFAM.md section 8: 88.6 M parameters and 114.7 GMAC (512 x 512) for ResNet-50; 107.6 M,
    # 134.1 GMAC (512 x 512) and 75.4 GMAC (512 x 288) for ResNet-101. Parameters of the
    # trainable network (BatchNorm's gamma and beta included), MACs of every convolution.
    for cfg, params, macs in ((hfam.r50(), 88.6, {(512, 512): 114.7}),
                              (hfam.r101(), 107.6, {(512, 512): 134.1, (512, 288): 75.4})):
        model = hfam.HFAM(cfg).to("meta")  # shapes only: counting computes nothing
        n = sum(p.numel() for p in model.parameters()) / 1e6
        assert round(n, 1) == params, f"ResNet-{cfg.encoder_depth}: {n:.2f} M parameters"
        folded = sum(np.prod(s) for s in expected_shapes(cfg).values()) / 1e6
        counted = []
        for (w, h), want in sorted(macs.items()):
            got = hfam.count_macs(model, w, h) / 1e9
            assert round(got, 1) == want, f"ResNet-{cfg.encoder_depth} {w}x{h}: {got:.2f} GMAC"
            counted.append(f"{got:.2f} GMAC at {w}x{h}")
        print(f"    ResNet-{cfg.encoder_depth}: {n:.2f} M parameters ({folded:.2f} M folded), "
              + ", ".join(counted))


def main() -> int:
    torch.set_num_threads(2)
    passed = failed = 0
    for fn in TESTS:
        start = time.time()
        try:
            fn()
        except Exception:  # report every failure, then go on
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

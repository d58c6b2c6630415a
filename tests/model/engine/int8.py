"""int8 on the CPU (issue 18) through hfam-matte: a random R18 model calibrated by
model/python/quant/calibrate.py runs in int8 close to its fp32 matte and closer still to
PyTorch's simulation of the same quantisation (so that the error is the quantisation's, not a
wrong scale's), also calibrated with L-BB left in fp32 (--lbb-fp32) and with the decoders'
group (--decoders), and the loader refuses each kind of bad activation range, naming the
tensor. A second model, with L-BB's dilation 2, runs L-BB's first convolution at f1's size
(model/engine/backend-cpu-lowres.c): it must come as close.

Usage: int8.py HFAM_MATTE MODEL MODEL2   (MODEL: an F32 weight file, the golden r18_160x96;
MODEL2: the golden r50_160x96)

With ONEDNN_MAX_CPU_ISA=AVX2_VNNI on a CPU without AVX-VNNI (AMD's Zen 4, Intel's cores with
AVX-512 alone), oneDNN runs int8 on plain AVX2 (vpmaddubsw, whose pairwise sums saturate at
16 bits): not the path this run is for, so it skips (77). Without VNNI at all, the int8 mattes
are not compared (BENCHMARKS.md, "int8 without VNNI"); the loader's checks still run.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "reference"))
sys.path.insert(0, os.path.join(ROOT, "model", "python", "quant"))
import calibrate  # noqa: E402
import hfam  # noqa: E402
import torch  # noqa: E402
import weights  # noqa: E402

SUFFIX = ".act_max"


def onednn_flags():
    """The CPU's flags as oneDNN's kernels see them under the caps these tests set
    (ONEDNN_MAX_CPU_ISA=AVX2 or AVX2_VNNI: no AVX-512; AVX2 without AVX-VNNI either)."""
    with open("/proc/cpuinfo") as f:
        flags = set(next((line.split() for line in f if line.startswith("flags")), []))
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap in ("AVX2", "AVX2_VNNI"):
        flags = {f for f in flags if not f.startswith("avx512")}
    if cap == "AVX2":
        flags.discard("avx_vnni")
    return flags


def fake_quantise(y, peak, unsigned):
    scale = peak / (255 if unsigned else 127)
    return torch.clamp(torch.round(y / scale), 0 if unsigned else -128, 255 if unsigned else 127) \
        * scale


def round_weights(modules):
    """Each convolution's weights rounded per output channel, as the engine quantises them."""
    with torch.no_grad():
        for m in modules:
            if isinstance(m, torch.nn.Conv2d):
                scale = (m.weight.abs().amax(dim=(1, 2, 3)) / 127)[:, None, None, None]
                m.weight.copy_(torch.round(m.weight / scale).clamp(-127, 127) * scale)


def simulated_int8(path):
    """The folded network with the engine's int8 layers simulated in fp32: weights rounded per
    output channel, each of their values rounded to its u8 or s8 grid, and each concatenation
    an int8 convolution reads (L-BB's input, the context convolution's and the decoder blocks')
    to that of the largest of its inputs' ranges. The decoders' group (calibrate.py
    --decoders) where the file has it; their last layers stay fp32."""
    tensors, metadata = weights.read_safetensors(path)
    ranges = {k[:-len(SUFFIX)]: float(v[0]) for k, v in tensors.items() if k.endswith(SUFFIX)}
    model = hfam.build_folded(hfam.HfamConfig.from_metadata(metadata),
                              {k: v for k, v in tensors.items() if not k.endswith(SUFFIX)})
    encoder = model.encoder
    round_weights([*encoder.modules(), *model.lbb.modules()])

    def on(module, name, unsigned):
        module.register_forward_hook(lambda m, i, y: fake_quantise(y, ranges[name], unsigned))

    def on_input(module, peak):
        module.register_forward_pre_hook(lambda m, i: (fake_quantise(i[0], peak, True),))

    encoder.register_forward_pre_hook(lambda m, i: (fake_quantise(i[0], ranges["input"], False),))
    on(encoder.conv1, "encoder.conv1", True)
    for layer in range(1, 5):
        for index, block in enumerate(getattr(encoder, f"layer{layer}")):
            prefix = f"encoder.layer{layer}.{index}"
            on(block.conv1, f"{prefix}.conv1", True)
            if hasattr(block, "conv3"):  # a bottleneck's output is its conv3's value
                on(block.conv2, f"{prefix}.conv2", True)
                on(block, f"{prefix}.conv3", True)
            else:
                on(block, f"{prefix}.conv2", True)  # a basic block's output
            if block.downsample is not None:
                on(block.downsample, f"{prefix}.downsample.0", False)
    if "lbb.0.conv" not in ranges:
        return model  # L-BB in fp32
    last = "conv3" if hasattr(encoder.layer1[0], "conv3") else "conv2"
    f = [ranges["encoder.conv1"]] + [
        ranges[f"encoder.layer{layer}.{len(getattr(encoder, f'layer{layer}')) - 1}.{last}"]
        for layer in range(1, 5)]
    on_input(model.lbb, max(f[0], f[1]))
    for j, layer in enumerate(model.lbb):
        on(layer, f"lbb.{j}.conv", True)
    if "context.conv" not in ranges:
        return model  # the decoders' group in fp32
    for level in (2, 3, 4):
        mfem = getattr(model, f"mfem{level}")
        round_weights([m.conv for m in (mfem.b0, mfem.b1, mfem.b2, mfem.b3)])
        for k in range(4):
            on(getattr(mfem, f"b{k}"), f"mfem{level}.b{k}.conv", True)
    round_weights([model.context.conv])
    on_input(model.context, max(ranges[f"mfem{level}.project.conv"] for level in (2, 3, 4)))
    on(model.context, "context.conv", True)
    for i in range(5):
        round_weights([getattr(model, f"psp{i}").conv])
        on(getattr(model, f"psp{i}"), f"psp{i}.conv", True)
    # each block's input: the block before (enlarged), with P_i or the skip (scaled by A)
    skips = {3: f[3], 2: f[2], 1: f[1], 0: ranges["lbb.2.conv"]}
    for decoder in ("semantic", "detail"):
        for i in range(5):
            block = getattr(model, f"{decoder}{i}")
            int8_layers = [layer for layer in block if layer.relu]
            round_weights([layer.conv for layer in int8_layers])
            for j, layer in enumerate(int8_layers):
                on(layer, f"{decoder}{i}.{j}.conv", True)
            before = ranges[f"{decoder}{i + 1}.2.conv"] if i < 4 else f[4]
            if decoder == "semantic":
                on_input(block, max(before, ranges[f"psp{i}.conv"]))
            elif i < 4:
                on_input(block, max(before, skips[i]))
    return model


def matte(tool, model, photo, out, precision, env=None):
    """The matte as floats in 0..1, or the tool's failure (returncode, stderr)."""
    # (islands 0: a random model's islands fall differently in int8, which is not what this
    # measures)
    r = subprocess.run([tool, photo, "-o", out, "--alpha", "--refine", "none", "--islands", "0",
                        "-m", model, "--backend", "cpu", "--precision", precision, "--threads",
                        "2"],
                       capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        return r.returncode, r.stderr
    return np.asarray(Image.open(out).convert("L"), dtype=np.float64) / 255


def calibrated_fixture(tmp, model, rng):
    """In `tmp`: four random calibration photos, a random frame, the output path, and `model`
    calibrated on the photos. Returns (photos, frame, out, calibrated)."""
    photos = os.path.join(tmp, "photos")
    os.makedirs(photos)
    for i in range(4):
        Image.fromarray(hfam.random_image(160, 96, rng)).save(
            os.path.join(photos, f"calibration{i}.png"))
    photo = os.path.join(tmp, "frame.png")
    Image.fromarray(hfam.random_image(160, 96, rng)).save(photo)
    calibrated = os.path.join(tmp, "calibrated.safetensors")
    calibrate.main(["--model", model, "--images", photos, "--val-fraction", "1",
                    "-o", calibrated])
    return photos, photo, os.path.join(tmp, "alpha.png"), calibrated


def check_int8(tool, what, path, photo, out, failures, most=0.25):
    """The int8 matte of `path` near its fp32 one (at most `most` of the matte's spread), and
    nearer PyTorch's simulation of int8."""
    fp32 = matte(tool, path, photo, out, "fp32")
    int8 = matte(tool, path, photo, out, "int8")
    if isinstance(fp32, tuple) or isinstance(int8, tuple):
        failures.append(f"{what}: hfam-matte failed: fp32 {fp32}, int8 {int8}")
        return
    simulated = hfam.matte(simulated_int8(path), np.asarray(Image.open(photo).convert("RGB")))
    # errors against the matte's own spread, so that a flat matte cannot pass
    spread = max(fp32.std(), 1e-3)
    error = np.abs(int8 - fp32).mean() / spread
    to_simulated = np.abs(int8 - simulated).mean() / spread
    print(f"{what}: int8 vs fp32: mean |difference| {np.abs(int8 - fp32).mean():.4f}, "
          f"matte spread {spread:.4f}, normalised {error:.3f}; vs PyTorch's "
          f"simulation of int8 {to_simulated:.3f}")
    # measured: 0.15 and 0.04, with the decoders' group 0.16 and 0.06 (the fused
    # matte's argmax flips where values round differently); R50 0.30 and 0.09
    if error > most:
        failures.append(f"{what}: int8 matte {error:.3f} of the matte's spread from fp32's")
    if to_simulated > error / 2:
        failures.append(f"{what}: int8 matte {to_simulated:.3f} from PyTorch's "
                        f"simulation, not closer than to fp32 ({error:.3f})")


def check_split(tool, path, photo, out, failures):
    """L-BB's first convolution at f1's size against the whole convolution, in int8 and in
    fp32: the same matte but for rounding (the split does not round up(f1) to the
    concatenation's int8 grid). This model's f0 has 8 channels, so in fp32 only AVX2's layout
    (int8-avx2-vnni) splits it; AVX-512's is the golden r50_256x256's."""
    for precision in ("int8", "fp32"):
        split = matte(tool, path, photo, out, precision)
        whole = matte(tool, path, photo, out, precision, {"HFAM_CPU_WHOLE_CONVOLUTIONS": "1"})
        if isinstance(split, tuple) or isinstance(whole, tuple):
            failures.append(f"split, {precision}: hfam-matte failed: {split}, {whole}")
            continue
        difference = np.abs(split - whole)
        mean = difference.mean() / max(whole.std(), 1e-3)
        print(f"split against whole, {precision}: max |difference| {difference.max():.4f}, "
              f"mean {mean:.4f} of the matte's spread")
        # measured in int8: 3 levels at most, 0.0015; a band left out: 77 levels, 0.007
        if difference.max() > 10 / 255 or mean > 0.004:
            failures.append(f"split, {precision}: {difference.max():.4f} at most, {mean:.4f} "
                            "of the spread from the whole convolution's matte")


def main() -> int:
    tool, model, model2 = sys.argv[1:4]
    flags = onednn_flags()
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2_VNNI" \
            and "avx_vnni" not in flags:
        print("skip: ONEDNN_MAX_CPU_ISA=AVX2_VNNI, but this CPU has no AVX-VNNI "
              "(oneDNN would run int8 on plain AVX2)")
        return 77
    rng = np.random.default_rng(18)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        photos, photo, out, calibrated = calibrated_fixture(tmp, model, rng)

        encoder_only = os.path.join(tmp, "encoder-only.safetensors")
        calibrate.main(["--model", model, "--images", photos, "--val-fraction", "1",
                        "--lbb-fp32", "-o", encoder_only])
        decoders = os.path.join(tmp, "decoders.safetensors")
        calibrate.main(["--model", model, "--images", photos, "--val-fraction", "1",
                        "--decoders", "-o", decoders])
        # (without VNNI oneDNN's pairwise products saturate at 16 bits: not the quantisation
        # PyTorch simulates)
        vnni = bool({"avx512_vnni", "avx_vnni"} & flags)
        if not vnni:
            print("no VNNI for oneDNN on this CPU: the int8 mattes are not compared")
        for what, path in [("encoder and L-BB", calibrated),
                           ("encoder, L-BB in fp32", encoder_only),
                           ("encoder, L-BB and the decoders' group", decoders)]:
            if vnni:
                check_int8(tool, what, path, photo, out, failures)
        with tempfile.TemporaryDirectory() as tmp2:
            *_, calibrated2 = calibrated_fixture(tmp2, model2, rng)
            if vnni:
                # its int8 matte was 0.30 from fp32's with the whole convolution too
                check_int8(tool, "R50, L-BB's first convolution at f1's size", calibrated2,
                           photo, out, failures, most=0.35)
                check_split(tool, calibrated2, photo, out, failures)

        fp32 = matte(tool, calibrated, photo, out, "fp32")
        int8 = matte(tool, calibrated, photo, out, "int8")
        # default: int8 for a file with ranges where oneDNN has VNNI (avx512_vnni, or
        # avx_vnni's AVX2 path), else fp32; with AVX512-BF16 too, int8-bf16, which bf16.py
        # checks
        if "avx512_bf16" not in flags:
            chosen = matte(tool, calibrated, photo, out, "default")
            want, name = (int8, "int8") if vnni else (fp32, "fp32")
            if isinstance(chosen, tuple) or not np.array_equal(chosen, want):
                failures.append(f"precision default did not give the {name} matte")

        refused = matte(tool, model, photo, out, "int8")
        if not (isinstance(refused, tuple) and "no activation ranges" in refused[1]):
            failures.append(f"int8 without activation ranges was not refused: {refused}")

        tensors, metadata = weights.read_safetensors(calibrated)
        dtype = calibrate.stored_dtype(calibrated)
        nan = np.array([np.nan], dtype=np.float32)
        cases = [
            ("missing", {"encoder.layer2.0.conv1.act_max": None},
             "tensor encoder.layer2.0.conv1.act_max missing"),
            ("L-BB's without the encoder's",
             {k: None for k in tensors if k.endswith(SUFFIX) and not k.startswith("lbb.")},
             "tensor input.act_max missing"),
            ("part of L-BB's", {"lbb.1.conv.act_max": None}, "tensor lbb.1.conv.act_max missing"),
            ("zero", {"encoder.conv1.act_max": np.zeros(1, np.float32)},
             "encoder.conv1.act_max: activation range 0"),
            ("negative", {"input.act_max": -np.ones(1, np.float32)},
             "input.act_max: activation range -1"),
            ("not finite", {"encoder.layer1.0.conv2.act_max": nan},
             "encoder.layer1.0.conv2.act_max"),
            ("wrong shape", {"encoder.layer4.1.conv2.act_max": np.ones(2, np.float32)},
             "encoder.layer4.1.conv2.act_max"),
            ("on a decoder's last layer", {"semantic0.2.conv.act_max": np.ones(1, np.float32)},
             "semantic0.2.conv.act_max"),
            ("part of the decoders' group", {"detail2.1.conv.act_max": np.ones(1, np.float32)},
             "tensor mfem2.b0.conv.act_max missing"),
        ]
        with_decoders, _ = weights.read_safetensors(decoders)
        cases_decoders = [
            ("missing from the decoders' group", {"mfem3.project.conv.act_max": None},
             "tensor mfem3.project.conv.act_max missing"),
            ("the decoders' group without L-BB's",
             {k: None for k in with_decoders if k.startswith("lbb.") and k.endswith(SUFFIX)},
             "tensor lbb.0.conv.act_max missing: the decoders' activation ranges need L-BB's"),
            ("not finite in the decoders' group", {"psp1.conv.act_max": nan}, "psp1.conv.act_max"),
            ("zero in the decoders' group", {"detail4.0.conv.act_max": np.zeros(1, np.float32)},
             "detail4.0.conv.act_max: activation range 0"),
            ("wrong shape in the decoders' group",
             {"semantic2.1.conv.act_max": np.ones(2, np.float32)}, "semantic2.1.conv.act_max"),
            ("on MFEM's pooled branch", {"mfem4.b4.conv.act_max": np.ones(1, np.float32)},
             "mfem4.b4.conv.act_max"),
            ("on a decoder's last layer, beside the group",
             {"detail0.2.conv.act_max": np.ones(1, np.float32)}, "detail0.2.conv.act_max"),
        ]
        for base, what, changes, fragment in ([(tensors, *c) for c in cases]
                                              + [(with_decoders, *c) for c in cases_decoders]):
            broken = dict(base)
            for name, value in changes.items():
                if value is None:
                    del broken[name]
                else:
                    broken[name] = value
            path = os.path.join(tmp, "broken.safetensors")
            weights.write_safetensors(path, broken, metadata, dtype=dtype)
            r = matte(tool, path, photo, out, "fp32")
            if not (isinstance(r, tuple) and fragment in r[1]):
                failures.append(f"{what}: want an error saying '{fragment}', got {r}")
            else:
                print(f"{what}: {r[1].strip()}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""PyTorch reference of HFAM, the trimap-free portrait matting network.

The network is specified in ../../../../shared/HFAM.md; ../README.md fixes the weight file, the
hyper-parameters, the tensor names and the decisions the specification leaves open. This module
follows both, section by section, and is the oracle the C engine is tested against:

- `HfamConfig` holds the hyper-parameters of the weight file's `__metadata__`.
- `HFAM(config)` is the trainable network (convolutions without bias, followed by BatchNorm);
  `HFAM(config, folded=True)` is the exported network (biased convolutions, no BatchNorm),
  whose `state_dict` is exactly the content of a weight file.
- `fold_batchnorm` turns the first into the tensors of the second; `load_folded` and
  `HFAM.from_file` run a weight file in PyTorch.
- `preprocess`, `inference_dims` and `matte` are the engine's pre- and post-processing.
- `random_init` gives a network random but well-conditioned weights (tests, benchmarks).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import weights

FORMAT = "hfam"
FORMAT_VERSION = "1"

ENCODER_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}

# Semantic classes, in the order of the logits' channels.
BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2


# ---------------------------------------------------------------------------------------------
# Hyper-parameters (model/README.md, "Hyper-parameters")

def _format_number(v: float) -> str:
    """The shortest text that reads back as the same double; integers without '.0'."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _format_list(values: Sequence[float]) -> str:
    return ",".join(_format_number(v) for v in values)


def _parse_list(text: str, kind, key: str) -> Tuple:
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"hyper-parameter {key}: malformed list {text!r}") from None


@dataclasses.dataclass(frozen=True)
class HfamConfig:
    """The hyper-parameters of model/README.md. Defaults: ResNet-50, full HFAM.md sizes."""

    encoder_depth: int = 50
    encoder_width: int = 64
    stride_in_1x1: bool = False
    input_order: str = "RGB"
    input_scale: float = 1.0
    input_mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    input_std: Tuple[float, float, float] = (0.229, 0.224, 0.225)
    mfem_channels: int = 256
    mfem_rates: Tuple[int, ...] = (4, 8, 12, 2, 4, 6, 1, 2, 3)
    sk_width: int = 32
    context_widths: Tuple[int, ...] = (256, 256, 128, 64, 64)
    semantic_widths: Tuple[int, ...] = (512, 512, 256, 256, 256, 128, 128, 128, 64,
                                        64, 64, 64, 64, 64, 3)
    detail_widths: Tuple[int, ...] = (512, 512, 256, 256, 256, 128, 128, 128, 64,
                                      64, 64, 64, 64, 64, 1)
    lbb_width: int = 64
    lbb_dilation: int = 2
    inference_size: int = 512

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        def need(ok, what):
            if not ok:
                raise ValueError(f"hyper-parameter {what}")
        need(self.encoder_depth in ENCODER_BLOCKS,
             f"encoder_depth {self.encoder_depth}: not 18, 34, 50 or 101")
        need(self.encoder_width > 0, "encoder_width must be positive")
        need(self.input_order in ("RGB", "BGR"),
             f"input_order {self.input_order!r}: not RGB or BGR")
        need(self.input_scale > 0, "input_scale must be positive")
        need(len(self.input_mean) == 3, "input_mean needs 3 values")
        need(len(self.input_std) == 3 and all(s > 0 for s in self.input_std),
             "input_std needs 3 positive values")
        need(self.mfem_channels > 0, "mfem_channels must be positive")
        need(len(self.mfem_rates) == 9 and all(r > 0 for r in self.mfem_rates),
             "mfem_rates needs 9 positive values")
        need(self.sk_width > 0, "sk_width must be positive")
        need(len(self.context_widths) == 5 and all(w > 0 for w in self.context_widths),
             "context_widths needs 5 positive values")
        for key, last in (("semantic_widths", 3), ("detail_widths", 1)):
            widths = getattr(self, key)
            need(len(widths) == 15 and all(w > 0 for w in widths),
                 f"{key} needs 15 positive values")
            need(widths[-1] == last, f"{key}: the last width must be {last}")
        need(self.lbb_width > 0 and self.lbb_dilation > 0,
             "lbb_width and lbb_dilation must be positive")
        need(self.inference_size >= 32, "inference_size must be at least 32")

    # Derived quantities -------------------------------------------------------------------
    @property
    def bottleneck(self) -> bool:
        return self.encoder_depth >= 50

    def encoder_blocks(self) -> Tuple[int, int, int, int]:
        return ENCODER_BLOCKS[self.encoder_depth]

    def encoder_channels(self) -> Tuple[int, int, int, int, int]:
        """Channels of f0..f4."""
        w, e = self.encoder_width, 4 if self.bottleneck else 1
        return (w, w * e, 2 * w * e, 4 * w * e, 8 * w * e)

    # Metadata -----------------------------------------------------------------------------
    def to_metadata(self) -> Dict[str, str]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder_depth": str(self.encoder_depth),
            "encoder_width": str(self.encoder_width),
            "stride_in_1x1": "true" if self.stride_in_1x1 else "false",
            "input_order": self.input_order,
            "input_scale": _format_number(self.input_scale),
            "input_mean": _format_list(self.input_mean),
            "input_std": _format_list(self.input_std),
            "mfem_channels": str(self.mfem_channels),
            "mfem_rates": _format_list(self.mfem_rates),
            "sk_width": str(self.sk_width),
            "context_widths": _format_list(self.context_widths),
            "semantic_widths": _format_list(self.semantic_widths),
            "detail_widths": _format_list(self.detail_widths),
            "lbb_width": str(self.lbb_width),
            "lbb_dilation": str(self.lbb_dilation),
            "inference_size": str(self.inference_size),
        }

    @classmethod
    def from_metadata(cls, metadata: Dict[str, str]) -> "HfamConfig":
        def get(key):
            if key not in metadata:
                raise ValueError(f"hyper-parameter {key} is missing")
            return metadata[key]

        def integer(key):
            text = get(key)
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"hyper-parameter {key}: not an integer: {text!r}") from None

        if get("format") != FORMAT or get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not an HFAM weight file of version {FORMAT_VERSION}: format "
                             f"{metadata['format']!r}, version {metadata.get('format_version')!r}")
        if get("stride_in_1x1") not in ("true", "false"):
            raise ValueError("hyper-parameter stride_in_1x1: not true or false: "
                             f"{metadata['stride_in_1x1']!r}")
        return cls(
            encoder_depth=integer("encoder_depth"),
            encoder_width=integer("encoder_width"),
            stride_in_1x1=get("stride_in_1x1") == "true",
            input_order=get("input_order"),
            input_scale=_parse_list(get("input_scale"), float, "input_scale")[0],
            input_mean=_parse_list(get("input_mean"), float, "input_mean"),
            input_std=_parse_list(get("input_std"), float, "input_std"),
            mfem_channels=integer("mfem_channels"),
            mfem_rates=_parse_list(get("mfem_rates"), int, "mfem_rates"),
            sk_width=integer("sk_width"),
            context_widths=_parse_list(get("context_widths"), int, "context_widths"),
            semantic_widths=_parse_list(get("semantic_widths"), int, "semantic_widths"),
            detail_widths=_parse_list(get("detail_widths"), int, "detail_widths"),
            lbb_width=integer("lbb_width"),
            lbb_dilation=integer("lbb_dilation"),
            inference_size=integer("inference_size"),
        )


def r18() -> HfamConfig:
    return HfamConfig(encoder_depth=18)


def r34() -> HfamConfig:
    return HfamConfig(encoder_depth=34)


def r50() -> HfamConfig:
    return HfamConfig(encoder_depth=50)


def r101() -> HfamConfig:
    return HfamConfig(encoder_depth=101)


def tiny() -> HfamConfig:
    """A ResNet-18-structured network a few hundred kB large, for fast tests."""
    return HfamConfig(encoder_depth=18, encoder_width=8, mfem_channels=16, sk_width=8,
                      context_widths=(16, 16, 8, 8, 8),
                      semantic_widths=(16, 16, 16, 16, 16, 8, 8, 8, 8, 8, 8, 8, 8, 8, 3),
                      detail_widths=(16, 16, 16, 16, 16, 8, 8, 8, 8, 8, 8, 8, 8, 8, 1),
                      lbb_width=8)


def r50_slim() -> HfamConfig:
    """ResNet-50 with decoders about a tenth of HFAM.md's (32 M parameters instead of 88.6 M:
    64 MB in fp16, so that the default model stays under 100 MB): the default model's shape."""
    return HfamConfig(mfem_channels=48, sk_width=16, context_widths=(64, 64, 32, 16, 16),
                      semantic_widths=(64, 64, 32, 32, 32, 16, 16, 16, 16, 16, 16, 16, 16, 16, 3),
                      detail_widths=(64, 64, 32, 32, 32, 16, 16, 16, 16, 16, 16, 16, 16, 16, 1))


PRESETS = {"tiny": tiny, "r18": r18, "r34": r34, "r50": r50, "r50-slim": r50_slim,
           "r101": r101}


# ---------------------------------------------------------------------------------------------
# Building blocks

def _batchnorm(channels: int, folded: bool) -> nn.Module:
    # In a folded network the BatchNorm lives in its convolution's weight and bias.
    return nn.Identity() if folded else nn.BatchNorm2d(channels)


class ConvBN(nn.Module):
    """HFAM.md's conv(k, cin -> cout, d): 'same' padding, BatchNorm, ReLU.

    plain: the convolution alone, with bias (a network's last layer). folded: biased convolution
    whose `bn` is the identity (the BatchNorm was folded into it), ReLU kept."""

    def __init__(self, cin: int, cout: int, k: int = 1, dilation: int = 1, plain: bool = False,
                 folded: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation,
                              bias=plain or folded)
        self.bn = _batchnorm(cout, plain or folded)
        self.relu = not plain

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


def up(x: torch.Tensor, size) -> torch.Tensor:
    """HFAM.md's up(x, s): bilinear, align_corners = false, to an explicit size."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def up2(x: torch.Tensor) -> torch.Tensor:
    """The 'up x2' that ends every decoder block."""
    return up(x, (2 * x.shape[-2], 2 * x.shape[-1]))


# ---------------------------------------------------------------------------------------------
# 1. Shared encoder: a ResNet in torchvision layout

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, folded: bool, stride_in_1x1: bool):
        super().__init__()
        del stride_in_1x1  # only bottlenecks have a 1x1 to put the stride on
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=folded)
        self.bn1 = _batchnorm(planes, folded)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=folded)
        self.bn2 = _batchnorm(planes, folded)
        self.downsample = _downsample(cin, planes, stride, folded)

    def residual_batchnorms(self) -> List[nn.Module]:
        """The BatchNorms whose output enters the residual sum."""
        return [self.bn2] + ([] if self.downsample is None else [self.downsample[1]])

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, folded: bool, stride_in_1x1: bool):
        super().__init__()
        # torchvision (ResNet v1.5) strides the 3x3; Caffe/Keras ResNet v1 strides the first 1x1.
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(cin, planes, 1, s1, 0, bias=folded)
        self.bn1 = _batchnorm(planes, folded)
        self.conv2 = nn.Conv2d(planes, planes, 3, s3, 1, bias=folded)
        self.bn2 = _batchnorm(planes, folded)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, 1, 0, bias=folded)
        self.bn3 = _batchnorm(planes * 4, folded)
        self.downsample = _downsample(cin, planes * 4, stride, folded)

    def residual_batchnorms(self) -> List[nn.Module]:
        """The BatchNorms whose output enters the residual sum."""
        return [self.bn3] + ([] if self.downsample is None else [self.downsample[1]])

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def _downsample(cin: int, cout: int, stride: int, folded: bool) -> Optional[nn.Module]:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=folded), _batchnorm(cout, folded))


class Encoder(nn.Module):
    """E0..E4 of HFAM.md section 1; returns f0 (H/2) .. f4 (H/32)."""

    def __init__(self, config: HfamConfig, folded: bool):
        super().__init__()
        w = config.encoder_width
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=folded)
        self.bn1 = _batchnorm(w, folded)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        block = Bottleneck if config.bottleneck else BasicBlock
        cin = w
        for i, n in enumerate(config.encoder_blocks()):
            planes = w << i
            layer = []
            for j in range(n):
                layer.append(block(cin, planes, 2 if i > 0 and j == 0 else 1, folded,
                                   config.stride_in_1x1))
                cin = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))

    def blocks(self) -> List[nn.Module]:
        return [*self.layer1, *self.layer2, *self.layer3, *self.layer4]

    def forward(self, x) -> List[torch.Tensor]:
        f0 = F.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [f0, f1, f2, f3, f4]


# ---------------------------------------------------------------------------------------------
# 2. MFEM: ASPP branches weighted by SK attention

class MFEM(nn.Module):
    def __init__(self, cin: int, cm: int, rates: Sequence[int], sk_width: int, folded: bool):
        super().__init__()
        self.cm = cm
        self.b0 = ConvBN(cin, cm, 1, folded=folded)
        self.b1 = ConvBN(cin, cm, 3, rates[0], folded=folded)
        self.b2 = ConvBN(cin, cm, 3, rates[1], folded=folded)
        self.b3 = ConvBN(cin, cm, 3, rates[2], folded=folded)
        self.b4 = ConvBN(cin, cm, 1, folded=folded)  # on the global average
        self.squeeze = ConvBN(cm, sk_width, 1, folded=folded)  # SK's FC + BN + ReLU
        self.select = nn.Conv2d(sk_width, 5 * cm, 1)  # SK's FC_k, k = 0..4, stacked
        self.project = ConvBN(5 * cm, cm, 1, folded=folded)

    def forward(self, x):
        n, _, h, w = x.shape
        b = [self.b0(x), self.b1(x), self.b2(x), self.b3(x)]
        b4 = self.b4(x.mean((2, 3), keepdim=True))  # N x Cm x 1 x 1, constant over the map
        # s = GAP(b0 + ... + b4); GAP(b4) = b4.
        s = b[0].mean((2, 3), keepdim=True)
        for branch in b[1:]:
            s = s + branch.mean((2, 3), keepdim=True)
        s = s + b4
        # select logits: branch k, channel c at index k * Cm + c; softmax over the branches.
        a = self.select(self.squeeze(s)).view(n, 5, self.cm, 1, 1).softmax(dim=1)
        b.append(b4.expand(n, self.cm, h, w))
        return self.project(torch.cat([a[:, k] * b[k] for k in range(5)], dim=1))


# ---------------------------------------------------------------------------------------------
# The whole network

def _decoder_block(cin: int, widths: Sequence[int], plain_last: bool,
                   folded: bool) -> nn.Sequential:
    """Three conv(3) layers (the block's up x2 is applied by the caller)."""
    c0, c1, c2 = widths
    return nn.Sequential(ConvBN(cin, c0, 3, folded=folded), ConvBN(c0, c1, 3, folded=folded),
                         ConvBN(c1, c2, 3, plain=plain_last, folded=folded))


class HFAM(nn.Module):
    """HFAM.md sections 1-5. forward(x) takes the normalised input (N, 3, H, W), H and W
    multiples of 32, and returns a dict of (N, C, H, W) tensors:
    logits (S), semantic (P_s = softmax S), detail (alpha_d), fused (alpha_p)."""

    def __init__(self, config: HfamConfig, folded: bool = False):
        super().__init__()
        self.config = config
        self.folded = folded
        c = config.encoder_channels()
        cm = config.mfem_channels
        r = config.mfem_rates
        p = config.context_widths  # p_4 .. p_0
        sw = [config.semantic_widths[3 * i:3 * i + 3] for i in range(5)]  # D4 .. D0
        dw = [config.detail_widths[3 * i:3 * i + 3] for i in range(5)]

        self.encoder = Encoder(config, folded)
        self.mfem2 = MFEM(c[2], cm, r[0:3], config.sk_width, folded)
        self.mfem3 = MFEM(c[3], cm, r[3:6], config.sk_width, folded)
        self.mfem4 = MFEM(c[4], cm, r[6:9], config.sk_width, folded)
        self.context = ConvBN(3 * cm, cm, 1, folded=folded)
        for i, width in zip((4, 3, 2, 1, 0), p):
            self.add_module(f"psp{i}", ConvBN(cm, width, 3, folded=folded))

        # Semantic decoder: D^s_4 sees concat(f4, P4), D^s_i concat(D^s_{i+1}, P_i).
        sem_in = [c[4] + p[0]] + [sw[k][2] + p[k + 1] for k in range(4)]
        for k, i in enumerate((4, 3, 2, 1, 0)):
            self.add_module(f"semantic{i}", _decoder_block(sem_in[k], sw[k], i == 0, folded))

        lw, ld = config.lbb_width, config.lbb_dilation
        self.lbb = nn.Sequential(ConvBN(c[0] + c[1], lw, 3, ld, folded=folded),
                                 ConvBN(lw, lw, 3, ld, folded=folded),
                                 ConvBN(lw, lw, 3, ld, folded=folded))
        self.attention = nn.Conv2d(3, 1, 1)

        # Detail decoder: D^d_4 sees f4, D^d_i concat(D^d_{i+1}, A * skip_i), skips f3, f2, f1, L.
        skips = (c[3], c[2], c[1], lw)
        det_in = [c[4]] + [dw[k][2] + skips[k] for k in range(4)]
        for k, i in enumerate((4, 3, 2, 1, 0)):
            self.add_module(f"detail{i}", _decoder_block(det_in[k], dw[k], i == 0, folded))

    @classmethod
    def from_file(cls, path: str, dtype: torch.dtype = torch.float32) -> "HFAM":
        return load_folded(path, dtype)

    def forward(self, x) -> Dict[str, torch.Tensor]:
        f0, f1, f2, f3, f4 = self.encoder(x)

        # MFEM at H/8, H/16, H/32; context G at H/8.
        m2 = self.mfem2(f2)
        m3 = up(self.mfem3(f3), f2.shape[-2:])
        m4 = up(self.mfem4(f4), f2.shape[-2:])
        g = self.context(torch.cat([m2, m3, m4], dim=1))

        # P_i at the size of semantic block i's input.
        p4 = F.avg_pool2d(self.psp4(g), 4)
        p3 = F.avg_pool2d(self.psp3(g), 2)
        p2 = self.psp2(g)
        p1 = up(self.psp1(g), f1.shape[-2:])
        p0 = up(self.psp0(g), f0.shape[-2:])

        # Semantic decoder; the last block's logits are enlarged from H/2 to H.
        s = up2(self.semantic4(torch.cat([f4, p4], dim=1)))
        s = up2(self.semantic3(torch.cat([s, p3], dim=1)))
        s = up2(self.semantic2(torch.cat([s, p2], dim=1)))
        s = up2(self.semantic1(torch.cat([s, p1], dim=1)))
        logits = up2(self.semantic0(torch.cat([s, p0], dim=1)))
        semantic = logits.softmax(dim=1)

        # L-BB at H/2 and the position attention A at H, average-pooled to every skip's size.
        lbb = self.lbb(torch.cat([f0, up(f1, f0.shape[-2:])], dim=1))
        a = torch.sigmoid(self.attention(semantic))

        d = up2(self.detail4(f4))
        d = up2(self.detail3(torch.cat([d, F.avg_pool2d(a, 16) * f3], dim=1)))
        d = up2(self.detail2(torch.cat([d, F.avg_pool2d(a, 8) * f2], dim=1)))
        d = up2(self.detail1(torch.cat([d, F.avg_pool2d(a, 4) * f1], dim=1)))
        detail = torch.sigmoid(up2(self.detail0(torch.cat([d, F.avg_pool2d(a, 2) * lbb], dim=1))))

        # Fusion: 0 on background, 1 on foreground, alpha_d on unknown (first of equal maxima).
        cls = semantic.argmax(dim=1, keepdim=True)
        fused = torch.where(cls == UNKNOWN, detail, (cls == FOREGROUND).to(detail.dtype))
        return {"logits": logits, "semantic": semantic, "detail": detail, "fused": fused}


# ---------------------------------------------------------------------------------------------
# BatchNorm folding and folded networks

def batchnorm_of(conv_name: str) -> Optional[str]:
    """Name of the BatchNorm that follows a convolution (model/README.md's naming)."""
    head, dot, last = conv_name.rpartition(".")
    if last == "conv":
        return f"{head}{dot}bn"
    if last.startswith("conv") and last[4:].isdigit():  # torchvision: convK -> bnK
        return f"{head}{dot}bn{last[4:]}"
    if conv_name.endswith("downsample.0"):
        return conv_name[:-1] + "1"
    return None


@torch.no_grad()
def fold_batchnorm(model: HFAM) -> "OrderedDict[str, torch.Tensor]":
    """The folded tensors of `model` (in its dtype): every convolution's weight and bias, with
    the BatchNorm that follows it folded in: w' = w g / sqrt(v + eps), b' = beta + (b - m) g /
    sqrt(v + eps). Convolutions without a BatchNorm keep their weight and bias."""
    modules = dict(model.named_modules())
    folded = OrderedDict()
    used = set()
    for name, conv in model.named_modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        w = conv.weight
        b = conv.bias if conv.bias is not None else torch.zeros_like(w[:, 0, 0, 0])
        bn_name = batchnorm_of(name)
        bn = modules.get(bn_name)
        if isinstance(bn, nn.BatchNorm2d):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            w = w * scale.view(-1, 1, 1, 1)
            b = bn.bias + (b - bn.running_mean) * scale
            used.add(bn_name)
        elif conv.bias is None:
            raise ValueError(f"{name}: convolution without bias and without BatchNorm")
        folded[f"{name}.weight"] = w.detach().clone()
        folded[f"{name}.bias"] = b.detach().clone()
    unused = {n for n, m in modules.items() if isinstance(m, nn.BatchNorm2d)} - used
    if unused:
        raise ValueError(f"BatchNorm without a convolution to fold into: {sorted(unused)}")
    return folded


def build_folded(config: HfamConfig, tensors: Dict[str, object],
                 dtype: torch.dtype = torch.float32) -> HFAM:
    """A folded network holding `tensors` (names and shapes exactly as model/README.md)."""
    model = HFAM(config, folded=True).to(dtype)
    state = OrderedDict((k, v if torch.is_tensor(v) else torch.from_numpy(np.asarray(v)))
                        for k, v in tensors.items())
    model.load_state_dict(state, strict=True)  # converts to dtype
    return model.eval()


def load_folded(path: str, dtype: torch.dtype = torch.float32) -> HFAM:
    """Runs a weight file in PyTorch: the folded network with the file's tensors (without the
    activation ranges of a calibrated file, NAME.act_max: the engine's int8 reads them, the
    reference computes in float)."""
    tensors, metadata = weights.read_safetensors(path)
    tensors = {name: t for name, t in tensors.items() if not name.endswith(".act_max")}
    return build_folded(HfamConfig.from_metadata(metadata), tensors, dtype)


# ---------------------------------------------------------------------------------------------
# Random initialisation

def random_image(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random RGB frame (H x W x 3, uint8): blobs of colour plus a little noise."""
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, height // 16 + 2, width // 16 + 2)))
    img = up(coarse, (height, width))[0].permute(1, 2, 0).numpy()
    img = img + rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@torch.no_grad()
def random_init(model: HFAM, seed: int = 0, images: Optional[torch.Tensor] = None) -> HFAM:
    """Random weights, well conditioned at any depth, with non-trivial BatchNorm statistics.

    Convolutions get Kaiming-normal weights, BatchNorms a random gamma in [0.5, 1.5] and a beta
    in [0.5, 1.5] where a ReLU follows (so that the ReLU clips a minority of values: a network
    whose ReLUs clip half of every layer amplifies rounding errors by about 1.2 per layer,
    which would make the golden tests loose) and in [-0.2, 0.2] where the output joins a
    residual sum. Each BatchNorm's running statistics are then set, layer after layer in one
    forward pass over `images` (normalised, N x 3 x H x W; default two random 128 x 128
    frames), to the statistics of its actual input, perturbed (mean shifted by up to 0.2 std,
    variance scaled by [0.5, 2]) so that folding is exercised while activations keep a
    unit-like scale through the whole depth. The two output layers are rescaled so that their
    logits are centred with a fixed spread: the semantic argmax then shows all three classes
    and alpha_d is not saturated. The same seed gives the same weights in any dtype (up to
    its rounding)."""
    if model.folded:
        raise ValueError("random_init needs the unfolded network")
    gen = torch.Generator().manual_seed(seed)

    def randn(shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64)

    def uniform(lo, hi, shape):
        return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(randn(m.weight.shape) * math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.copy_(0.5 * randn(m.bias.shape))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(uniform(0.5, 1.5, m.weight.shape))
            m.bias.copy_(uniform(0.5, 1.5, m.bias.shape))
    for block in model.encoder.blocks():
        for bn in block.residual_batchnorms():
            bn.bias.copy_(uniform(-0.2, 0.2, bn.bias.shape))
    # The attention's three weights act on probabilities: spread them so that A varies.
    model.attention.weight.copy_(2.0 * randn(model.attention.weight.shape))

    def set_statistics(bn, inputs):
        x = inputs[0]
        mean = x.mean((0, 2, 3))
        if x.numel() // x.shape[1] >= 8:
            var = x.var((0, 2, 3), unbiased=False)
        else:  # the 1 x 1 maps of b4 and the SK squeeze: one scale for the whole layer
            var = x.var(unbiased=False).expand_as(mean)
        var = var.clamp_min(1e-2 * float(var.mean()) + 1e-12)  # channels the ReLU killed
        shape = mean.shape
        bn.running_mean.copy_(mean + 0.2 * var.sqrt() * randn(shape).clamp(-1, 1).to(mean))
        bn.running_var.copy_(var * uniform(0.5, 2.0, shape).to(var))

    def standardise(spread):
        def hook(conv, inputs, y):
            mean = y.mean((0, 2, 3))
            gain = spread / y.std((0, 2, 3))
            conv.weight.mul_(gain.view(-1, 1, 1, 1))
            conv.bias.copy_((conv.bias - mean) * gain)
            return (y - mean.view(1, -1, 1, 1)) * gain.view(1, -1, 1, 1)
        return hook

    if images is None:
        rng = np.random.default_rng(seed)
        images = torch.cat([preprocess(random_image(128, 128, rng), model.config, 128)
                            for _ in range(2)])
    dtype = next(model.parameters()).dtype
    hooks = [m.register_forward_pre_hook(set_statistics)
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    hooks.append(model.semantic0[2].conv.register_forward_hook(standardise(2.0)))
    hooks.append(model.detail0[2].conv.register_forward_hook(standardise(1.5)))
    try:
        model.eval()(images.to(dtype))
    finally:
        for h in hooks:
            h.remove()
    return model


# ---------------------------------------------------------------------------------------------
# Inference: sizes, pre- and post-processing (model/README.md, "Decisions")

def _round_half_away(x: float) -> int:
    """C's round() for x >= 0, exactly (x - floor(x) is exact in binary floating point)."""
    q = math.floor(x)
    return q + 1 if x - q >= 0.5 else q


def inference_dims(width: int, height: int, long_side: int) -> Tuple[int, int]:
    """The inference size (w, h) of a frame: long side `long_side`, each side a multiple of 32,
    at least 32. In double precision: scale = long_side / max(w, h); side' = 32 *
    round(side * scale / 32), rounding halves away from zero."""
    if width < 1 or height < 1 or long_side < 1:
        raise ValueError(f"bad frame size {width}x{height} or long side {long_side}")
    scale = long_side / max(width, height)
    return tuple(max(32, 32 * _round_half_away(side * scale / 32)) for side in (width, height))


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    """The engine's frame resize: antialiased bilinear (an identity at equal sizes)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def preprocess(rgb: np.ndarray, config: HfamConfig, long_side: Optional[int] = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An 8-bit RGB frame (H x W x 3) -> the normalised network input (1, 3, h, w) at the
    inference size for `long_side` (None or <= 0: the config's): p = value / 255 * input_scale
    in the network's channel order, resized, then x = (p - mean) / std."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("preprocess wants an H x W x 3 uint8 array")
    if long_side is None or long_side <= 0:
        long_side = config.inference_size
    w, h = inference_dims(rgb.shape[1], rgb.shape[0], long_side)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(dtype).permute(2, 0, 1)[None]
    if config.input_order == "BGR":
        x = x.flip(1)
    x = _resize(x / 255 * config.input_scale, (h, w))
    mean = torch.tensor(config.input_mean, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(config.input_std, dtype=dtype).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def matte(model: HFAM, rgb: np.ndarray, long_side: Optional[int] = None) -> np.ndarray:
    """alpha_p of an 8-bit RGB frame at the frame's size (H x W float32 in 0..1)."""
    dtype = next(model.parameters()).dtype
    x = preprocess(rgb, model.config, long_side, dtype)
    fused = model.eval()(x)["fused"]
    return _resize(fused, rgb.shape[:2])[0, 0].to(torch.float32).numpy()


# ---------------------------------------------------------------------------------------------
# Cost

@torch.no_grad()
def count_macs(model: nn.Module, width: int, height: int) -> int:
    """Multiply-accumulates of all convolutions for one (1, 3, height, width) input. A model
    on the 'meta' device counts without computing."""
    total = 0

    def hook(conv, inputs, y):
        nonlocal total
        total += y.numel() * conv.weight[0].numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        p = next(model.parameters())
        model.eval()(torch.zeros(1, 3, height, width, dtype=p.dtype, device=p.device))
    finally:
        for h in hooks:
            h.remove()
    return total

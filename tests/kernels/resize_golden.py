#!/usr/bin/python3
"""Golden outputs of PyTorch's antialiased bilinear resize for tests/kernels/test_resize.c.

Writes one little-endian binary file: b"HFRG", the number of cases (u32), then per case
  kind (u32: 0 = plane, 1 = frame), sw, sh, dw, dh (i32), and
  plane: ss (i32, row stride in floats), the source (sh * ss f32), the expected dh * dw f32;
  frame: bytes_per_pixel, stride (bytes), rgb offsets[3], order[3] (i32), scale, mean[3],
         std[3] (f32), the source (sh * stride u8), the expected 3 * dh * dw f32.
"""
import struct
import sys

import torch
import torch.nn.functional as F


def resize(x, dw, dh):
    """x: (C, H, W) float -> (C, dh, dw), as model/README.md prescribes."""
    return F.interpolate(x[None], size=(dh, dw), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def plane_case(gen, sw, sh, dw, dh, pad=0):
    ss = sw + pad
    src = torch.rand((sh, ss), generator=gen, dtype=torch.float32)
    out = resize(src[None, :, :sw], dw, dh)[0]
    return (struct.pack("<5ii", 0, sw, sh, dw, dh, ss)
            + src.numpy().tobytes() + out.contiguous().numpy().tobytes())


def frame_case(gen, sw, sh, dw, dh, bpp, offsets, order, scale, mean, std, pad=0):
    stride = sw * bpp + pad
    src = torch.randint(0, 256, (sh, stride), generator=gen, dtype=torch.uint8)
    pixels = src[:, :sw * bpp].reshape(sh, sw, bpp)
    planes = torch.stack([pixels[:, :, offsets[order[k]]] for k in range(3)]).float()
    out = resize(planes / 255 * scale, dw, dh)
    out = (out - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return (struct.pack("<5i", 1, sw, sh, dw, dh)
            + struct.pack("<2i3i3i", bpp, stride, *offsets, *order)
            + struct.pack("<7f", scale, *mean, *std)
            + src.numpy().tobytes() + out.contiguous().numpy().tobytes())


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(20240607)
    imagenet = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    rgb, bgr = [0, 1, 2], [2, 1, 0]
    cases = [
        plane_case(gen, 64, 48, 20, 15),        # shrink
        plane_case(gen, 7, 5, 23, 17),          # enlarge
        plane_case(gen, 40, 10, 13, 31),        # mixed
        plane_case(gen, 10, 40, 31, 13),
        plane_case(gen, 33, 17, 5, 9),          # odd sizes
        plane_case(gen, 33, 17, 47, 29),
        plane_case(gen, 1, 1, 1, 1),
        plane_case(gen, 1, 1, 3, 4),
        plane_case(gen, 4, 4, 1, 1),
        plane_case(gen, 4097, 31, 128, 7),
        plane_case(gen, 4097, 31, 1, 1),
        plane_case(gen, 31, 4097, 33, 100),
        plane_case(gen, 4097, 31, 4099, 33),
        plane_case(gen, 10, 10, 10, 10),        # identity
        plane_case(gen, 16, 9, 16, 40),         # one side unchanged
        plane_case(gen, 20, 11, 7, 5, pad=4),   # row stride beyond the width
        plane_case(gen, 480, 270, 128, 72),
        plane_case(gen, 128, 72, 480, 270),
        frame_case(gen, 1920, 1080, 512, 288, 4, rgb, rgb, 1.0, *imagenet),
        frame_case(gen, 391, 217, 96, 64, 4, [2, 1, 0], rgb, 1.0, *imagenet, pad=12),
        frame_case(gen, 33, 17, 32, 32, 3, rgb, bgr, 255.0, [0, 0, 0], [1, 1, 1]),
        frame_case(gen, 1, 1, 32, 32, 4, [2, 1, 0], bgr, 1.0, *imagenet),
        frame_case(gen, 4097, 31, 128, 32, 3, rgb, rgb, 1.0, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        frame_case(gen, 100, 60, 320, 192, 3, rgb, rgb, 1.0, *imagenet, pad=1),
        frame_case(gen, 37, 300, 64, 96, 4, [1, 2, 3], bgr, 1.0, *imagenet),
    ]
    with open(sys.argv[1], "wb") as f:
        f.write(b"HFRG" + struct.pack("<I", len(cases)))
        for case in cases:
            f.write(case)


if __name__ == "__main__":
    main()

"""Minimal PNG writing and size reading for the eval tests, with the standard library only:
every bit depth and colour type hfam-eval must read, without depending on PIL's choices."""

import struct
import zlib

GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6
CHANNELS = {GRAY: 1, RGB: 3, PALETTE: 1, GRAY_ALPHA: 2, RGBA: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png(path, width, height, samples, bit_depth=8, color_type=GRAY, chunks=()):
    """samples: height rows of width * channels integers each (row-major), packed as the
    bit depth says (big-endian for 16 bits, MSB first below 8). chunks: (kind, data) pairs
    written before the image data (PLTE, tRNS)."""
    channels = CHANNELS[color_type]
    raw = bytearray()
    for row in samples:
        assert len(row) == width * channels
        raw.append(0)  # filter: none
        if bit_depth == 16:
            raw += struct.pack(">%dH" % len(row), *row)
        elif bit_depth == 8:
            raw += bytes(row)
        else:
            per_byte = 8 // bit_depth
            for i in range(0, len(row), per_byte):
                byte = 0
                for j, v in enumerate(row[i:i + per_byte]):
                    byte |= v << (8 - bit_depth * (j + 1))
                raw.append(byte)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr))
        for kind, data in chunks:
            f.write(_chunk(kind, data))
        f.write(_chunk(b"IDAT", zlib.compress(bytes(raw))) + _chunk(b"IEND", b""))


def png_size(path):
    """(width, height) from the IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    return struct.unpack(">II", head[16:24])

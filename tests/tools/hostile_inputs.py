#!/usr/bin/python3
"""hfam-matte and hfam-eval on hostile inputs, made here and tiny: pictures whose header
claims more pixels than the tools read (64 megapixels, 32768 a side), a PNG bomb, a
truncated JPEG, and option values out of range. Each must end in a clear error that names
the file or the option, at once and without allocating what the file claims.

Usage: hostile_inputs.py HFAM_MATTE HFAM_EVAL [MODEL.safetensors]. PIL (optional) makes
the JPEG cases, skipped without it; the model the --memory-budget case."""

import os
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pngfile  # noqa: E402

try:
    from PIL import Image
except ImportError:
    Image = None

HFAM_MATTE, HFAM_EVAL = sys.argv[1], sys.argv[2]
MODEL = sys.argv[3] if len(sys.argv) > 3 else None
# what a refusal may take at most (the claims below are 1.2 to 3.6 GB of pixels)
MAX_RSS_KB = 200 * 1024


def refuses(args, *names):
    """Runs a tool that must fail with exit 1 naming every one of `names`, small in memory."""
    cmd = ["/usr/bin/time", "-q", "-f", "%M", *args] if os.path.exists("/usr/bin/time") else args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    stderr = r.stderr
    if cmd is not args:
        stderr, _, rss = stderr.rstrip().rpartition("\n")
        if int(rss) > MAX_RSS_KB:
            sys.exit(f"{' '.join(args)}: took {rss} KB to refuse")
    if r.returncode != 1:
        sys.exit(f"{' '.join(args)}: exit {r.returncode}, expected 1\n{r.stdout}\n{stderr}")
    for name in names:
        if name not in stderr:
            sys.exit(f"{' '.join(args)}: the error does not name {name!r}: {stderr}")
    print(f"ok: {stderr.strip()}")


def png_claiming(path, width, height, color_type=pngfile.RGB, rows=1):
    """A PNG whose IHDR says width x height, with the data of `rows` rows of zeros."""
    channels = pngfile.CHANNELS[color_type]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    row = b"\0" + bytes(width * channels)
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(rows)) + deflate.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + pngfile._chunk(b"IHDR", ihdr)
                + pngfile._chunk(b"IDAT", idat) + pngfile._chunk(b"IEND", b""))


def jpeg_bytes(width, height):
    import io
    picture = Image.new("RGB", (width, height))
    for x in range(width):
        for y in range(height):
            picture.putpixel((x, y), (x * 7 % 256, y * 5 % 256, (x * y) % 256))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=90)
    return out.getvalue()


def jpeg_claiming(path, width, height):
    """A small JPEG whose frame header (SOF0) says width x height."""
    data = bytearray(jpeg_bytes(16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    with open(path, "wb") as f:
        f.write(data)


def both_tools_refuse(folder, path, *names):
    """hfam-matte reads it as a picture, hfam-eval as a matte (and as ground truth)."""
    refuses([HFAM_MATTE, path, "-o", os.path.join(folder, "out.png")], path, *names)
    stem = os.path.splitext(os.path.basename(path))[0]
    preds, truth = os.path.join(folder, "preds-" + stem), os.path.join(folder, "truth-" + stem)
    os.makedirs(preds)
    os.makedirs(truth)
    ext = os.path.splitext(path)[1]
    os.link(path, os.path.join(preds, "a" + ext))
    pngfile.write_png(os.path.join(truth, "a.png"), 4, 4, [[0] * 4] * 4)
    refuses([HFAM_EVAL, preds, truth], "a" + ext, *names)


with tempfile.TemporaryDirectory() as tmp:
    # sides within 32768 but 20000 x 20000 = 400 megapixels: refused from the header
    big = os.path.join(tmp, "big.png")
    png_claiming(big, 20000, 20000)
    both_tools_refuse(tmp, big, "20000x20000", "64 megapixels")

    # a PNG bomb: 16000 x 16000 gray, all of it zeros, compressed to about 250 KB
    bomb = os.path.join(tmp, "bomb.png")
    png_claiming(bomb, 16000, 16000, pngfile.GRAY, rows=16000)
    print(f"the bomb is {os.path.getsize(bomb)} bytes")
    both_tools_refuse(tmp, bomb, "16000x16000")

    # a side over 32768 (libpng's user limit and ours)
    wide = os.path.join(tmp, "wide.png")
    png_claiming(wide, 40000, 1)
    both_tools_refuse(tmp, wide, "exceeds user limit")

    if Image is None:
        print("skip: the JPEG cases need PIL")
    else:
        claims = os.path.join(tmp, "claims.jpg")
        jpeg_claiming(claims, 20000, 20000)
        print(f"the JPEG claiming 20000x20000 is {os.path.getsize(claims)} bytes")
        both_tools_refuse(tmp, claims, "20000x20000", "64 megapixels")

        truncated = os.path.join(tmp, "truncated.jpg")
        data = jpeg_bytes(64, 64)
        with open(truncated, "wb") as f:
            f.write(data[:len(data) // 2])
        both_tools_refuse(tmp, truncated, "Premature end")

        # the scan cut short but the file closed with an end marker: as truncated (found by
        # fuzz-images, a 240-byte file claiming 2637x17666 that decoded 46 Mpx of grey)
        cut = os.path.join(tmp, "cut-scan.jpg")
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2] + b"\xff\xd9")
        both_tools_refuse(tmp, cut, "premature end of data segment")

    # option values out of range, before any file is read
    picture = os.path.join(tmp, "picture.png")
    pngfile.write_png(picture, 12, 9, [[128] * 36] * 9, 8, pngfile.RGB)
    out = os.path.join(tmp, "out.png")
    for value in ["2147483647", "99999999999", "-1", "31", "8193", "abc"]:
        refuses([HFAM_MATTE, picture, "-o", out, "--size", value], "--size " + value, "8192")
    for value in ["0", "-5", "18446744073709551617", "1x"]:
        refuses([HFAM_MATTE, picture, "-o", out, "--memory-budget", value],
                "--memory-budget " + value)
    for value in ["0.5", "0.5,0.5", "0.6,0.4", "-0.1,0.5", "0.2,1.5", "nan,1", "0.1,x", "1,2,3"]:
        refuses([HFAM_MATTE, picture, "-o", out, "--key-levels", value], "--key-levels " + value)
    for value in ["bilateral", "guided:", "guided:0,1e-4", "guided:65,1e-4", "guided:4",
                  "guided:4,0", "guided:4,nan", "guided:4,2", "guided:4,1e-3,1", "guidedx:4,1e-3"]:
        refuses([HFAM_MATTE, picture, "-o", out, "--refine", value], "--refine " + value)
    for value in ["-0.1", "1.5", "nan", "0.1x", ""]:
        refuses([HFAM_MATTE, picture, "-o", out, "--islands", value], "--islands " + value)
    for value in ["yes", "ON", "1", ""]:
        refuses([HFAM_MATTE, picture, "-o", out, "--letterbox", value], "--letterbox " + value)
    for value in ["4/3", "4:0", "0:3", "-4:3", "17:1", "1:17", "4:3:1", "1.5", "x:3", ""]:
        refuses([HFAM_MATTE, picture, "-o", out, "--pixel-aspect", value],
                "--pixel-aspect " + value)
    refuses([HFAM_MATTE, picture, "-o", out, "--rgba", "--fill", "alpha"], "--fill alpha")
    refuses([HFAM_MATTE, picture, "-o", out, "--fill", "foreground"], "--fill", "--rgba")
    refuses([HFAM_EVAL, "--model", "m", "--refine", "x", tmp, tmp], "--refine x")
    refuses([HFAM_EVAL, "--model", "m", "--size", "2147483647", tmp, tmp], "--size 2147483647")
    refuses([HFAM_EVAL, "--memory-budget", "64", tmp, tmp], "--memory-budget")

    if MODEL:
        # 1 MiB is less than any plan: refused with the budget's error, not an allocation
        refuses([HFAM_MATTE, "--model", MODEL, "-b", "cpu", "--memory-budget", "1", picture,
                 "-o", out], "memory budget of 1 MiB", "--memory-budget")
        r = subprocess.run([HFAM_MATTE, "--model", MODEL, "-b", "cpu", "--memory-budget", "512",
                            "--size", "64", picture, "-o", out], capture_output=True, text=True)
        if r.returncode != 0 or pngfile.png_size(out) != (12, 9):
            sys.exit(f"hfam-matte --memory-budget 512 --size 64: {r.returncode} {r.stderr}")
        print("ok: --memory-budget 512 --size 64 runs")
        for edges in (["--refine", "guided"], ["--refine", "guided:8,0.01"],
                      ["--key-levels", "0.2,0.8"],
                      ["--rgba", "--fill", "foreground"],
                      ["--rgba", "--fill", "frame", "--refine", "guided", "--key-levels", "0,0.5"],
                      ["--islands", "0"], ["--islands", "1"],
                      ["--letterbox", "off"], ["--letterbox", "on"],
                      ["--pixel-aspect", "4:3"], ["--pixel-aspect", "1:16"]):
            r = subprocess.run([HFAM_MATTE, "--model", MODEL, "-b", "cpu", "--size", "32", *edges,
                                picture, "-o", out], capture_output=True, text=True)
            if r.returncode != 0 or pngfile.png_size(out) != (12, 9):
                sys.exit(f"hfam-matte {' '.join(edges)}: {r.returncode} {r.stderr}")
            print(f"ok: {' '.join(edges)} runs")

"""The default model (model/default/default.safetensors) through hfam-matte on a real photo that no
training or evaluation set holds: Debian opencv-doc's messi5.jpg (a footballer in the air over
a pitch and a crowd). The player must be opaque and the pitch, sky and crowd clear.

Usage: default_model.py HFAM_MATTE MODEL CACHE_DIR   (exit 77 when the photo cannot be had)
"""

import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

# (row, column) in the 548 x 342 photo, chosen by eye: on the player...
PLAYER = [(150, 235), (100, 240), (200, 260), (250, 270), (300, 250), (110, 120)]
# ... and on the background (pitch, crowd, corners)
BACKGROUND = [(0, 0), (341, 0), (0, 547), (341, 547), (60, 60), (320, 100), (40, 450),
              (290, 400), (120, 330)]


def fetch_photo(cache: str) -> str:
    found = glob.glob(os.path.join(cache, "usr/share/doc/opencv-doc/examples/data/messi5.jpg"))
    if found:
        return found[0]
    if os.environ.get("HFAMMATTE_OFFLINE", "0") not in ("", "0"):
        print("SKIP: HFAMMATTE_OFFLINE is set and messi5.jpg (Debian opencv-doc) is not cached")
        sys.exit(77)
    os.makedirs(cache, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=cache, check=True,
                       capture_output=True)
        deb = glob.glob(os.path.join(cache, "opencv-doc_*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, cache], check=True)
        os.remove(deb)
    except (OSError, subprocess.CalledProcessError, IndexError) as e:
        print(f"SKIP: cannot fetch opencv-doc for messi5.jpg: {e}")
        sys.exit(77)
    return fetch_photo(cache)


def main() -> int:
    tool, model, cache = sys.argv[1:4]
    photo = fetch_photo(cache)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "alpha.png")
        env = dict(os.environ, HFAMMATTE_DEFAULT_MODEL=model)
        subprocess.run([tool, photo, "-o", out, "--alpha"], check=True, env=env)
        alpha = np.asarray(Image.open(out).convert("L"), dtype=np.float64) / 255
    failures = []
    if alpha.shape != (342, 548):
        failures.append(f"matte is {alpha.shape}, the photo 342 x 548")
    else:
        failures += [f"player pixel {p}: alpha {alpha[p]:.3f} < 0.9" for p in PLAYER
                     if alpha[p] < 0.9]
        failures += [f"background pixel {p}: alpha {alpha[p]:.3f} > 0.1" for p in BACKGROUND
                     if alpha[p] > 0.1]
        share = (alpha > 0.5).mean()
        if not 0.08 <= share <= 0.25:
            failures.append(f"{share:.1%} of the photo is foreground; the player covers ~14 %")
        print(f"mean alpha {alpha.mean():.3f}, foreground {share:.1%}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

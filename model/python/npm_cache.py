"""The download cache shared by the scripts that fetch pinned packages (model/python/imagenet,
model/python/teachers): where it is, npm's integrity of a file, and a pinned Node environment
installed once with `npm ci`."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile


class Unavailable(RuntimeError):
    """node, npm or the registry is missing: a reason to skip, not to fail."""


def default_cache() -> str:
    """$HFAMMATTE_CACHE, else $XDG_CACHE_HOME/hfammatte, else ~/.cache/hfammatte."""
    if os.environ.get("HFAMMATTE_CACHE"):
        return os.environ["HFAMMATTE_CACHE"]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "hfammatte")


@contextlib.contextmanager
def staged(dest: str):
    """A new folder beside `dest` to fill: when the block ends without an exception it replaces
    `dest` in one rename (readable by all), otherwise it is removed, so that a cache entry is
    never half written."""
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(dest) + ".", dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def offline() -> bool:
    """$HFAMMATTE_OFFLINE set (not empty, not 0): nothing may be downloaded."""
    return os.environ.get("HFAMMATTE_OFFLINE", "0") not in ("", "0")


def registry_reachable() -> bool:
    """Whether `npm ping` answers within seconds: npm's own retries would take minutes to
    give up on a machine without a network."""
    if offline():
        return False
    try:
        r = subprocess.run(["npm", "ping", "--fetch-retries=0", "--fetch-timeout=15000"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def integrity_of(path: str) -> str:
    """The npm 'integrity' (Subresource Integrity, sha512) of a file."""
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode("ascii")


def npm_ci_dest(package_dir: str, cache: str, prefix: str) -> str:
    """Where npm_ci installs package_dir's lock: CACHE/PREFIX-<lock hash>."""
    with open(os.path.join(package_dir, "package-lock.json"), "rb") as f:
        lock = f.read()
    return os.path.join(cache, f"{prefix}-{hashlib.sha256(lock).hexdigest()[:12]}")


def npm_ci_installed(package_dir: str, cache: str, prefix: str) -> bool:
    """Whether npm_ci has installed package_dir's lock already (no download needed)."""
    return os.path.exists(os.path.join(npm_ci_dest(package_dir, cache, prefix), ".installed"))


def npm_ci(package_dir: str, cache: str, prefix: str, log) -> str:
    """node_modules of package_dir's package.json + package-lock.json, installed once with
    `npm ci` (which checks every tarball's integrity) into CACHE/PREFIX-<lock hash>."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise Unavailable("node or npm is not installed")
    dest = npm_ci_dest(package_dir, cache, prefix)
    if npm_ci_installed(package_dir, cache, prefix):
        return os.path.join(dest, "node_modules")
    log(f"npm ci into {dest}")
    with staged(dest) as tmp:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(package_dir, name), tmp)
        r = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--loglevel=error"], cwd=tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise Unavailable(f"npm ci failed (registry unreachable?):\n{r.stdout[-2000:]}")
        open(os.path.join(tmp, ".installed"), "w").close()
    return os.path.join(dest, "node_modules")

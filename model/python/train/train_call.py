"""The training state that calls on a lent GPU continue, kept in this repository's history.

A lent GPU trains for a few minutes a call (README.md, "On a lent GPU: train first"), and
nothing outside the repository survives from one session to the next. So each call's weights
(int8 storage, about 32 MB for r50-slim) are committed at resume.safetensors and taken out of
the tree again in the next commit: the history keeps them, the tree, which every device call
carries within 64 MiB, does not. resume.json names that commit and records every call.

    train_call.py prepare [--part K/N]   # here, before the call: labels, pack, start weights
    train_call.py finish DIR             # here, after it: DIR holds the call's files
    train_call.py fetch [OUT]            # its weights (default: in the default model's place)
    train_call.py show                   # the calls so far

prepare makes the teacher labels where they are missing or were made by another rule than
label.py's default (about 6 minutes on 2 cores) and the wallpapers where they are missing (about
a minute), packs the next part of the backgrounds, and writes the state's weights over
model/default/default.safetensors in the working tree, so that device-train.sh continues them
(finish, or git checkout, puts the shipped model back). finish commits twice, only the state's
paths, and leaves the default model as shipped.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import glob
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "teachers"))
import label  # noqa: E402
import weights  # noqa: E402

STATE = "model/python/train/resume.safetensors"
RECORD = "model/python/train/resume.json"
DEFAULT_MODEL = "model/default/default.safetensors"
PARTS = 8
CALL = ('run(command="model/python/train/device-train.sh 360 --val-every 120 --sizes 384,512", '
        'carry=[".pack"], timeout_s=540)')


def git(repo: str, *args: str, capture: bool = False) -> bytes:
    result = subprocess.run(["git", "-C", repo, *args], check=True,
                            stdout=subprocess.PIPE if capture else None)
    return result.stdout if capture else b""


def load_record(repo: str) -> dict:
    path = os.path.join(repo, RECORD)
    if not os.path.exists(path):
        return {"state": None, "calls": []}
    with open(path) as f:
        return json.load(f)


def write_record(repo: str, record: dict) -> None:
    os.makedirs(os.path.dirname(os.path.join(repo, RECORD)), exist_ok=True)
    with open(os.path.join(repo, RECORD), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(repo: str, out: str) -> bool:
    """Writes the state's weights to `out`; False when there is no state yet."""
    state = load_record(repo)["state"]
    if state is None:
        return False
    try:
        data = git(repo, "show", f"{state['commit']}:{state['path']}", capture=True)
    except subprocess.CalledProcessError:
        raise SystemExit(f"{RECORD}: commit {state['commit']} with {state['path']} is not in "
                         "this repository's history (was it rewritten?)")
    if sha256(data) != state["sha256"]:
        raise SystemExit(f"{state['path']} in {state['commit']}: sha256 {sha256(data)}, "
                         f"{RECORD} says {state['sha256']}")
    with open(out, "wb") as f:
        f.write(data)
    return True


def next_part(record: dict) -> str:
    """The part after the last call's, round the N parts (the first call, or none known: 1)."""
    known = [c["part"] for c in record["calls"] if re.fullmatch(r"\d+/\d+", c["part"])]
    if not known:
        return f"1/{PARTS}"
    k, n = (int(x) for x in known[-1].split("/"))
    return f"{k % n + 1}/{n}"


def labels_stale(labels: str, photos: str) -> str:
    """Why the labels in `labels` must be made again ("" when they need not): missing, cut
    short, made by another rule than what prepare asks of label.py, or of fewer photos than
    `photos` has."""
    try:
        with open(os.path.join(labels, "manifest.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return "missing"
    if not os.path.exists(os.path.join(labels, "accepted.txt")):
        return "missing"
    want = label.labelling_rule("rvm", "selfie", label.DEFAULT_FG, label.DEFAULT_SIDE, None)
    have = {k: manifest.get("settings", {}).get(k) for k in want}
    if have != want:
        return f"made with {have}, not {want}"
    count, wanted = manifest.get("summary", {}).get("images"), len(label.list_images([photos]))
    return "" if count == wanted else f"{count} photos labelled of {wanted}"


def prepare(args) -> int:
    repo = args.repo
    labels, wallpapers = os.path.abspath(args.labels), os.path.abspath(args.wallpapers)
    shared = os.path.join(repo, "..", "shared", "data")
    photos = os.path.join(shared, "people-train", "images")
    stale = labels_stale(labels, photos)
    if stale:
        print(f"teacher labels into {labels} ({stale}; about 6 minutes)", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "..", "teachers", "label.py"),
                        "--teacher", "rvm", photos, labels], check=True)
    if not os.path.exists(os.path.join(wallpapers, "manifest.tsv")):
        print(f"wallpapers into {wallpapers} (about a minute)", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "..", "teachers", "backgrounds.py"),
                        wallpapers], check=True)
    record = load_record(repo)
    part = args.part or next_part(record)
    subprocess.run([os.path.join(HERE, "pack-device.sh"), part, labels, wallpapers], cwd=repo,
                   check=True)
    if fetch(repo, os.path.join(repo, DEFAULT_MODEL)):
        state = record["state"]
        print(f"{DEFAULT_MODEL} in the working tree is now the training state after "
              f"{len(record['calls'])} calls ({state['commit'][:10]}); finish puts the shipped "
              "model back")
    else:
        print("no training state yet: the call continues the shipped default model")
    print(f"pack: part {part}. The call:\n  {CALL}\nthen: /usr/bin/python3 "
          "model/python/train/train_call.py finish FILES_AT")
    return 0


def read_run(folder: str) -> tuple:
    """choice.json and val.csv's rows from the call's run.tar.gz."""
    with tarfile.open(os.path.join(folder, "run.tar.gz")) as tar:
        names = {os.path.normpath(n): n for n in tar.getnames()}

        def member(name):
            return tar.extractfile(names[name]).read().decode() if name in names else None

        choice, val = member("choice.json"), member("val.csv")
    if choice is None:
        raise SystemExit(f"{folder}/run.tar.gz has no choice.json: the run did not finish "
                         "(see train.log)")
    rows = list(csv.DictReader(io.StringIO(val))) if val else []
    return json.loads(choice), rows


def finish(args) -> int:
    repo, folder = args.repo, args.folder
    parts = sorted(glob.glob(os.path.join(folder, "model.part*")))
    if not parts:
        raise SystemExit(f"{folder}: no model.part* (the run wrote no weights; see train.log)")
    choice, val_rows = read_run(folder)
    with tempfile.TemporaryDirectory() as tmp:
        joined = os.path.join(tmp, "model.safetensors")
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    out.write(f.read())
        tensors, metadata = weights.read_safetensors(joined)
        os.makedirs(os.path.dirname(os.path.join(repo, STATE)), exist_ok=True)
        weights.write_safetensors(os.path.join(repo, STATE), tensors, metadata, "I8")
    git(repo, "checkout", "--", DEFAULT_MODEL)

    record = load_record(repo)
    # The part the call trained on, as its run recorded it; a run from before that record
    # took the pack that is here now
    part = choice.get("bg_part")
    split_path = os.path.join(repo, ".pack", "split.json")
    if not part and os.path.exists(split_path):
        with open(split_path) as f:
            part = json.load(f)["bg_part"]
    part = part or "?"
    start = val_rows[0] if val_rows and val_rows[0].get("step") == "0" else None
    call = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": choice.get("device"), "part": part, "seconds": choice["seconds"],
        "steps": choice["steps"], "batch": choice["batch"], "size": choice["size"],
        "lr": choice["lr"], "init": choice.get("init"),
        "start": {k: float(v) for k, v in start.items() if k != "step"} if start else None,
        "end": [{k: c[k] for k in ("long_side", "real_sad", "composite_sad", "wallpaper_sad")
                 if k in c}
                for c in choice["all"] if c["precision"] == "fp32"],
        "chosen_size": choice["chosen"]["long_side"],
    }
    with open(os.path.join(repo, STATE), "rb") as f:
        data = f.read()
    if record["state"] and record["state"]["sha256"] == sha256(data):
        os.remove(os.path.join(repo, STATE))
        raise SystemExit(f"{folder}: these weights are the state already (kept before)")
    n = len(record["calls"]) + 1
    summary = (f"call {n}, {call['device']}, part {part}, {call['steps']} steps in "
               f"{call['seconds']:.0f} s")
    git(repo, "add", STATE)
    git(repo, "commit", "-q", "-m", f"Training state after {summary} (taken out of the tree "
        "in the next commit; resume.json names this one)", "--", STATE)
    commit = git(repo, "rev-parse", "HEAD", capture=True).decode().strip()
    git(repo, "rm", "-q", STATE)
    record["state"] = {"commit": commit, "path": STATE, "sha256": sha256(data),
                       "bytes": len(data)}
    record["calls"].append(call)
    write_record(repo, record)
    git(repo, "add", RECORD)
    git(repo, "commit", "-q", "-m", f"resume.json: {summary}; its weights are in {commit[:10]}",
        "--", STATE, RECORD)
    print(f"kept: {summary}; weights {len(data) / 1e6:.1f} MB in {commit[:10]}")
    show_call(n, call)
    return 0


def show_call(n: int, call: dict) -> None:
    start = call["start"]
    print(f"call {n} ({call['date']}, {call['device']}, part {call['part']}): {call['steps']} "
          f"steps of {call['batch']} at {call['size']} px in {call['seconds']:.0f} s")
    if start:
        print(f"  start:  {sads(start)} (at {max(call['size'], 320)})")
    for end in call["end"]:
        print(f"  end at {end['long_side']}: {sads(end)}")


def sads(figures: dict) -> str:
    """"real SAD r, composite SAD c[, wallpaper SAD w]": the kinds a call's split has."""
    return ", ".join(f"{kind} SAD {figures[kind + '_sad']:.4f}"
                     for kind in ("real", "composite", "wallpaper") if kind + "_sad" in figures)


def show(args) -> int:
    record = load_record(args.repo)
    if not record["calls"]:
        print("no calls yet")
    for n, call in enumerate(record["calls"], 1):
        show_call(n, call)
    if record["state"]:
        print(f"state: {record['state']['commit'][:10]}:{record['state']['path']}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=os.path.normpath(os.path.join(HERE, "..", "..", "..")),
                        help="the repository (default: the one holding this script)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="labels, pack and start weights for the next call")
    p.add_argument("--part", help="K/N of the backgrounds (default: the one after the last call's)")
    p.add_argument("--labels", default=os.path.join(HERE, "..", "..", "..", "..", "labels"))
    p.add_argument("--wallpapers",
                   default=os.path.join(HERE, "..", "..", "..", "..", "wallpapers"))
    p.set_defaults(run=prepare)
    p = sub.add_parser("finish", help="keep a call's weights and record it")
    p.add_argument("folder", help="the call's files (model.part*, run.tar.gz)")
    p.set_defaults(run=finish)
    p = sub.add_parser("fetch", help="write the state's weights")
    p.add_argument("out", nargs="?", help=f"default: {DEFAULT_MODEL}")
    p.set_defaults(run=lambda a: 0 if fetch(a.repo, a.out or os.path.join(a.repo, DEFAULT_MODEL))
                   else sys.exit("no training state yet"))
    p = sub.add_parser("show", help="the calls so far")
    p.set_defaults(run=show)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

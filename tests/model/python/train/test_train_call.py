"""model/python/train/train_call.py in a throwaway git repository: two GPU calls' results kept
(as device-train.sh returns them: split weights, run.tar.gz), each recorded in resume.json, its
int8 weights in the history and out of the tree, the shipped default model put back; fetch
returns the last call's weights; the next call's background part follows the last one's; a call
kept twice and a call that did not finish are refused without a commit; labels made by an older
rule than label.py's default are made again.

Usage: test_train_call.py WORKDIR
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "model", "python", "train"))
sys.path.insert(0, os.path.join(ROOT, "model", "python", "reference"))

import train_call  # noqa: E402
import weights  # noqa: E402

TRAIN_CALL = os.path.join(ROOT, "model", "python", "train", "train_call.py")
EXPORT = os.path.join(ROOT, "model", "python", "reference", "export.py")
ENV = dict(os.environ, GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.org",
           GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.org")


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, env=ENV,
                          stdout=subprocess.PIPE).stdout.decode()


def run_call(repo, *args, ok=True):
    result = subprocess.run([sys.executable, TRAIN_CALL, "--repo", repo, *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = result.stdout.decode()
    assert (result.returncode == 0) == ok, f"train_call {args}: rc {result.returncode}\n{out}"
    return out


def export(path, seed, dtype):
    subprocess.run([sys.executable, EXPORT, "--config", "tiny", "--seed", str(seed), "--dtype",
                    dtype, "-o", path], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def call_folder(work, name, seed, with_choice=True, bg_part=None, wallpapers=False):
    """What device-train.sh leaves in $OUT: the fp16 weights in parts, run.tar.gz (its
    choice.json names the pack's part when bg_part is given, as train_device.py's does; its
    figures have the wallpaper kind when `wallpapers`, as those of a pack with them do)."""
    folder = os.path.join(work, name)
    os.makedirs(folder)
    model = os.path.join(work, name + ".safetensors")
    export(model, seed, "f16")
    with open(model, "rb") as f:
        data = f.read()
    half = len(data) // 2
    for k, piece in enumerate((data[:half], data[half:])):
        with open(os.path.join(folder, f"model.part{k:02d}"), "wb") as f:
            f.write(piece)
    wall = ",wallpaper_sad" if wallpapers else ""
    files = {"val.csv": f"step,real_sad,real_mse,composite_sad,composite_mse{wall}\n"
                        + "".join(f"{step},{3 + seed - k},0.01,{2 + seed - k},0.02"
                                  + (f",{4 + seed - k}" if wallpapers else "") + "\n"
                                  for k, step in enumerate((0, 120)))}
    if with_choice:
        fp32 = [{"long_side": s, "precision": "fp32", "real_sad": 1.5 + seed + s / 1000,
                 "composite_sad": 0.5 + seed, "score": 0,
                 **({"wallpaper_sad": 2.5 + seed} if wallpapers else {})} for s in (384, 512)]
        files["choice.json"] = json.dumps({
            "chosen": fp32[0], "all": fp32 + [dict(fp32[0], precision="fp16")], "steps": 100 + seed,
            "batch": 16, "size": 384, "seconds": 360.0, "lr": 1e-4,
            "init": "model/default/default.safetensors", "device": "NVIDIA H100 80GB HBM3",
            **({"bg_part": bg_part} if bg_part else {})})
    with tarfile.open(os.path.join(folder, "run.tar.gz"), "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return folder, model


def set_pack_part(repo, part):
    os.makedirs(os.path.join(repo, ".pack"), exist_ok=True)
    with open(os.path.join(repo, ".pack", "split.json"), "w") as f:
        json.dump({"bg_part": part}, f)


def check_kept(repo, model, n_calls, part):
    """The last finish kept `model` as the state: recorded, in the history, out of the tree."""
    record = train_call.load_record(repo)
    assert len(record["calls"]) == n_calls, record
    call = record["calls"][-1]
    assert call["part"] == part and call["device"] == "NVIDIA H100 80GB HBM3", call
    assert call["start"]["real_sad"] == 3 + n_calls and len(call["end"]) == 2, call
    state = record["state"]
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == "", "tree not clean"
    assert train_call.STATE not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")
    assert train_call.STATE in git(repo, "ls-tree", "-r", "--name-only", state["commit"])
    out = os.path.join(repo, "..", "fetched.safetensors")
    run_call(repo, "fetch", out)
    fetched, _ = weights.read_safetensors(out)
    trained, _ = weights.read_safetensors(model)
    assert fetched.keys() == trained.keys()
    for name, value in trained.items():
        # int8 per output channel: within half a step of the channel's largest value
        value = np.asarray(value, np.float64)
        err = np.abs(np.asarray(fetched[name], np.float64) - value).max()
        assert err <= np.abs(value).max() / 127 * 0.51 + 1e-6, (name, err)
    # prepare's fetch writes the state over the default model
    run_call(repo, "fetch")
    with open(out, "rb") as a, open(os.path.join(repo, train_call.DEFAULT_MODEL), "rb") as b:
        assert a.read() == b.read()
    git(repo, "checkout", "--", train_call.DEFAULT_MODEL)
    return state


def check_labels_stale(work):
    labels, photos = os.path.join(work, "labels"), os.path.join(work, "photos")
    os.makedirs(photos)
    for name in ("a.jpg", "b.png"):
        open(os.path.join(photos, name), "wb").close()
    assert train_call.labels_stale(labels, photos) == "missing"
    os.makedirs(labels)
    with open(os.path.join(labels, "manifest.json"), "w") as f:
        f.write('{"settings": {"teach')  # cut short
    assert train_call.labels_stale(labels, photos) == "missing"
    rule = train_call.label.labelling_rule
    side = train_call.label.DEFAULT_SIDE
    fg = train_call.label.DEFAULT_FG
    for settings, images, accepted, stale in (
            (rule("rvm", "selfie", fg, side, None), 2, False, True),
            ({"downsample_ratio": 0.375, "iou_min": 0.8}, 2, True, True),
            (rule("rvm", "selfie", fg, None, 0.375), 2, True, True),
            (rule("rvm", "selfie", fg, 512, None), 2, True, True),
            (rule("selfie", "none", "estimate", side, None), 2, True, True),
            (rule("rvm", "none", fg, side, None), 2, True, True),
            (rule("rvm", "selfie", "teacher", side, None), 2, True, True),
            (rule("rvm", "selfie", fg, side, None), 1, True, True),
            (dict(rule("rvm", "selfie", fg, side, None), iou_min=0.8), 2, True, False)):
        with open(os.path.join(labels, "manifest.json"), "w") as f:
            json.dump({"settings": settings, "summary": {"images": images}}, f)
        if accepted:
            with open(os.path.join(labels, "accepted.txt"), "w") as f:
                f.write("a\n")
        got = train_call.labels_stale(labels, photos)
        assert bool(got) == stale, f"labels of {images} photos made with {settings}: {got!r}"
    assert rule("selfie", "none", "estimate", side, None)["rvm_long_side"] is None


def main():
    work = os.path.abspath(sys.argv[1])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    check_labels_stale(work)
    repo = os.path.join(work, "repo")
    os.makedirs(os.path.join(repo, "model", "default"))
    git(repo, "init", "-q")
    export(os.path.join(repo, train_call.DEFAULT_MODEL), 0, "i8")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")

    assert "no calls yet" in run_call(repo, "show")
    assert "no training state" in run_call(repo, "fetch", ok=False)
    assert train_call.next_part(train_call.load_record(repo)) == "1/8"
    # a call whose part is not known (a run from before runs recorded it, with no pack here)
    assert train_call.next_part({"calls": [{"part": "2/8"}, {"part": "?"}]}) == "3/8"

    # a call that did not finish: refused, nothing committed
    head = git(repo, "rev-parse", "HEAD")
    unfinished, _ = call_folder(work, "unfinished", 9, with_choice=False)
    assert "did not finish" in run_call(repo, "finish", unfinished, ok=False)
    assert git(repo, "rev-parse", "HEAD") == head

    # call 1, with the working tree's default model replaced as prepare does
    with open(os.path.join(repo, train_call.DEFAULT_MODEL), "wb") as f:
        f.write(b"the start weights of the call")
    set_pack_part(repo, "1/8")
    first, first_model = call_folder(work, "call1", 1)
    run_call(repo, "finish", first)
    state1 = check_kept(repo, first_model, 1, "1/8")
    assert train_call.next_part(train_call.load_record(repo)) == "2/8"

    # the same call again: refused, nothing committed
    head = git(repo, "rev-parse", "HEAD")
    assert "already" in run_call(repo, "finish", first, ok=False)
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""

    # call 2 continues: its own weights become the state, and the part is the one its run
    # names, not the pack here (prepare may have packed the next one since)
    set_pack_part(repo, "3/8")
    second, second_model = call_folder(work, "call2", 2, bg_part="8/8", wallpapers=True)
    run_call(repo, "finish", second)
    state2 = check_kept(repo, second_model, 2, "8/8")
    assert state2["commit"] != state1["commit"] and state2["sha256"] != state1["sha256"]
    assert train_call.next_part(train_call.load_record(repo)) == "1/8"
    shown = run_call(repo, "show")
    assert "call 1" in shown and "call 2" in shown and state2["commit"][:10] in shown, shown
    # call 2's pack had held-out wallpapers: their figures are recorded and shown, call 1's
    # figures (a pack without) are shown as they were
    calls = train_call.load_record(repo)["calls"]
    assert all("wallpaper_sad" in e for e in calls[1]["end"]), calls[1]
    assert calls[1]["start"]["wallpaper_sad"] == 6.0, calls[1]["start"]
    assert "wallpaper" not in shown.split("call 2")[0], shown
    assert shown.split("call 2")[1].count("wallpaper SAD") == 3, shown
    print("train_call: two calls kept and fetched, refusals without commits, stale labels: ok")


if __name__ == "__main__":
    main()

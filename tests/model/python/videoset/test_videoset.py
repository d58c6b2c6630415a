#!/usr/bin/python3
"""Offline test of model/python/videoset/make_videoset.py on a tiny synthetic set: two pictures
with soft alpha cut by the picture's border, two plain backgrounds, 64x48 frames, 24 frames.
Checks the layout and manifest, determinism, the still stretches, the moving flags, the
composite equation against the written alpha, that no cut edge enters a frame, the package
mode's choice of wallpapers, and that backgrounds.py still refuses the evaluation packages for
training. Exit 77 = skipped (numpy, scipy or Pillow missing)."""
import contextlib
import io
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, '..', '..', '..', '..')
sys.path.insert(0, os.path.join(REPO, 'model', 'python', 'videoset'))
sys.path.insert(0, os.path.join(REPO, 'model', 'python', 'teachers'))
try:
    import numpy as np
    import scipy  # noqa: F401
    from PIL import Image
except ImportError:
    sys.exit(77)
import backgrounds  # noqa: E402
import make_videoset as vs  # noqa: E402

FRAMES = 24
# Each photo is its person's colour everywhere, so that blur-fusion finds F exactly and the
# composite can be checked at soft pixels too.
FOREGROUNDS = {'pa': (200, 60, 40), 'pb': (40, 180, 90)}
BACKGROUNDS = {'bg0.png': ((60, 70, 80), (100, 60)), 'bg1.jpg': ((230, 210, 190), (40, 90))}
RAMP = 12.0   # picture pixels of every soft edge of the person
STEP = 0.35   # a jump of alpha between neighbouring frame pixels above this is a cut edge


def ramp(d):
    return np.clip(d / RAMP + 0.5, 0.0, 1.0)


def person(w, h, head, torso):
    """Soft alpha: a head disc and a torso box (x0, x1, top) that runs off the bottom."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    disc = ramp(head[2] - np.hypot(x - head[0], y - head[1]))
    box = ramp(x - torso[0]) * ramp(torso[1] - x) * ramp(y - torso[2])
    return np.maximum(disc, box)


def decoded_colour(path):
    """The colour of a plain image as decoded (JPEG moves it by a level or so)."""
    with Image.open(path) as im:
        return np.asarray(im.convert('RGB'), np.float64)[0, 0]


def make_inputs(tmp):
    """(pictures folder, backgrounds folder, {file name: its colour as decoded})."""
    pictures = os.path.join(tmp, 'pictures')
    bgs = os.path.join(tmp, 'backgrounds')
    os.makedirs(pictures)
    os.makedirs(bgs)
    alphas = {'pa': person(60, 80, (30, 24, 11), (14, 46, 40)),   # cut at the bottom
              'pb': person(64, 64, (30, 20, 10), (-10, 36, 36))}  # at the bottom and left
    colours = {}
    for name, a in alphas.items():
        path = os.path.join(pictures, name + '.jpg')
        Image.new('RGB', a.shape[::-1], FOREGROUNDS[name]).save(path, quality=95)
        colours[name] = decoded_colour(path)
        Image.fromarray(np.rint(a * 255).astype(np.uint8)).save(
            os.path.join(pictures, name + '.png'))
    for name, (colour, (w, h)) in BACKGROUNDS.items():
        Image.new('RGB', (w, h), colour).save(os.path.join(bgs, name))
        colours[name] = decoded_colour(os.path.join(bgs, name))
    return pictures, bgs, colours


def run(pictures, bgs, out, seed):
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        rc = vs.main([pictures, bgs, out, '--seed', str(seed), '--frames', str(FRAMES),
                      '--long-side', '64', '--aspect', '4:3'])
    assert rc == 0, rc
    lines = printed.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith('total: 2 sequences, 48 frames'), lines
    with open(os.path.join(out, 'manifest.json')) as f:
        return json.load(f)


def read(out, seq, t):
    with Image.open(os.path.join(out, seq, 'frames', f'{t:05d}.jpg')) as im:
        assert im.format == 'JPEG' and im.mode == 'RGB' and im.size == (64, 48), im
        frame = np.asarray(im, np.float64)
    with Image.open(os.path.join(out, seq, 'alpha', f'{t:05d}.png')) as im:
        assert im.format == 'PNG' and im.mode == 'L' and im.size == (64, 48), im
        alpha = np.asarray(im, np.float64) / 255.0
    return frame, alpha


def largest_step(alpha):
    return max(np.abs(np.diff(alpha, axis=0)).max(), np.abs(np.diff(alpha, axis=1)).max())


def all_files(out):
    found = {}
    for d, _, files in os.walk(out):
        for f in files:
            with open(os.path.join(d, f), 'rb') as fh:
                found[os.path.relpath(os.path.join(d, f), out)] = fh.read()
    return found


def check_manifest(m, pictures, bgs):
    assert m['version'] == 1 and m['generator'] == 'model/python/videoset/make_videoset.py'
    assert m['seed'] == 7 and m['fps'] == 30 and isinstance(m['fps'], int)
    assert m['pictures'] == os.path.abspath(pictures), m['pictures']
    assert m['backgrounds'] == os.path.abspath(bgs), m['backgrounds']
    assert isinstance(m['noise'], dict) and isinstance(m['motion'], dict)
    assert [s['name'] for s in m['sequences']] == ['seq00', 'seq01'], m['sequences']
    assert [s['picture'] for s in m['sequences']] == ['pa', 'pb']
    assert sorted(s['background'] for s in m['sequences']) == sorted(BACKGROUNDS)
    for s in m['sequences']:
        assert (s['width'], s['height'], s['frames']) == (64, 48, FRAMES), s
        assert all(isinstance(s[k], int) for k in ('width', 'height', 'frames')), s
        assert all(isinstance(v, bool) for v in s['moving']), s['moving']
        assert len(s['moving']) == FRAMES and len(s['poses']) == FRAMES, s
        assert all(len(p) == 4 for p in s['poses'])


def check_sequence(out, m, s, colours):
    name, poses, moving = s['name'], [tuple(p) for p in s['poses']], s['moving']
    # moving flags: the pose differs from the frame before's; frame 0 is still
    assert moving[0] is False
    assert moving[1:] == [p != q for p, q in zip(poses[1:], poses[:-1])], (moving, poses)
    assert moving.count(False) * 3 >= FRAMES, moving
    assert any(moving), moving
    for tx, ty, scale, angle in poses:
        assert abs(tx) <= m['motion']['tx_max'] and abs(ty) <= m['motion']['ty_max']
        assert 0.85 <= scale <= 1.15 and abs(angle) <= 4.0, poses
    fg, bg = colours[s['picture']], colours[s['background']]
    read_sd, shot = m['noise']['read_sd'], m['noise']['shot']
    previous = None
    residuals = []
    for t in range(FRAMES):
        frame, alpha = read(out, name, t)
        # no straight cut edge of the picture inside the frame: the person's own edges are soft
        assert largest_step(alpha) < STEP, (name, t, largest_step(alpha))
        assert alpha.max() > 0.9, (name, t)
        clean = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        residuals.append((frame - clean) / np.sqrt(read_sd ** 2 + shot * clean))
        if previous is not None:
            change = np.abs(frame - previous[0]).mean()
            if moving[t]:
                assert np.abs(alpha - previous[1]).max() > 0, (name, t)
            else:  # a still frame: the same alpha, a frame that differs by the noise alone
                assert np.array_equal(alpha, previous[1]), (name, t)
                assert 0.5 < change < 4.0, (name, t, change)
        previous = (frame, alpha)
    # the composite equation against the written alpha, within the noise (and JPEG, rounding)
    r = np.concatenate([x.ravel() for x in residuals])
    assert abs(r.mean()) < 0.1 and 0.6 < r.std() < 1.2, (name, r.mean(), r.std())
    assert np.abs(r).max() < 7.0, (name, np.abs(r).max())
    return r.std()


def check_cut_edge_detector(pictures):
    """The detector of check_sequence fires when the picture's bottom is inside the frame."""
    photo, alpha = vs.read_picture(os.path.join(pictures, 'pa.jpg'),
                                   os.path.join(pictures, 'pa.png'))
    layers = vs.Layers(photo, alpha, 1.0)
    a, b = vs.pose_affine((0.0, 0.0, 1.0, 0.0), (30.0, 60.0), 1.0, 64, 48)
    warped, _ = layers.warp(a, b, 64, 48)
    assert largest_step(warped) > STEP, largest_step(warped)


def check_framing():
    """A person cut on three sides, with too little picture around it for a window at 1:1, is
    framed by enlarging the picture (at most 1.25) clear of every cut edge; a person that fills
    the picture cannot be framed."""
    alpha = person(100, 68, (70, 10, 14), (50, 110, 24))
    alpha[0, 64:76] = 0.5  # hair cut at the top
    segments = vs.cut_segments(alpha)
    assert len(segments) == 3, segments   # top, bottom, right
    window = vs.choose_window(alpha, segments, 100, 56)
    assert window is not None, 'no window'
    cx, cy, win_h = window
    assert 1.0 < 56 / win_h <= 1.25, win_h
    margin = vs.CUT_CLEARANCE * win_h
    box = (cx - win_h * 50 / 56 - margin, cy - win_h / 2 - margin,
           cx + win_h * 50 / 56 + margin, cy + win_h / 2 + margin)
    assert all(vs._segment_clear(seg, *box) for seg in segments), (box, segments)
    full = np.ones((40, 60), np.float32)
    assert vs.choose_window(full, vs.cut_segments(full), 64, 48) is None


def check_package_mode(tmp):
    """The largest image of each wallpaper, photographs only, symlinks and screenshots out."""
    root = os.path.join(tmp, 'fake-package')
    for wallpaper, sizes in (('Kite', ((64, 40), (128, 80))), ('Autumn', ((256, 160),)),
                             ('Path', ((96, 60),))):
        images = os.path.join(root, 'usr/share/wallpapers', wallpaper, 'contents', 'images')
        os.makedirs(images)
        for w, h in sizes:
            Image.new('RGB', (w, h), (9, 9, 9)).save(os.path.join(images, f'{w}x{h}.jpg'))
        Image.new('RGB', (900, 900)).save(os.path.join(images, '..', 'screenshot.jpg'))
    os.symlink('128x80.jpg', os.path.join(root, 'usr/share/wallpapers/Path/contents/images',
                                          '5000x5000.jpg'))
    real = backgrounds.fetch_evaluation_package
    backgrounds.fetch_evaluation_package = lambda pkg, cache: ('4:5.27.5-2', root)
    try:
        found, source = vs.package_backgrounds('plasma-workspace-wallpapers', tmp)
    finally:
        backgrounds.fetch_evaluation_package = real
    assert [n for n, _ in found] == ['usr/share/wallpapers/Kite/contents/images/128x80.jpg',
                                     'usr/share/wallpapers/Path/contents/images/96x60.jpg'], found
    assert source.startswith('plasma-workspace-wallpapers 4:5.27.5-2'), source


def check_training_refusal(tmp):
    """backgrounds.py refuses the evaluation packages for training, before any download; its
    evaluation route takes nothing else."""
    said = io.StringIO()
    kept, refused = backgrounds.refuse_excluded(
        ['gnome-backgrounds', 'plasma-workspace-wallpapers', 'mate-backgrounds'], log=said)
    assert kept == ['gnome-backgrounds'], kept
    assert refused == ['plasma-workspace-wallpapers', 'mate-backgrounds'], refused
    assert 'refusing plasma-workspace-wallpapers' in said.getvalue(), said.getvalue()
    out = os.path.join(tmp, 'BG')
    with contextlib.redirect_stderr(io.StringIO()) as err:
        rc = backgrounds.main([out, '--packages', 'plasma-workspace-wallpapers',
                               '--cache', os.path.join(tmp, 'no-cache')])
    assert rc == 2 and not os.path.exists(out), rc
    assert 'no packages left' in err.getvalue(), err.getvalue()
    try:
        backgrounds.fetch_evaluation_package('gnome-backgrounds', os.path.join(tmp, 'no-cache'))
    except ValueError as e:
        assert 'not an evaluation package' in str(e), e
    else:
        raise AssertionError('fetch_evaluation_package took a training package')
    assert not os.path.exists(os.path.join(tmp, 'no-cache'))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pictures, bgs, colours = make_inputs(tmp)
        out = os.path.join(tmp, 'out')
        m = run(pictures, bgs, out, 7)
        check_manifest(m, pictures, bgs)
        for s in m['sequences']:
            sd = check_sequence(out, m, s, colours)
            print(f'{s["name"]}: {s["moving"].count(False)} of {FRAMES} still, residual / '
                  f'noise sd {sd:.2f}')
        files = all_files(out)
        expected = {'manifest.json'} | {f'seq0{i}/{d}/{t:05d}.{e}' for i in range(2)
                                        for d, e in (('frames', 'jpg'), ('alpha', 'png'))
                                        for t in range(FRAMES)}
        assert set(files) == expected, sorted(set(files) ^ expected)
        again = os.path.join(tmp, 'again')
        run(pictures, bgs, again, 7)
        assert all_files(again) == files, 'the same seed gave other files'
        other = run(pictures, bgs, os.path.join(tmp, 'other'), 8)
        assert [s['poses'] for s in other['sequences']] != [s['poses'] for s in m['sequences']]
        differ = all_files(os.path.join(tmp, 'other'))
        assert differ['seq00/frames/00000.jpg'] != files['seq00/frames/00000.jpg']
        # a rerun into the same folder with fewer sequences leaves no stale sequence behind
        with contextlib.redirect_stdout(io.StringIO()):
            assert vs.main([pictures, bgs, out, '--frames', '6', '--sequences', '1',
                            '--long-side', '64']) == 0
        assert sorted(os.listdir(out)) == ['manifest.json', 'seq00'], os.listdir(out)
        with contextlib.redirect_stderr(io.StringIO()):
            assert vs.main([pictures, bgs, os.path.join(REPO, 'videoset-out')]) == 2
        assert not os.path.exists(os.path.join(REPO, 'videoset-out'))
        check_cut_edge_detector(pictures)
        check_framing()
        check_package_mode(tmp)
        check_training_refusal(tmp)
    print('videoset: ok')


if __name__ == '__main__':
    main()

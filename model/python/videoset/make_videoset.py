#!/usr/bin/python3
"""Generate a video evaluation set with ground truth (issue 17): each sequence moves the person of
one picture (a photo + its alpha) over one background photo with smooth random motion, still
stretches and per-frame sensor noise, and writes the frames, the true alpha of every frame and a
manifest. Deterministic from --seed. Evaluation only: never train on it. See README.md.

    make_videoset.py PICTURES BACKGROUNDS OUT
    make_videoset.py PICTURES --backgrounds-package plasma-workspace-wallpapers OUT
"""
import argparse
import json
import math
import os
import re
import shutil
import sys
import time

import numpy as np
from PIL import Image, ImageOps
from scipy.ndimage import map_coordinates

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'teachers'))
import backgrounds  # noqa: E402  (the package download of the training backgrounds)
import fgest  # noqa: E402  (blur-fusion foreground colour)

GENERATOR = 'model/python/videoset/make_videoset.py'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp')
JPEG_QUALITY = 95

# The photographs among plasma-workspace-wallpapers 5.27 (the others are renders and
# drawings); the same 11 as portrait-dev's composites. Other evaluation packages: every wallpaper.
PACKAGE_PHOTOS = {
    'plasma-workspace-wallpapers': (
        'BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow', 'FallenLeaf',
        'Grey', 'Kite', 'OneStandsOut', 'Path', 'summer_1am'),
}

# Motion: key poses drawn uniformly within these bounds around the base pose; moves between
# them eased with smoothstep (no jerk at either end), holds in between.
MAX_SHIFT_X = 0.08        # of the frame width
MAX_SHIFT_Y = 0.05        # of the frame height
MAX_SCALE_CHANGE = 0.15   # scale in [0.85, 1.15]
MAX_ANGLE_DEG = 4.0
MOVE_FRAMES_MIN = 8       # the length of one move, frames (0.27 s at 30 fps)
MOVE_FRAMES_MEAN = 14
HOLD_FRAMES_MIN = 2
POSE_DECIMALS = (3, 3, 5, 3)   # tx, ty (px), scale, angle (degrees) as written and rendered

# Framing: the base pose shows a window of the picture with the frame's aspect, the person's
# bounding box (alpha > 0.5) at most 80% of its height with 10% headroom, enlarged by at most
# 1.25 where the picture has too little room around its cut edges; the window keeps
# CUT_CLEARANCE of its height between itself and every cut edge, so that the motion has room
# before a cut edge could enter the frame (every frame is checked anyway).
PERSON_SHARE = 0.8
HEADROOM = 0.1
CUT_CLEARANCE = 0.15
MAX_BASE_SCALE = 1.25


class PictureError(ValueError):
    """A picture that cannot make a sequence (its message names the file)."""


# ---------------------------------------------------------------------------------------------
# inputs

def list_pictures(folder):
    """[(name, photo path, alpha path)] of the NAME.jpg + NAME.png pairs in folder, by name."""
    names = sorted(f[:-4] for f in os.listdir(folder)
                   if f.endswith('.png') and os.path.isfile(os.path.join(folder, f[:-4] + '.jpg')))
    return [(n, os.path.join(folder, n + '.jpg'), os.path.join(folder, n + '.png')) for n in names]


def read_alpha(path):
    with Image.open(path) as im:
        if im.mode in ('I;16', 'I;16B', 'I'):
            return np.clip(np.asarray(im, np.float32) / 65535.0, 0.0, 1.0)
        return np.asarray(im.convert('L'), np.float32) / 255.0


def read_picture(photo_path, alpha_path):
    """(photo H x W x 3 float in [0, 1], alpha H x W float in [0, 1])."""
    with Image.open(photo_path) as im:
        photo = np.asarray(ImageOps.exif_transpose(im).convert('RGB'), np.float32) / 255.0
    alpha = read_alpha(alpha_path)
    if photo.shape[:2] != alpha.shape:
        raise PictureError(f'{alpha_path}: alpha is {alpha.shape[1]}x{alpha.shape[0]}, '
                           f'the photo {photo.shape[1]}x{photo.shape[0]}')
    return photo, alpha


def list_backgrounds(folder):
    """[(name, path)] of the images in folder, by name."""
    return [(f, os.path.join(folder, f)) for f in sorted(os.listdir(folder))
            if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))]


def package_backgrounds(package, cache):
    """([(name, path)], description) of an evaluation package's wallpapers: the largest image
    of each (by pixels; symlinks and screenshots left out), the photographs only where
    PACKAGE_PHOTOS names them; name = the path in the package."""
    version, root = backgrounds.fetch_evaluation_package(package, cache)
    largest = {}
    for path in backgrounds.find_images(root)[0]:
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        if os.path.basename(path).startswith('screenshot'):
            continue
        # usr/share/wallpapers/NAME/contents/images/WxH.jpg: one wallpaper, several sizes
        wallpaper = (parts[3] if parts[:3] == ['usr', 'share', 'wallpapers'] and len(parts) > 4
                     else os.path.splitext(rel)[0])
        if package in PACKAGE_PHOTOS and wallpaper not in PACKAGE_PHOTOS[package]:
            continue
        with Image.open(path) as im:
            pixels = im.size[0] * im.size[1]
        if wallpaper not in largest or pixels > largest[wallpaper][0]:
            largest[wallpaper] = (pixels, rel)
    found = [(largest[name][1], os.path.join(root, largest[name][1])) for name in sorted(largest)]
    return found, f'{package} {version} (Debian package, largest image of each wallpaper)'


def cover_crop(path, width, height):
    """The image scaled to cover width x height (Lanczos) and centre-cropped: float in [0, 1]."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert('RGB')
        scale = max(width / im.size[0], height / im.size[1])
        w = max(width, round(im.size[0] * scale))
        h = max(height, round(im.size[1] * scale))
        im = im.resize((w, h), Image.LANCZOS)
        left, top = (w - width) // 2, (h - height) // 2
        im = im.crop((left, top, left + width, top + height))
        return np.asarray(im, np.float32) / 255.0


# ---------------------------------------------------------------------------------------------
# framing: where the picture's cut edges are, and which window of it the base pose shows

def cut_segments(alpha):
    """The picture's cut edges: for each side whose border pixels have alpha > 0, the segment
    (x0, y0, x1, y1) along that border row or column, in pixel-centre coordinates, from the
    first such pixel to the last, one pixel longer at each end."""
    h, w = alpha.shape
    segments = []
    for border, fixed, along in ((alpha[0], 'y', 0), (alpha[-1], 'y', h - 1),
                                 (alpha[:, 0], 'x', 0), (alpha[:, -1], 'x', w - 1)):
        hit = np.nonzero(border > 0)[0]
        if len(hit) == 0:
            continue
        lo, hi = float(hit[0] - 1), float(hit[-1] + 1)
        segments.append((lo, along, hi, along) if fixed == 'y' else (along, lo, along, hi))
    return segments


def _segment_clear(segment, left, top, right, bottom):
    """Whether an axis-aligned segment misses the rectangle."""
    x0, y0, x1, y1 = segment
    return x1 < left or x0 > right or y1 < top or y0 > bottom


def choose_window(alpha, segments, width, height):
    """The window (centre x, centre y, height) of the picture that the base pose fills the
    frame with: of the candidates that keep CUT_CLEARANCE from every cut edge, the one that
    least shrinks the framing of the whole person, least shifts it (sideways, or down past the
    headroom) and least enlarges the picture (at most MAX_BASE_SCALE)."""
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys) == 0:
        return None
    aspect = width / height
    person_h = ys.max() - ys.min() + 1
    person_w = xs.max() - xs.min() + 1
    centre_x = (xs.min() + xs.max()) / 2.0
    full = max(person_h, person_w / aspect) / PERSON_SHARE
    largest = max(full, height)
    smallest = max(full * 0.25, height / MAX_BASE_SCALE)
    best = None
    for win_h in np.unique(np.geomspace(largest, min(smallest, largest), 40)):
        win_w = win_h * aspect
        margin = CUT_CLEARANCE * win_h
        shrink = math.log(largest / win_h) + 2.0 * max(0.0, math.log(height / win_h))
        for down in np.arange(-0.1, 0.501, 0.05):
            for side in np.arange(-0.5, 0.501, 0.05):
                cost = shrink + abs(side) + abs(down)
                if best is not None and cost >= best[0]:
                    continue
                top = ys.min() - HEADROOM * win_h + down * win_h
                left = centre_x - win_w / 2 + side * win_w
                if all(_segment_clear(s, left - margin, top - margin, left + win_w + margin,
                                      top + win_h + margin) for s in segments):
                    best = (cost, (left + win_w / 2, top + win_h / 2, win_h))
    return best[1] if best else None


# ---------------------------------------------------------------------------------------------
# poses

def pose_affine(pose, anchor, base_scale, width, height):
    """(A, b) with frame point = A picture point + b: the anchor goes to the frame's centre
    moved by (tx, ty), scaled by scale * base_scale, turned by angle degrees counter-clockwise
    on screen (pixel-centre coordinates, y down)."""
    tx, ty, scale, angle = pose
    k = scale * base_scale
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    a = np.array([[k * c, k * s], [-k * s, k * c]])
    centre = np.array([(width - 1) / 2.0 + tx, (height - 1) / 2.0 + ty])
    return a, centre - a @ np.asarray(anchor, float)


def cut_points(segments, base_scale):
    """Points along the cut segments, at most half a frame pixel apart at the largest scale."""
    step = 0.5 / (base_scale * (1.0 + MAX_SCALE_CHANGE))
    points = []
    for x0, y0, x1, y1 in segments:
        n = int(math.ceil(max(x1 - x0, y1 - y0) / step)) + 1
        t = np.linspace(0.0, 1.0, n)
        points.append(np.stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)], 1))
    return np.concatenate(points) if points else np.zeros((0, 2))


def cut_edges_outside(pose, points, anchor, base_scale, width, height):
    """Whether every cut-edge point lands outside the frame, with room for the bilinear
    footprint (two frame pixels plus two picture pixels)."""
    if len(points) == 0:
        return True
    a, b = pose_affine(pose, anchor, base_scale, width, height)
    q = points @ a.T + b
    room = 2.0 + 2.0 * pose[2] * base_scale
    inside = ((q[:, 0] > -room) & (q[:, 0] < width - 1 + room)
              & (q[:, 1] > -room) & (q[:, 1] < height - 1 + room))
    return not inside.any()


def round_pose(pose):
    return tuple(round(float(v), d) for v, d in zip(pose, POSE_DECIMALS))


def split(total, parts, smallest, rng):
    """total as `parts` random whole numbers, each >= smallest."""
    smallest = min(smallest, total // parts)
    return [smallest + int(v) for v in
            rng.multinomial(total - smallest * parts, rng.dirichlet(np.ones(parts)))]


def plan_motion(rng, frames, still_fraction, width, height, allowed):
    """poses (one per frame) for holds and eased moves between random key poses: frame 0 and
    ceil(still_fraction * frames) frames in all keep the pose of the frame before. allowed(pose)
    says whether a pose keeps the cut edges out of the frame; key poses are drawn until every
    pose of the move to them is allowed, within bounds that shrink after every 50 misses."""
    still = int(math.ceil(still_fraction * frames))
    moving = frames - still
    n_moves = max(1, int(round(moving / MOVE_FRAMES_MEAN)))
    moves = split(moving, n_moves, MOVE_FRAMES_MIN, rng)
    holds = split(still, n_moves + 1, HOLD_FRAMES_MIN, rng)
    if holds[0] == 0:  # frame 0 is still by definition
        holds[holds.index(max(holds))] -= 1
        holds[0] = 1

    def draw(amplitude):
        u = rng.uniform(-1.0, 1.0, 4) * amplitude
        return round_pose((u[0] * MAX_SHIFT_X * width, u[1] * MAX_SHIFT_Y * height,
                           1.0 + u[2] * MAX_SCALE_CHANGE, u[3] * MAX_ANGLE_DEG))

    def eased(start, end, length):
        out = []
        for i in range(1, length + 1):
            t = i / length
            e = t * t * (3.0 - 2.0 * t)
            out.append(round_pose([p + e * (q - p) for p, q in zip(start, end)]))
        return out

    def visible(start, end, amplitude):
        """A move big enough to see: 3% of the frame, 0.05 in scale or 1.5 degrees."""
        shift = math.hypot((end[0] - start[0]) / width, (end[1] - start[1]) / height)
        return (shift >= 0.03 * amplitude or abs(end[2] - start[2]) >= 0.05 * amplitude
                or abs(end[3] - start[3]) >= 1.5 * amplitude)

    current = None
    for attempt in range(400):
        candidate = draw(0.7 ** (attempt // 50))
        if allowed(candidate):
            current = candidate
            break
    if current is None:  # the base pose: its window keeps CUT_CLEARANCE from the cut edges
        current = (0.0, 0.0, 1.0, 0.0)
    poses = [current] * holds[0]
    for move, hold in zip(moves, holds[1:]):
        path = None
        for attempt in range(400):
            amplitude = 0.7 ** (attempt // 50)
            end = draw(amplitude)
            if not visible(current, end, amplitude):
                continue
            path = eased(current, end, move)
            previous = [current] + path[:-1]
            if all(p != q for p, q in zip(path, previous)) and all(map(allowed, path)):
                break
            path = None
        if path is None:
            raise PictureError('no allowed move found (its cut edges leave no room to move)')
        poses += path
        current = path[-1]
        poses += [current] * hold
    return poses


# ---------------------------------------------------------------------------------------------
# rendering

class Layers:
    """A picture's premultiplied foreground a F and alpha, prefiltered (area) to the base
    scale when that is below 1, so that the bilinear warp of each frame does not alias."""

    def __init__(self, photo, alpha, base_scale):
        foreground = fgest.estimate_foreground(photo, alpha)
        planes = [alpha] + [alpha * foreground[..., c] for c in range(3)]
        h, w = alpha.shape
        self.fx = self.fy = 1.0
        if base_scale < 1.0:
            size = (max(1, round(w * base_scale)), max(1, round(h * base_scale)))
            planes = [np.asarray(Image.fromarray(p, 'F').resize(size, Image.BOX), np.float32)
                      for p in planes]
            self.fx, self.fy = size[0] / w, size[1] / h
        self.planes = planes

    def warp(self, a, b, width, height):
        """(alpha, a F) at the frame's pixels, for frame point = a picture point + b."""
        inv = np.linalg.inv(a)
        gy, gx = np.mgrid[0:height, 0:width].astype(np.float64)
        px = inv[0, 0] * (gx - b[0]) + inv[0, 1] * (gy - b[1])
        py = inv[1, 0] * (gx - b[0]) + inv[1, 1] * (gy - b[1])
        coords = [(py + 0.5) * self.fy - 0.5, (px + 0.5) * self.fx - 0.5]
        out = [map_coordinates(p, coords, order=1, mode='grid-constant', cval=0.0)
               for p in self.planes]
        return out[0], np.stack(out[1:], -1)


def composite(alpha_q, premultiplied, alpha, background):
    """I = a F + (1 - a) B in float on the 8-bit values, with a the written (quantised) alpha
    and F = (a F) / a from the warp."""
    foreground = np.clip(premultiplied / np.maximum(alpha, 1e-6)[..., None], 0.0, 1.0)
    a = alpha_q[..., None]
    return a * foreground + (1.0 - a) * background


def add_noise(image, rng, read_sd, shot):
    """8-bit image + Gaussian noise of variance read_sd^2 + shot * level (levels 0..255),
    independent per pixel and channel."""
    levels = image * 255.0
    sd = np.sqrt(read_sd ** 2 + shot * levels)
    noisy = levels + rng.standard_normal(levels.shape, np.float32) * sd
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# the command

def frame_size(long_side, aspect):
    """(width, height), both even, long side long_side, aspect 'W:H'."""
    m = re.fullmatch(r'(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)', aspect)
    if not m or float(m.group(1)) <= 0 or float(m.group(2)) <= 0:
        raise ValueError(f'--aspect {aspect}: expected W:H, e.g. 16:9')
    ratio = float(m.group(1)) / float(m.group(2))
    if ratio >= 1:
        return long_side, max(2, 2 * round(long_side / ratio / 2))
    return max(2, 2 * round(long_side * ratio / 2)), long_side


def clear_previous(out):
    """Remove the sequence folders that OUT's previous manifest names."""
    path = os.path.join(out, 'manifest.json')
    if not os.path.isfile(path):
        return
    with open(path, encoding='utf-8') as f:
        old = json.load(f)
    for seq in old.get('sequences', []):
        name = seq.get('name', '')
        if re.fullmatch(r'[A-Za-z0-9_-]+', name) and os.path.isdir(os.path.join(out, name)):
            shutil.rmtree(os.path.join(out, name))


def compact_json(data):
    """JSON with two-space indent and every list of plain values on one line."""
    text = json.dumps(data, indent=2)
    return re.sub(r'\[\s*([^\[\]{}]*?)\s*\]',
                  lambda m: '[' + ' '.join(m.group(1).split()) + ']', text) + '\n'


def make_sequence(index, name, picture, background, a, out, width, height):
    """Render one sequence into OUT/name; return its manifest entry."""
    pic_name, photo_path, alpha_path = picture
    photo, alpha = read_picture(photo_path, alpha_path)
    segments = cut_segments(alpha)
    window = choose_window(alpha, segments, width, height)
    if window is None:
        raise PictureError(f'{alpha_path}: no frame of {width}x{height} shows its person '
                           f'(alpha > 0.5) without a cut edge of the picture')
    anchor = (round(window[0], 3), round(window[1], 3))
    base_scale = round(height / window[2], 6)
    points = cut_points(segments, base_scale)

    def allowed(pose):
        return cut_edges_outside(pose, points, anchor, base_scale, width, height)

    rng = np.random.default_rng([a.seed, 0, index])
    try:
        poses = plan_motion(rng, a.frames, a.still, width, height, allowed)
    except PictureError as e:
        raise PictureError(f'{alpha_path}: {e}') from None
    layers = Layers(photo, alpha, base_scale)
    bg = cover_crop(background[1], width, height)
    for sub in ('frames', 'alpha'):
        os.makedirs(os.path.join(out, name, sub), exist_ok=True)
    for t, pose in enumerate(poses):
        warped_alpha, premultiplied = layers.warp(
            *pose_affine(pose, anchor, base_scale, width, height), width, height)
        alpha8 = np.clip(np.rint(warped_alpha * 255.0), 0, 255).astype(np.uint8)
        image = composite(alpha8.astype(np.float32) / 255.0, premultiplied, warped_alpha, bg)
        noisy = add_noise(image, np.random.default_rng([a.seed, 1, index, t]),
                          a.noise_read, a.noise_shot)
        Image.fromarray(noisy, 'RGB').save(os.path.join(out, name, 'frames', f'{t:05d}.jpg'),
                                           quality=JPEG_QUALITY, subsampling=0)
        Image.fromarray(alpha8, 'L').save(os.path.join(out, name, 'alpha', f'{t:05d}.png'))
    return {'name': name, 'picture': pic_name, 'background': background[0],
            'width': width, 'height': height, 'frames': len(poses),
            'moving': [False] + [p != q for p, q in zip(poses[1:], poses[:-1])],
            'anchor': list(anchor), 'base_scale': base_scale,
            'poses': [list(p) for p in poses]}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('pictures', metavar='PICTURES',
                    help='folder of NAME.jpg photos with NAME.png alpha (portrait-dev/real)')
    ap.add_argument('paths', metavar='[BACKGROUNDS] OUT', nargs='+',
                    help='folder of background photos (unless --backgrounds-package), then '
                         'the output folder (outside the repository)')
    ap.add_argument('--backgrounds-package', metavar='PKG',
                    help='take the backgrounds from this Debian evaluation package (%s)'
                    % ', '.join(backgrounds.EXCLUDED))
    ap.add_argument('--cache', default=backgrounds.default_cache(),
                    help='where the .deb is downloaded and unpacked (default %(default)s)')
    ap.add_argument('--seed', type=int, default=0, help='random seed (0)')
    ap.add_argument('--frames', type=int, default=80, help='frames per sequence (80)')
    ap.add_argument('--long-side', type=int, default=1024, help="the frames' long side (1024)")
    ap.add_argument('--aspect', default='16:9', help='frame aspect W:H (16:9; 9:16 = portrait)')
    ap.add_argument('--sequences', type=int, help='number of sequences (one per picture)')
    ap.add_argument('--fps', type=float, default=30.0, help='frame rate, recorded only (30)')
    ap.add_argument('--still', type=float, default=0.45,
                    help='share of still frames, >= 1/3 (0.45)')
    ap.add_argument('--noise-read', type=float, default=1.0,
                    help='noise standard deviation at black, 8-bit levels (1.0)')
    ap.add_argument('--noise-shot', type=float, default=0.02,
                    help='noise variance per level of signal (0.02: sd 2.5 at white)')
    a = ap.parse_args(argv)
    if len(a.paths) != (1 if a.backgrounds_package else 2):
        ap.error('expected PICTURES BACKGROUNDS OUT, or PICTURES --backgrounds-package PKG OUT')
    a.out = a.paths[-1]
    a.backgrounds = None if a.backgrounds_package else a.paths[0]
    if not 6 <= a.frames <= 99999:
        ap.error('--frames must be in [6, 99999] (frame files have 5 digits)')
    if not 16 <= a.long_side <= 8192:
        ap.error('--long-side must be in [16, 8192]')
    if not 1.0 / 3.0 <= a.still < 1.0:
        ap.error('--still must be in [1/3, 1)')
    if a.noise_read < 0 or a.noise_shot < 0:
        ap.error('the noise parameters must be >= 0')
    if a.sequences is not None and a.sequences < 1:
        ap.error('--sequences must be at least 1')
    try:
        a.width, a.height = frame_size(a.long_side, a.aspect)
    except ValueError as e:
        ap.error(str(e))
    return a


def inside_repository(path):
    repo = os.path.realpath(os.path.join(HERE, '..', '..', '..'))
    path = os.path.realpath(path)
    return os.path.commonpath([repo, path]) == repo


def main(argv=None):
    a = parse_args(argv)
    started = time.monotonic()
    if inside_repository(a.out):
        print(f'videoset: {a.out} is inside the repository; write the set outside it',
              file=sys.stderr)
        return 2
    pictures = list_pictures(a.pictures)
    if not pictures:
        print(f'videoset: {a.pictures}: no NAME.jpg + NAME.png pairs', file=sys.stderr)
        return 1
    if a.backgrounds_package:
        try:
            bgs, bg_source = package_backgrounds(a.backgrounds_package, a.cache)
        except (ValueError, RuntimeError) as e:
            print(f'videoset: {e}', file=sys.stderr)
            return 1
    else:
        bgs, bg_source = list_backgrounds(a.backgrounds), os.path.abspath(a.backgrounds)
    if not bgs:
        print(f'videoset: no background images in {bg_source}', file=sys.stderr)
        return 1
    count = a.sequences or len(pictures)
    order = np.random.default_rng([a.seed, 2]).permutation(len(bgs))
    digits = max(2, len(str(count - 1)))
    os.makedirs(a.out, exist_ok=True)
    clear_previous(a.out)
    sequences = []
    for i in range(count):
        name = f'seq{i:0{digits}d}'
        picture, background = pictures[i % len(pictures)], bgs[order[i % len(bgs)]]
        try:
            seq = make_sequence(i, name, picture, background, a, a.out, a.width, a.height)
        except PictureError as e:
            print(f'videoset: {name}: skipped: {e}', file=sys.stderr)
            continue
        sequences.append(seq)
        n_moving = sum(seq['moving'])
        print(f'{name}: {seq["picture"]} over {seq["background"]}, {a.width}x{a.height}, '
              f'{seq["frames"]} frames, {n_moving} moving ({100.0 * n_moving / seq["frames"]:.0f}%)'
              f', {seq["frames"] - n_moving} still', flush=True)
    manifest = {
        'version': 1, 'generator': GENERATOR, 'seed': a.seed,
        'fps': int(a.fps) if a.fps.is_integer() else a.fps,
        'pictures': os.path.abspath(a.pictures), 'backgrounds': bg_source,
        'noise': {'model': 'Gaussian per pixel and channel, independent per frame, variance '
                           'read_sd^2 + shot * level (8-bit levels), added to the composite '
                           'before rounding to 8 bits',
                  'read_sd': a.noise_read, 'shot': a.noise_shot},
        'motion': {'pose': 'frame point = frame centre + (tx, ty) + scale * base_scale * '
                           'R(angle) (picture point - anchor); pixel centres, y down, angle '
                           'in degrees counter-clockwise on screen',
                   'tx_max': round(MAX_SHIFT_X * a.width, 3),
                   'ty_max': round(MAX_SHIFT_Y * a.height, 3),
                   'scale': [1.0 - MAX_SCALE_CHANGE, 1.0 + MAX_SCALE_CHANGE],
                   'angle_deg_max': MAX_ANGLE_DEG, 'still_fraction': a.still,
                   'move_frames_min': MOVE_FRAMES_MIN, 'move_frames_mean': MOVE_FRAMES_MEAN,
                   'easing': 'smoothstep', 'warp': 'bilinear on premultiplied a F and a',
                   'background': 'fixed, cover-cropped'},
        'sequences': sequences,
    }
    with open(os.path.join(a.out, 'manifest.json'), 'w', encoding='utf-8') as f:
        f.write(compact_json(manifest))
    frames = sum(s['frames'] for s in sequences)
    moving = sum(sum(s['moving']) for s in sequences)
    print(f'total: {len(sequences)} sequences, {frames} frames, {moving} moving '
          f'({100.0 * moving / max(frames, 1):.0f}%), {time.monotonic() - started:.0f} s, '
          f'in {a.out}')
    return 0 if len(sequences) == count else 1


if __name__ == '__main__':
    sys.exit(main())

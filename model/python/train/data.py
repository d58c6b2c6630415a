"""Training and validation data for HFAM (../../../../shared/HFAM.md section 6).

Training samples are composited on the fly from a folder of foregrounds with alpha and a folder
of backgrounds. Foreground folder, either layout:
  FG/NAME.png                      RGBA PNGs, straight (not premultiplied) alpha
  FG/fg/NAME.{png,jpg} + FG/alpha/NAME.png
                                   colour and alpha as separate files (alpha 8- or 16-bit grey)
Background folder: BG/*.{jpg,jpeg,png} (any size, RGB).
Validation folder: VAL/image/NAME.{jpg,png} + VAL/alpha/NAME.png (the whole image is scored).

One epoch gives every foreground `per_fg` samples (HFAM.md: 20), each over its own background
drawn without replacement. A sample is a random square crop of one of `crops` (640, 960, 1280 px
at size 512, scaled with the size; clamped to the image) resized to size x size, flipped
horizontally with p = 0.5, composited I = g F + (1 - g) B in float, with the trimap target of
`make_trimap`. The background gets the same kind of crop and flip, independently. With
augmentations (augment.py; each with its probability), the foreground's colour is first pulled
towards the background's, and the composite then gets a camera's degradations (blur, exposure and
white balance, noise, JPEG); the alpha and the trimap stay clean.

Every random choice of a sample comes from a generator seeded by (seed, epoch, position in the
epoch), so a sample does not depend on worker processes or on where a run was resumed.
"""

from __future__ import annotations

import os
from typing import Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import distance_transform_edt

import augment

# Trimap classes, in the order of the network's semantic logits (reference/hfam.py).
BACKGROUND, UNKNOWN, FOREGROUND = 0, 1, 2

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L")
CROPS_AT_512 = (640, 960, 1280)
TRIMAP_K_AT_512 = (10, 30)
# g == 1 and g > 0 on a resized alpha, allowing for half an 8-bit step of filter rounding.
ALPHA_TOLERANCE = 0.5 / 255


class Foreground(NamedTuple):
    name: str
    colour: str  # an RGBA PNG, or the colour file of a pair
    alpha: str  # "" for an RGBA PNG


def _images(folder: str) -> List[str]:
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: not a folder")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS))


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _pairs(colour_dir: str, alpha_dir: str) -> List[Tuple[str, str, str]]:
    """(name, colour, alpha) for every colour file; every one needs alpha_dir/NAME.png."""
    out = []
    for path in _images(colour_dir):
        alpha = os.path.join(alpha_dir, _stem(path) + ".png")
        if not os.path.isfile(alpha):
            raise ValueError(f"{path}: no alpha {alpha}")
        out.append((_stem(path), path, alpha))
    if not out:
        raise ValueError(f"{colour_dir}: no images")
    return out


def list_foregrounds(folder: str) -> List[Foreground]:
    if os.path.isdir(os.path.join(folder, "alpha")):
        return [Foreground(*p) for p in _pairs(os.path.join(folder, "fg"),
                                               os.path.join(folder, "alpha"))]
    found = [Foreground(_stem(p), p, "") for p in _images(folder) if p.lower().endswith(".png")]
    if not found:
        raise ValueError(f"{folder}: no RGBA PNGs and no fg/ + alpha/ folders")
    return found


def list_backgrounds(folders: Sequence[str], held_out=lambda name: False) -> List[str]:
    """The images of every folder, less those whose stem `held_out` keeps for validation."""
    found = []
    for folder in folders:
        images = [p for p in _images(folder) if not held_out(_stem(p))]
        if not images:
            raise ValueError(f"{folder}: no images to train on")
        found += images
    return found


def load_rgb(path: str) -> np.ndarray:
    """H x W x 3 uint8."""
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def _alpha_image(im: Image.Image) -> Image.Image:
    """An 8- or 16-bit grey PNG (Pillow opens the latter as I or I;16) or an alpha channel, as
    an 'F' image in [0, 1]."""
    if im.mode in SIXTEEN_BIT:
        return im.convert("F").point(lambda v: v * (1 / 65535))
    return im.convert("L").convert("F").point(lambda v: v * (1 / 255))


def load_alpha(path: str) -> np.ndarray:
    """H x W float32 in [0, 1] from an 8- or 16-bit grey PNG."""
    with Image.open(path) as im:
        return np.array(_alpha_image(im))


def open_foreground(fg: Foreground) -> Tuple[Image.Image, Image.Image]:
    """(colour, an RGB image; alpha, an 'F' image in [0, 1]), decoded."""
    if fg.alpha:
        with Image.open(fg.colour) as im:
            colour = im.convert("RGB")
        with Image.open(fg.alpha) as im:
            alpha = _alpha_image(im)
        if colour.size != alpha.size:
            raise ValueError(f"{fg.colour}: size differs from its alpha {fg.alpha}")
        return colour, alpha
    with Image.open(fg.colour) as im:
        if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
            raise ValueError(f"{fg.colour}: no alpha channel")
        rgba = im.convert("RGBA")
    return rgba.convert("RGB"), _alpha_image(rgba.getchannel("A"))


def make_trimap(alpha: np.ndarray, k: float) -> np.ndarray:
    """HFAM.md's trimap target: fg = erode(g == 1, k), bg = not dilate(g > 0, k), unknown = rest.

    k is the diameter of a disc (OpenCV's elliptic (k, k) kernel, as GFM uses), so the unknown
    band reaches k/2 px into the opaque and the clear region. Euclidean distance transforms make
    the cost independent of k. Outside the image counts as neither (no erosion from the border)."""
    opaque = alpha >= 1 - ALPHA_TOLERANCE
    covered = alpha > ALPHA_TOLERANCE
    r = k / 2
    trimap = np.full(alpha.shape, UNKNOWN, dtype=np.int64)
    if opaque.all():
        trimap[:] = FOREGROUND
    elif opaque.any():
        trimap[distance_transform_edt(opaque) > r] = FOREGROUND
    if not covered.any():
        trimap[:] = BACKGROUND
    elif not covered.all():
        trimap[distance_transform_edt(~covered) > r] = BACKGROUND
    return trimap


def _random_square(rng: np.random.Generator, width: int, height: int,
                   sides: Sequence[int]) -> Tuple[int, int, int, int]:
    side = min(int(rng.choice(sides)), width, height)
    x = int(rng.integers(0, width - side + 1))
    y = int(rng.integers(0, height - side + 1))
    return x, y, x + side, y + side


def _crop_resize(image: Image.Image, box, size: int) -> np.ndarray:
    # PIL's bilinear filter widens its support when shrinking (antialiased), like the engine's.
    return np.asarray(image.resize((size, size), Image.BILINEAR, box=box), dtype=np.float32)


def _open_crop(path: str, rng: np.random.Generator, sides: Sequence[int]) -> Image.Image:
    """A random square crop of an image file, as RGB (cropped before the conversion copies)."""
    with Image.open(path) as im:
        return im.crop(_random_square(rng, *im.size, sides)).convert("RGB")


def epoch_keys(seed: int, epoch: int, n_fg: int, n_bg: int,
               per_fg: int) -> List[Tuple[int, int, int, int]]:
    """(epoch, position, foreground, background) of every sample of `epoch`, shuffled: each
    foreground `per_fg` times, over backgrounds drawn without replacement while there are
    enough. train_device.py samples its people the same way."""
    rng = np.random.default_rng([seed, epoch])
    pairs = [(f, int(b)) for f in range(n_fg)
             for b in rng.choice(n_bg, per_fg, replace=n_bg < per_fg)]
    order = rng.permutation(len(pairs))
    return [(epoch, i, *pairs[j]) for i, j in enumerate(order)]


def augmentation_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """A sample's augmentations draw from their own generator, so that turning them on or off
    changes no other draw."""
    return np.random.default_rng([seed, epoch, position, 2])


class CompositeDataset(torch.utils.data.Dataset):
    """Composited training samples. Indexed by the keys of `epoch_keys` (not by integers):
    returns image (3, S, S) float32 RGB in [0, 1], alpha (1, S, S) float32, trimap (S, S) int64."""

    def __init__(self, fg_dir: str, bg_dirs: Sequence[str], size: int, per_fg: int = 20,
                 seed: int = 0, augmentations: augment.Probabilities = augment.OFF,
                 held_out=lambda name: False):
        self.foregrounds = list_foregrounds(fg_dir)
        self.backgrounds = list_backgrounds(bg_dirs, held_out)
        self.augmentations = augmentations
        self.size = size
        self.per_fg = per_fg
        self.seed = seed
        self.crops = [max(1, round(c * size / 512)) for c in CROPS_AT_512]

    def epoch_length(self) -> int:
        return len(self.foregrounds) * self.per_fg

    def epoch_keys(self, epoch: int) -> List[Tuple[int, int, int, int]]:
        return epoch_keys(self.seed, epoch, len(self.foregrounds), len(self.backgrounds),
                          self.per_fg)

    def __len__(self) -> int:
        return self.epoch_length()

    def __getitem__(self, key) -> Dict[str, torch.Tensor]:
        epoch, position, f, b = key
        rng = np.random.default_rng([self.seed, epoch, position, 1])
        s = self.size

        colour, alpha = open_foreground(self.foregrounds[f])
        box = _random_square(rng, *alpha.size, self.crops)
        fg = _crop_resize(colour, box, s) / 255
        g = np.clip(_crop_resize(alpha, box, s), 0, 1)
        if rng.random() < 0.5:
            fg, g = fg[:, ::-1], g[:, ::-1]

        bg_crop = _open_crop(self.backgrounds[b], rng, self.crops)
        bg = _crop_resize(bg_crop, None, s) / 255
        if rng.random() < 0.5:
            bg = bg[:, ::-1]

        k = int(rng.integers(TRIMAP_K_AT_512[0], TRIMAP_K_AT_512[1] + 1)) * s / 512
        image = augment.composite(fg, g, bg, augmentation_rng(self.seed, epoch, position),
                                  self.augmentations, s / 512)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "alpha": torch.from_numpy(np.ascontiguousarray(g))[None],
            "trimap": torch.from_numpy(make_trimap(g, k)),
        }


def normalise(image: torch.Tensor, config) -> torch.Tensor:
    """RGB in [0, 1] (N, 3, H, W) -> the network input of `config` (hfam.preprocess's maths
    without the resize): scaled to 0..input_scale, reordered, (p - mean) / std."""
    x = image * config.input_scale
    if config.input_order == "BGR":
        x = x.flip(1)
    mean = torch.tensor(config.input_mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.input_std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class ValidationImage(NamedTuple):
    name: str
    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray  # H x W float64 in [0, 1]


def load_validation(folder: str) -> List[ValidationImage]:
    """VAL/image/NAME.* with VAL/alpha/NAME.png, loaded once (a validation set is small)."""
    out = []
    for name, image, alpha in _pairs(os.path.join(folder, "image"), os.path.join(folder, "alpha")):
        rgb, g = load_rgb(image), load_alpha(alpha).astype(np.float64)
        if rgb.shape[:2] != g.shape:
            raise ValueError(f"{image}: size differs from its alpha {alpha}")
        out.append(ValidationImage(name, rgb, g))
    return out

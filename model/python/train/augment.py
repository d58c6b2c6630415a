"""Seeded augmentations of a training composite: the degradations of real video, and the person's
colour pulled towards the background's so that a colour mismatch between the two is not a cue.

`draw` chooses one sample's augmentations and their parameters from a numpy Generator (sizes,
blur lengths and radii, are given at a 512 px crop and scaled with `scale`, crop size / 512, as
data.py scales its crops); the functions below apply them to a float32 H x W x 3 RGB image in
[0, 1], each returning a new one, and never see the target: it stays the clean matte.
augment_device.py applies the same draws to batches of torch tensors on the training device.

`apply` degrades a picture in the order a camera would: optics (defocus, motion blur), exposure
and white balance, sensor noise, then compression. `harmonise` acts on the foreground before the
composite is formed; `composite` does all of it for one sample, as train.py's data loader does.
"""

from __future__ import annotations

import io
from typing import NamedTuple, Optional, Tuple

import numpy as np
from PIL import Image
from scipy.signal import fftconvolve

JPEG_QUALITY = (30, 90)
MOTION_LENGTH_AT_512 = (3.0, 15.0)  # px, the length of the blur's path
DEFOCUS_RADIUS_AT_512 = (1.0, 4.0)  # px, the radius of the blur's disc
EXPOSURE_STOPS = 0.6  # gain 2^U(-s, s)
WHITE_BALANCE_SIGMA = 0.08  # red and blue gains exp(N(0, s)) relative to green
READ_NOISE = (1 / 255, 6 / 255)  # standard deviation of the signal-independent part
SHOT_NOISE = (0.0, 0.03)  # standard deviation at full scale of the part that grows as sqrt(I)
HARMONISE_STRENGTH = (0.2, 0.6)  # how far the person's colour moves to the background's


class Probabilities(NamedTuple):
    """The probability of each augmentation per sample (0 turns one off)."""
    harmonise: float = 0.5
    defocus: float = 0.15
    motion_blur: float = 0.15
    exposure: float = 0.5
    noise: float = 0.5
    jpeg: float = 0.5


OFF = Probabilities(0, 0, 0, 0, 0, 0)

# The help of each --p-NAME option of train.py and train_device.py.
DESCRIPTIONS = Probabilities(
    harmonise="the person's colour pulled towards the background's",
    defocus="defocus blur",
    motion_blur="motion blur",
    exposure="exposure and white-balance error",
    noise="sensor noise",
    jpeg=f"JPEG compression at quality {JPEG_QUALITY[0]}-{JPEG_QUALITY[1]}",
)


def option(name: str) -> str:
    """The command-line option of an augmentation: motion_blur -> --p-motion-blur."""
    return "--p-" + name.replace("_", "-")


def from_options(args) -> Probabilities:
    """The probabilities given as --p-NAME options (argparse's namespace)."""
    return Probabilities(**{name: getattr(args, f"p_{name}") for name in Probabilities._fields})


class Draw(NamedTuple):
    """One sample's augmentations as `draw` chose them; None where one does not run."""
    harmonise: Optional[float] = None  # how far the person's colour moves to the background's
    defocus: Optional[float] = None  # the disc's radius, px at the crop's size
    motion_blur: Optional[Tuple[float, float]] = None  # length (px at the crop's size), angle
    exposure: Optional[Tuple[float, float, float]] = None  # red, green and blue gains
    noise: Optional[Tuple[float, float]] = None  # read and shot standard deviations
    jpeg: Optional[int] = None  # quality


def draw(rng: np.random.Generator, p: Probabilities, scale: float = 1.0,
         composited: bool = True) -> Draw:
    """Which augmentations run, each with its probability, and their parameters. A real photo
    (`composited` False) is not harmonised: it has no second picture to match."""
    t = None
    if composited and rng.random() < p.harmonise:
        t = rng.uniform(*HARMONISE_STRENGTH)
    run = rng.random(5) < np.array([p.defocus, p.motion_blur, p.exposure, p.noise, p.jpeg])
    radius = rng.uniform(*DEFOCUS_RADIUS_AT_512) * scale if run[0] else None
    motion = None
    if run[1]:
        motion = (rng.uniform(*MOTION_LENGTH_AT_512) * scale, rng.uniform(0, np.pi))
    gains = None
    if run[2]:
        gain = 2.0 ** rng.uniform(-EXPOSURE_STOPS, EXPOSURE_STOPS)
        red, blue = np.exp(rng.normal(0, WHITE_BALANCE_SIGMA, 2))
        gains = (gain * red, gain, gain * blue)
    sigmas = (rng.uniform(*READ_NOISE), rng.uniform(*SHOT_NOISE)) if run[3] else None
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)) if run[4] else None
    return Draw(t, radius, motion, gains, sigmas, quality)


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 1).astype(np.float32, copy=False)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A straight motion blur's kernel, summing to 1: a segment of that length and direction,
    points every quarter pixel along it, each splatted bilinearly."""
    r = int(np.ceil(length / 2))
    kernel = np.zeros((2 * r + 1, 2 * r + 1), dtype=np.float64)
    for t in np.linspace(-length / 2, length / 2, max(2, int(length * 4))):
        x, y = r + t * np.cos(angle), r + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy <= 2 * r and 0 <= x0 + dx <= 2 * r:
                    kernel[y0 + dy, x0 + dx] += wy * wx
    return kernel / kernel.sum()


def defocus_kernel(radius: float) -> np.ndarray:
    """An out-of-focus blur's kernel, summing to 1: a disc with an antialiased edge."""
    r = int(np.ceil(radius))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(x, y), 0, 1)
    return kernel / kernel.sum()


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each channel convolved with a normalised kernel, the border extended by reflection (zero
    padding would darken it)."""
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(image, ((ry, ry), (rx, rx), (0, 0)), mode="reflect")
    return _clip(fftconvolve(padded, kernel[..., None], mode="valid", axes=(0, 1)))


def exposure(image: np.ndarray, gains: Tuple[float, float, float]) -> np.ndarray:
    """An exposure error and a white-balance error: one gain per channel."""
    return _clip(image * np.array(gains, dtype=np.float32))


def noise(image: np.ndarray, read: float, shot: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: a signal-independent (read) part and one that grows as sqrt(I) (shot)."""
    sigma = np.sqrt(read ** 2 + shot ** 2 * image)
    return _clip(image + sigma * rng.standard_normal(image.shape, dtype=np.float32))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG blocking and ringing: a round trip through PIL's encoder."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255


def harmonise(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray,
              t: float) -> np.ndarray:
    """The foreground's per-channel mean and spread (over the person, weighted by alpha) moved
    the part t of the way towards the background's, as a camera's exposure and white balance
    would have made them match had the person stood there."""
    weight = alpha[..., None].astype(np.float64)
    total = weight.sum()
    if total < 1:
        return foreground
    mean_f = (weight * foreground).sum(axis=(0, 1)) / total
    std_f = np.sqrt((weight * (foreground - mean_f) ** 2).sum(axis=(0, 1)) / total)
    mean_b = background.mean(axis=(0, 1))
    std_b = background.std(axis=(0, 1))
    target_mean = (1 - t) * mean_f + t * mean_b
    target_std = (1 - t) * std_f + t * std_b
    out = (foreground - mean_f) * (target_std / np.maximum(std_f, 1e-3)) + target_mean
    return _clip(out)


def apply(image: np.ndarray, d: Draw, rng: np.random.Generator) -> np.ndarray:
    """The degradations of a draw, in the camera's order (the noise field from `rng`)."""
    if d.defocus is not None:
        image = blur(image, defocus_kernel(d.defocus))
    if d.motion_blur is not None:
        image = blur(image, motion_kernel(*d.motion_blur))
    if d.exposure is not None:
        image = exposure(image, d.exposure)
    if d.noise is not None:
        image = noise(image, *d.noise, rng)
    if d.jpeg is not None:
        image = jpeg(image, d.jpeg)
    return image


def composite(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray,
              rng: np.random.Generator, p: Probabilities, scale: float = 1.0) -> np.ndarray:
    """I = g F + (1 - g) B with the foreground harmonised first (with its probability), then
    degraded: one training sample's picture. `alpha` is H x W."""
    d = draw(rng, p, scale)
    if d.harmonise is not None:
        foreground = harmonise(foreground, alpha, background, d.harmonise)
    g = alpha[..., None]
    return apply((g * foreground + (1 - g) * background).astype(np.float32), d, rng)

"""Helpers shared by the degradation modules: seeds, dtype round trips, kernels, smooth fields.

Every degradation works in float32 (H, W, C) in [0, 1] and converts back to the caller's
dtype and shape, so these few helpers keep that round trip identical everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imageops import from_float, luminance, to_float

Seed = int | np.random.Generator


def rng_of(seed: Seed) -> np.random.Generator:
    """A Generator from an int seed, or the Generator itself (so recipes can chain one)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def work(image: np.ndarray) -> np.ndarray:
    """Any supported input -> float32 (H, W, C) in [0, 1] (a copy, safe to modify)."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"expected (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")
    return np.array(to_float(image), dtype=np.float32, copy=True)


def back(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float result -> the dtype and channel layout of the original input `like`."""
    if result.ndim == 2:
        result = result[:, :, None]
    return from_float(result, like.dtype, squeeze=like.ndim == 2)


def as_3d(image: np.ndarray) -> np.ndarray:
    """cv2 drops a single channel axis on filtering/resizing; put it back."""
    return image[:, :, None] if image.ndim == 2 else image


def gray(image: np.ndarray) -> np.ndarray:
    """Float (H, W, C) -> (H, W) luma, used for depth proxies and masks."""
    return luminance(image).astype(np.float32)


def line_kernel(length: float, angle_deg: float, width: int = 1, normalise: bool = True) -> np.ndarray:
    """Anti-aliased straight-line kernel of `length` px at `angle_deg` (0 = horizontal, CCW).

    Used for motion blur and to stretch rain/snow seeds into streaks. `normalise` makes it
    sum to 1 (blur); otherwise its peak is 1 so a seed keeps its brightness along the streak.
    """
    length = max(float(length), 1.0)
    size = int(np.ceil(length)) | 1
    size += 2 * width
    c = (size - 1) / 2.0
    dx, dy = np.cos(np.deg2rad(angle_deg)), -np.sin(np.deg2rad(angle_deg))
    half = (length - 1) / 2.0
    p0 = (c - dx * half, c - dy * half)
    p1 = (c + dx * half, c + dy * half)
    kernel = np.zeros((size, size), np.uint8)
    shift = 4  # sub-pixel end points: cv2 takes fixed-point coordinates
    pts = [tuple(int(round(v * (1 << shift))) for v in p) for p in (p0, p1)]
    cv2.line(kernel, pts[0], pts[1], 255, int(width), cv2.LINE_AA, shift)
    kernel = kernel.astype(np.float32)
    if kernel.sum() == 0:
        kernel[size // 2, size // 2] = 1.0
    return kernel / (kernel.sum() if normalise else kernel.max())


def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased flat disk (the defocus point-spread function), summing to 1."""
    radius = max(float(radius), 0.5)
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    # Coverage ramps over one pixel at the rim instead of a hard step.
    kernel = np.clip(radius + 0.5 - np.sqrt(xx**2 + yy**2), 0.0, 1.0)
    return kernel / kernel.sum()


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """Smooth random (H, W) field in [0, 1]: a coarse random grid upsampled bicubically.

    Cheap at any image size (no huge Gaussian kernels); `cells` sets how many blobs span
    the short side.
    """
    h, w = shape
    gh = max(2, int(round(cells * h / min(h, w))))
    gw = max(2, int(round(cells * w / min(h, w))))
    grid = rng.random((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return normalise01(field)


def normalise01(x: np.ndarray) -> np.ndarray:
    """Stretch to [0, 1]; a constant array becomes zeros."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-8:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


def low_pass(x: np.ndarray, cells: int = 24) -> np.ndarray:
    """Very smooth version of an (H, W) map, via area-downsample then cubic upsample."""
    h, w = x.shape
    small = cv2.resize(x, (max(2, cells * w // min(h, w)), max(2, cells * h // min(h, w))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def screen(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Screen blend: 1 - (1 - a)(1 - b); brightens like light added on top (rain, snow)."""
    if layer.ndim == 2:
        layer = layer[:, :, None]
    return 1.0 - (1.0 - base) * (1.0 - np.clip(layer, 0.0, 1.0))

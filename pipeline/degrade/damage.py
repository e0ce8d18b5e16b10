"""Damage degradations: holes and scratches, each returning (image, mask).

The mask is bool (H, W), True exactly where pixels were overwritten, so inpainting
training and benchmarks can use it as the known-missing region.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.degrade.common import Seed, back, rng_of, work


def _hole_mask(shape: tuple[int, int], rng: np.random.Generator, count: int, size: tuple[float, float]) -> np.ndarray:
    """Random filled rectangles and ellipses; sizes are fractions of the short side."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    short = min(h, w)
    for _ in range(int(count)):
        rw, rh = (rng.uniform(size[0], size[1], 2) * short / 2).clip(1, None)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        if rng.random() < 0.5:
            p0 = (int(cx - rw), int(cy - rh))
            p1 = (int(cx + rw), int(cy + rh))
            cv2.rectangle(mask, p0, p1, 1, -1)
        else:
            angle = rng.uniform(0, 180)
            cv2.ellipse(mask, (int(cx), int(cy)), (int(rw), int(rh)), angle, 0, 360, 1, -1)
    return mask.astype(bool)


def holes(
    image: np.ndarray,
    *,
    seed: Seed,
    count: int = 3,
    size: tuple[float, float] = (0.08, 0.25),
) -> tuple[np.ndarray, np.ndarray]:
    """Black (zero) rectangles and ellipses, as missing blocks or torn-out patches.

    count: number of holes, 1-20. size: (lo, hi) range of each hole's width and height as
    a fraction of the image's short side, within 0.01-0.6.
    """
    x = work(image)
    mask = _hole_mask(x.shape[:2], rng_of(seed), count, size)
    x[mask] = 0.0
    return back(x, image), mask


def _curve(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Points of a gently curved stroke: a quadratic Bezier across a good part of the image."""
    start = rng.uniform((0, 0), (w, h))
    length = rng.uniform(0.3, 0.9) * max(h, w)
    # Mostly near-vertical, like film scratches, with some in any direction.
    angle = rng.normal(np.pi / 2, 0.3) if rng.random() < 0.6 else rng.uniform(0, np.pi)
    end = start + length * np.array([np.cos(angle), np.sin(angle)])
    bend = (rng.random() - 0.5) * 0.4 * length
    mid = (start + end) / 2 + bend * np.array([-np.sin(angle), np.cos(angle)])
    t = np.linspace(0, 1, 40)[:, None]
    pts = (1 - t) ** 2 * start + 2 * (1 - t) * t * mid + t**2 * end
    return np.rint(pts * 16).astype(np.int32)  # fixed point, shift=4 for cv2


def scratches(
    image: np.ndarray,
    *,
    seed: Seed,
    count: int = 5,
    width: tuple[int, int] = (1, 3),
) -> tuple[np.ndarray, np.ndarray]:
    """Thin curved bright or dark lines, as on scanned prints and film.

    count: number of scratches, 1-30. width: (lo, hi) stroke width range in pixels, 1-8.
    Each scratch is near-white or near-black with anti-aliased edges; the mask covers
    every pixel the stroke touches.
    """
    x = work(image)
    h, w = x.shape[:2]
    rng = rng_of(seed)
    changed = np.zeros((h, w), bool)
    for _ in range(int(count)):
        alpha = np.zeros((h, w), np.uint8)
        thick = int(rng.integers(int(width[0]), int(width[1]) + 1))
        cv2.polylines(alpha, [_curve(rng, h, w)], False, 255, max(thick, 1), cv2.LINE_AA, 4)
        alpha[alpha < 32] = 0  # drop faint fringe pixels so every masked pixel visibly changes
        value = rng.uniform(0.85, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.12)
        a = (alpha.astype(np.float32) / 255.0)[:, :, None]
        x = x * (1.0 - a) + np.float32(value) * a
        changed |= alpha > 0
    return back(x, image), changed

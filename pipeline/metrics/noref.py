"""No-reference image measures, computed before and after enhancement.

All take a float image in [0, 1] shaped (H, W) or (H, W, C) and return a float. They are
cheap by design (one or two 3x3 convolutions) because they run on every image of a bulk job.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imageops import luminance

# Immerkaer (1996) "Fast noise variance estimation": this mask cancels image structure up to
# second order, leaving mostly noise; sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * M|.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_sigma(image: np.ndarray) -> float:
    """Estimated std of additive white noise, on the 0-255 scale (Immerkaer's method)."""
    y = luminance(image).astype(np.float32)
    h, w = y.shape
    if h < 3 or w < 3:
        return 0.0
    response = cv2.filter2D(y, -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    sigma = np.sqrt(np.pi / 2.0) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2))
    return float(sigma * 255.0)


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the luma (x 255^2): higher is sharper (or noisier)."""
    y = luminance(image).astype(np.float32)
    return float(cv2.Laplacian(y, cv2.CV_32F, ksize=3).var() * 255.0**2)


def brightness(image: np.ndarray) -> float:
    """Mean luma in [0, 1]."""
    return float(luminance(image).mean())


def contrast(image: np.ndarray) -> float:
    """RMS contrast: std of the luma in [0, 1]."""
    return float(luminance(image).std())


NO_REFERENCE = {
    "noise": noise_sigma,
    "sharpness": sharpness,
    "brightness": brightness,
    "contrast": contrast,
}


def measure(image: np.ndarray) -> dict[str, float]:
    """All no-reference measures of one image, keyed as in `NO_REFERENCE`."""
    return {name: fn(image) for name, fn in NO_REFERENCE.items()}

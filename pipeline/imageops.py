"""Conversions between stored pixel types and the float working space of enhancers.

Enhancers and metrics work on float32 images in [0, 1], shaped (H, W, C) with C in {1, 3};
files hold uint8 or uint16 with 1-4 channels. These helpers go back and forth without
losing the bit depth, and split off an alpha channel so it is carried, not "enhanced".
"""

from __future__ import annotations

import numpy as np

SUPPORTED_DTYPES = (np.uint8, np.uint16)


def dtype_max(dtype: np.dtype) -> float:
    """Full-scale value of an integer sample type (255 for uint8, 65535 for uint16)."""
    return float(np.iinfo(dtype).max)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16/float image -> float32 in [0, 1], always 3-D (H, W, C)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float32) / dtype_max(image.dtype)
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def from_float(image: np.ndarray, dtype: np.dtype, squeeze: bool) -> np.ndarray:
    """float image in [0, 1] -> `dtype`, rounding; `squeeze` drops a single channel axis."""
    image = np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0)
    image = np.clip(image, 0.0, 1.0)
    if np.issubdtype(np.dtype(dtype), np.integer):
        image = np.rint(image * dtype_max(dtype)).astype(dtype)
    else:
        image = image.astype(dtype)
    if squeeze and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 2|4) -> colour part and alpha; other shapes come back with alpha None."""
    if image.ndim == 3 and image.shape[2] in (2, 4):
        return image[:, :, :-1], image[:, :, -1]
    return image, None


def luminance(image: np.ndarray) -> np.ndarray:
    """Float (H, W, C) -> (H, W) luma (Rec. 601 weights for RGB)."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    rgb = image[:, :, :3]
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    """The whole image squeezed to (side, side, C), area-averaged (bilinear when enlarging):
    the view a whole-image classifier sees, in training and in the enhance job alike."""
    import cv2

    h, w = image.shape[:2]
    interpolation = cv2.INTER_AREA if min(h, w) >= side else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=interpolation)
    return out[:, :, None] if out.ndim == 2 else out

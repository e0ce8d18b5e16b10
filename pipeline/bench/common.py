"""What every benchmark suite shares: loading images, timing, the row shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipeline.io.codecs import decode


def load_image(path: Path) -> np.ndarray:
    """A dataset image as stored (uint8/uint16, RGB order), through the pipeline's decoder."""
    return decode(path.read_bytes(), max_pixels=10**9).pixels


def timed(fn: Callable, *args, **kwargs):
    """(result, milliseconds) of one call."""
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - started) * 1e3


def bicubic_up(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[:2]
    out = cv2.resize(image, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h * factor, w * factor, *image.shape[2:])

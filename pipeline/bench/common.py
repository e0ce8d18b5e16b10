"""What every benchmark suite shares: loading images, timing, the row shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pipeline.io.codecs import decode


def enhancer_of(model: str, tracking_uri: str | None = None, threads: int = 2):
    """A suite's model entry as an enhancer: a model reference (`bundled:`, `models:/`, a path)
    becomes a LearnedEnhancer, anything else names a classical enhancer."""
    from pipeline.enhance.enhance import build_enhancer

    if ":" in model or "/" in model:
        return build_enhancer("learned", {"model": model, "tracking_uri": tracking_uri, "threads": threads})
    return build_enhancer(model, {})


def enhancers_by_label(models: list[str], tracking_uri: str | None = None) -> dict:
    """{label: enhancer} of a suite's `models`; the label is what rows record (the pinned
    model reference, `classical:<name>` for classical ones)."""
    out = {}
    for model in models:
        enhancer = enhancer_of(model, tracking_uri)
        out[getattr(enhancer, "model_ref", model) or model] = enhancer
    return out


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

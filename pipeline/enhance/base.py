"""The one interface every enhancer implements, classical or learned.

An enhancer takes a float32 image in [0, 1] shaped (H, W, C), C in {1, 3}, plus the
detector's measurements (`hints`, e.g. ``noise_sigma`` on the 0-255 scale), and returns a
float32 image shaped (H * scale, W * scale, C). Conversion from and to the stored bit depth,
alpha handling and tiling live in the enhance stage, not here, so an enhancer is a plain
array function that unit tests can call directly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class Enhancer:
    """Base class: subclasses set `name`, `consumes`, `scale` and implement `enhance`."""

    name: str = "base"
    # Degradation labels (pipeline.labels.DEGRADATIONS) this enhancer is meant for.
    consumes: tuple[str, ...] = ()
    # Output size / input size (4 for x4 super-resolution).
    scale: int = 1
    # Recorded in every result row as the `model` column.
    model_ref: str = ""

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, image: np.ndarray, hints: Mapping[str, float] | None = None) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] not in (1, 3) or image.dtype != np.float32:
            raise ValueError(f"{self.name}: expects float32 (H, W, 1|3), got {image.dtype} {image.shape}")
        out = self.enhance(image, hints or {})
        expected = (image.shape[0] * self.scale, image.shape[1] * self.scale, image.shape[2])
        if out.shape != expected:
            raise ValueError(f"{self.name}: returned shape {out.shape}, expected {expected}")
        if not np.isfinite(out).all():
            raise ValueError(f"{self.name}: output has NaN or Inf")
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

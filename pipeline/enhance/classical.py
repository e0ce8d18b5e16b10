"""The classical (non-learned) enhancers, one per degradation, and their name -> class table.

Each is an `Enhancer` with explicit keyword arguments and tuned defaults; they need no
weights, so they are the fallback for every label and the baseline the learned models are
benchmarked against. The denoisers, the periodic-noise notch filter, the restorers (haze,
low light) and the JPEG deblocker live in their own modules; the two trivial ones are here.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from pipeline.enhance.base import Enhancer
from pipeline.enhance.classical_deblock import Deblock
from pipeline.enhance.classical_denoise import BM3D, Bilateral, NLMeans, SwitchingMedian
from pipeline.enhance.classical_periodic import Notch
from pipeline.enhance.classical_restore import Dehaze, LowLight
from pipeline.labels import PASSTHROUGH


class Lanczos(Enhancer):
    """Lanczos (8x8 taps) upscaling by an integer factor, in float32: the classical
    baseline for low-resolution inputs."""

    name = "lanczos"
    consumes = ("low_resolution",)
    scale = 4
    model_ref = "classical:lanczos"

    def __init__(self, factor: int = 4) -> None:
        if factor < 1:
            raise ValueError(f"lanczos: factor must be >= 1, got {factor}")
        self.scale = factor

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        h, w, c = image.shape
        out = cv2.resize(image, (w * self.scale, h * self.scale), interpolation=cv2.INTER_LANCZOS4)
        return out.reshape(h * self.scale, w * self.scale, c)


class Passthrough(Enhancer):
    """Returns the image unchanged: the route for clean images (and a no-op baseline)."""

    name = PASSTHROUGH
    consumes = ("clean",)
    scale = 1
    model_ref = f"classical:{PASSTHROUGH}"

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        return image.copy()


CLASSICAL: dict[str, type[Enhancer]] = {
    "nlmeans": NLMeans,
    "bm3d": BM3D,
    "bilateral": Bilateral,
    "median": SwitchingMedian,
    "notch": Notch,
    "dehaze": Dehaze,
    "lowlight": LowLight,
    "deblock": Deblock,
    "lanczos": Lanczos,
    PASSTHROUGH: Passthrough,
}

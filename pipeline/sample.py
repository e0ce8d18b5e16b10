"""The bundled sample: scikit-image's own images with the project's degradations, as a tar.

Built on first use (no network: the images ship inside scikit-image) into the cache
folder, with a clean reference tar under the same member names so the sample run also
fills the PSNR/SSIM columns. One member is a truncated JPEG, to show what a failed row
looks like.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from pipeline.degrade import DEGRADE
from pipeline.io.codecs import encode

SAMPLE_VERSION = 2  # bump whenever the degradations or the plan change
MAX_SIDE = 256  # small images keep `make run` quick on two cores

# (member path, scikit-image image, degradation kind or None, params)
PLAN = [
    ("noise/camera.png", "camera", "gaussian_noise", {"sigma": 25.0}),
    ("noise/astronaut.png", "astronaut", "gaussian_noise", {"sigma": 20.0}),
    ("salt_pepper/coins.png", "coins", "salt_pepper", {"amount": 0.08}),
    ("periodic/moon.png", "moon", "periodic_noise", {"amplitude": 0.25, "angle_deg": 30.0}),
    ("haze/coffee.png", "coffee", "haze", {"beta": 2.0}),
    ("low_light/chelsea.png", "chelsea", "low_light", {}),
    ("jpeg/rocket.jpg", "rocket", "jpeg", {"quality": 10}),
    ("low_resolution/brick.png", "brick", "downscale", {"factor": 4}),
    ("rain/grass.png", "grass", "rain_streaks", {}),
    ("clean/immunohistochemistry.png", "immunohistochemistry", None, {}),
    ("clean/page.png", "page", None, {}),
]


@dataclass(frozen=True)
class Sample:
    degraded: str
    reference: str


def cache_dir() -> Path:
    return Path(os.environ.get("IMGENHANCE_CACHE", Path.home() / ".cache" / "imgenhance"))


def _clean(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    scale = MAX_SIDE / max(image.shape[:2])
    size = (round(image.shape[1] * scale) // 4 * 4, round(image.shape[0] * scale) // 4 * 4)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def _degraded_bytes(member: str, image: np.ndarray, kind: str | None, params: dict, seed: int) -> bytes:
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, params["quality"]])
        return buf.tobytes()
    out = image if kind is None else DEGRADE[kind](image, seed=seed, **params)
    return encode(out, "png")


def build(folder: Path) -> Sample:
    folder.mkdir(parents=True, exist_ok=True)
    degraded, reference = folder / f"sample-v{SAMPLE_VERSION}.tar", folder / f"sample-v{SAMPLE_VERSION}-clean.tar"
    with tarfile.open(degraded, "w") as noisy, tarfile.open(reference, "w") as clean:
        for seed, (member, name, kind, params) in enumerate(PLAN):
            image = _clean(name)
            _add(noisy, member, _degraded_bytes(member, image, kind, params, seed))
            _add(clean, member, encode(image, "png"))
        whole = _degraded_bytes("x.jpg", _clean("chelsea"), "jpeg", {"quality": 80}, 0)
        _add(noisy, "broken/truncated.jpg", whole[: len(whole) // 2])
    return Sample(str(degraded), str(reference))


def ensure_sample(folder: Path | None = None) -> Sample:
    """The sample archives, built once per version into the cache folder."""
    folder = folder or cache_dir()
    degraded, reference = folder / f"sample-v{SAMPLE_VERSION}.tar", folder / f"sample-v{SAMPLE_VERSION}-clean.tar"
    if degraded.is_file() and reference.is_file():
        return Sample(str(degraded), str(reference))
    return build(folder)

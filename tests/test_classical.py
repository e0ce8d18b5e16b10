"""Classical enhancers: the contract (shape, dtype, finite values, C=1 and C=3) and a real
quality check per enhancer on its own degradation, with 128x128 crops of scikit-image's
camera (gray) and astronaut (RGB).

The degradations are written out here (simple, seeded) so the quality margins below do not
move when the degradation library changes. Each margin is about half of what was measured
on these crops, noted next to it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from pipeline.enhance.base import Enhancer
from pipeline.enhance.classical import CLASSICAL, Lanczos
from pipeline.labels import DEGRADATIONS
from pipeline.metrics.fullref import psnr


def _crop(image: np.ndarray, top: int, left: int) -> np.ndarray:
    image = image.astype(np.float32) / 255.0
    image = image[:, :, None] if image.ndim == 2 else image
    return np.ascontiguousarray(image[top : top + 128, left : left + 128])


CLEAN = {
    "gray": _crop(data.camera(), 80, 190),
    "rgb": _crop(data.astronaut(), 30, 170),
}


def gaussian_noise(image: np.ndarray, sigma: float = 25.0, seed: int = 0) -> np.ndarray:
    """Additive white Gaussian noise, std `sigma` on the 0-255 scale, clipped."""
    noise = np.random.default_rng(seed).normal(0.0, sigma / 255.0, image.shape)
    return np.clip(image + noise, 0.0, 1.0).astype(np.float32)


def salt_pepper(image: np.ndarray, fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """`fraction` of the pixels set to 0 or 1 (half each), the same in every channel."""
    draw = np.random.default_rng(seed).random(image.shape[:2])
    out = image.copy()
    out[draw < fraction / 2] = 0.0
    out[(draw >= fraction / 2) & (draw < fraction)] = 1.0
    return out


def periodic(image: np.ndarray, amplitude: float = 0.2, angle: float = 30.0) -> np.ndarray:
    """+ amplitude * cos(1.5 pi u), u the pixel coordinate along a direction at `angle` deg."""
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]].astype(np.float32)
    theta = np.deg2rad(angle)
    wave = amplitude * np.cos(1.5 * np.pi * (cols * np.cos(theta) + rows * np.sin(theta)))
    return np.clip(image + wave[:, :, None], 0.0, 1.0).astype(np.float32)


def haze(image: np.ndarray, airlight: float = 0.95) -> np.ndarray:
    """I = J t + A (1 - t), t from 0.3 (top row) to 0.9 (bottom row)."""
    t = np.linspace(0.3, 0.9, image.shape[0], dtype=np.float32)[:, None, None]
    return (image * t + airlight * (1.0 - t)).astype(np.float32)


def low_light(image: np.ndarray) -> np.ndarray:
    """Gamma 1.5, then 0.15x exposure."""
    return (0.15 * np.power(image, 1.5)).astype(np.float32)


def jpeg(image: np.ndarray, quality: int = 10) -> np.ndarray:
    """Round trip through OpenCV's JPEG codec (RGB handed over as BGR)."""
    pixels = np.rint(image * 255.0).astype(np.uint8)
    pixels = pixels[:, :, ::-1] if pixels.shape[2] == 3 else pixels[:, :, 0]
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    decoded = decoded[:, :, ::-1] if decoded.ndim == 3 else decoded[:, :, None]
    return decoded.astype(np.float32) / 255.0


def downscale(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """x`factor` bicubic downscaling."""
    h, w, c = image.shape
    small = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_CUBIC)
    return small.reshape(h // factor, w // factor, c)


# name -> (degradation, minimum PSNR gain in dB on (gray, rgb)); measured gains in comments.
QUALITY = {
    "nlmeans": (gaussian_noise, (5.0, 5.0)),  # measured +8.0 / +8.5
    "bm3d": (gaussian_noise, (5.0, 5.0)),  # +8.5 / +9.4, the denoising tables' reference
    "bilateral": (gaussian_noise, (4.0, 4.0)),  # +7.1 / +7.4
    "median": (salt_pepper, (12.0, 12.0)),  # +21.4 / +22.1
    "notch": (periodic, (8.0, 8.0)),  # +15.8 / +15.8
    "dehaze": (haze, (6.0, 5.0)),  # +11.7 / +10.4
    "lowlight": (low_light, (5.0, 5.0)),  # +9.3 / +10.5
    "deblock": (jpeg, (0.4, 0.25)),  # +0.85 / +0.48
}


def _random_image(channels: int) -> np.ndarray:
    """Smooth-ish float image off the 8-bit grid, as a 16-bit source would give."""
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.random((64, 48, channels)).astype(np.float32), (0, 0), 2.0)
    noisy = base.reshape(64, 48, channels) + rng.normal(0, 0.05, (64, 48, channels))
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_contract(name: str, channels: int) -> None:
    enhancer = CLASSICAL[name]()
    image = _random_image(channels)
    out = enhancer(image, {})
    assert out.shape == (64 * enhancer.scale, 48 * enhancer.scale, channels)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


def test_table_names_and_labels() -> None:
    for key, cls in CLASSICAL.items():
        assert issubclass(cls, Enhancer)
        assert cls.name == key and cls.model_ref == f"classical:{key}"
        assert cls.consumes and set(cls.consumes) <= set(DEGRADATIONS)


@pytest.mark.parametrize("kind", ["gray", "rgb"])
@pytest.mark.parametrize("name", sorted(QUALITY))
def test_quality_gain(name: str, kind: str) -> None:
    degrade, margins = QUALITY[name]
    clean = CLEAN[kind]
    degraded = degrade(clean)
    restored = CLASSICAL[name]()(degraded, {})
    gain = psnr(clean, restored) - psnr(clean, degraded)
    assert gain >= margins[kind == "rgb"], f"{name} on {kind}: gain {gain:.2f} dB"


@pytest.mark.parametrize("kind", ["gray", "rgb"])
def test_lanczos_beats_nearest(kind: str) -> None:
    clean = CLEAN[kind]
    small = downscale(clean)
    nearest = cv2.resize(small, (128, 128), interpolation=cv2.INTER_NEAREST).reshape(clean.shape)
    gain = psnr(clean, Lanczos(factor=4)(small, {})) - psnr(clean, nearest)
    assert gain >= 0.7, f"lanczos on {kind}: gain {gain:.2f} dB over nearest"  # measured +1.35 / +1.9


@pytest.mark.parametrize("name", ["median", "notch", "passthrough"])
def test_clean_image_unchanged(name: str) -> None:
    """Detect-then-fix enhancers (nearly) leave an image without their degradation alone:
    the median may take an isolated black pixel for pepper (1 pixel of this crop)."""
    clean = CLEAN["gray"]
    changed = np.abs(CLASSICAL[name]()(clean, {}) - clean) > 1e-6
    assert changed.mean() <= 0.001


def test_noise_hint_sets_strength() -> None:
    """A larger sigma hint smooths more: the hint is used instead of the estimate."""
    noisy = gaussian_noise(CLEAN["gray"])
    weak = CLASSICAL["bilateral"]()(noisy, {"noise_sigma": 5.0})
    strong = CLASSICAL["bilateral"]()(noisy, {"noise_sigma": 40.0})
    assert np.abs(strong - noisy).mean() > 2 * np.abs(weak - noisy).mean()


def test_deblock_finds_shifted_grid() -> None:
    """A crop that moves the 8x8 grid off the origin still gets deblocked."""
    clean = CLEAN["gray"]
    degraded = jpeg(clean)[3:, 5:]
    restored = CLASSICAL["deblock"]()(np.ascontiguousarray(degraded), {})
    assert psnr(clean[3:, 5:], restored) - psnr(clean[3:, 5:], degraded) >= 0.4  # measured +0.88


@pytest.mark.parametrize("angle", [0.0, 45.0, 90.0, 120.0, 161.0])
def test_notch_any_orientation(angle: float) -> None:
    clean = CLEAN["gray"]
    degraded = periodic(clean, angle=angle)
    gain = psnr(clean, CLASSICAL["notch"]()(degraded, {})) - psnr(clean, degraded)
    assert gain >= 8.0, f"notch at {angle} deg: gain {gain:.2f} dB"  # measured +14.5 to +15.8


@pytest.mark.parametrize("name", ["nlmeans", "bilateral", "dehaze", "lowlight", "deblock"])
def test_keeps_float_precision(name: str) -> None:
    """Outputs are not rounded to 8 bits (inputs may come from 16-bit files)."""
    degraded = QUALITY[name][0](CLEAN["rgb"])
    out = CLASSICAL[name]()(degraded, {}) * 255.0
    assert np.abs(out - np.rint(out)).mean() > 0.05


def test_classical_actors_do_not_import_torch() -> None:
    """The module every enhancer actor loads leaves torch to the learned pools: importing it
    costs each actor process seconds of CPU, and a run starts a dozen actors."""
    import subprocess
    import sys

    code = "import sys, pipeline.enhance.enhance as e; e.enhancer_class('median'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"

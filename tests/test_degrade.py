"""Degradation functions: contract (dtype/shape/seeding), parameter effects, damage masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from pipeline.degrade import DEGRADE, DETERMINISTIC, LABEL_OF, RETURNS_MASK, capture, damage, noise, weather
from pipeline.degrade import pairs, sheet
from pipeline.labels import DEGRADATIONS
from pipeline.metrics.fullref import psnr

SIZE = 64


def _rgb() -> np.ndarray:
    return cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _variants() -> dict[str, np.ndarray]:
    rgb = _rgb()
    gray = cv2.resize(data.camera(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return {
        "u8_gray": gray,
        "u8_gray_1ch": gray[:, :, None],
        "u8_rgb": rgb,
        "u16_rgb": rgb.astype(np.uint16) * 257,
        "f32_rgb": rgb.astype(np.float32) / 255.0,
    }


VARIANTS = _variants()


def run(kind: str, image: np.ndarray, seed=0, **params) -> np.ndarray:
    out = DEGRADE[kind](image, seed=seed, **params)
    return out[0] if kind in RETURNS_MASK else out


def as_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", DEGRADE)
def test_dtype_shape_and_range_kept(kind, variant):
    image = VARIANTS[variant]
    out = run(kind, image, seed=1)
    assert out.dtype == image.dtype
    if kind == "downscale":
        assert out.shape == (SIZE // 4, SIZE // 4) + image.shape[2:]
    else:
        assert out.shape == image.shape
    if out.dtype == np.float32:
        assert np.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("kind", DEGRADE)
def test_same_seed_same_bytes_and_image_changes(kind):
    image = VARIANTS["u8_rgb"]
    a, b = run(kind, image, seed=7), run(kind, image, seed=7)
    assert a.tobytes() == b.tobytes()
    if kind != "downscale":
        assert not np.array_equal(a, image), "degradation left the image unchanged"


@pytest.mark.parametrize("kind", sorted(set(DEGRADE) - DETERMINISTIC))
def test_different_seed_differs_and_generator_matches_int(kind):
    image = VARIANTS["u8_rgb"]
    assert run(kind, image, seed=1).tobytes() != run(kind, image, seed=2).tobytes()
    from_gen = run(kind, image, seed=np.random.default_rng(5))
    assert from_gen.tobytes() == run(kind, image, seed=5).tobytes()


def test_label_mapping_complete():
    assert set(LABEL_OF) == set(DEGRADE)
    assert set(LABEL_OF.values()) <= set(DEGRADATIONS)
    assert set(LABEL_OF.values()) == set(DEGRADATIONS) - {"clean"}


def _psnr(kind: str, **params) -> float:
    clean = VARIANTS["f32_rgb"]
    return psnr(clean, run(kind, clean, seed=3, **params))


@pytest.mark.parametrize(
    "kind, mild, strong",
    [
        ("gaussian_noise", {"sigma": 10.0}, {"sigma": 40.0}),
        ("poisson_noise", {"peak": 200.0}, {"peak": 10.0}),
        ("speckle_noise", {"var": 0.01}, {"var": 0.1}),
        ("salt_pepper", {"amount": 0.01}, {"amount": 0.1}),
        ("periodic_noise", {"amplitude": 0.05}, {"amplitude": 0.3}),
        ("banding", {"strength": 0.02}, {"strength": 0.1}),
        ("jpeg", {"quality": 60}, {"quality": 8}),
        ("upscale_back", {"factor": 2}, {"factor": 4}),
        ("motion_blur", {"length": 3.0}, {"length": 15.0}),
        ("defocus_blur", {"radius": 1.0}, {"radius": 4.0}),
        ("rain_streaks", {"density": 0.002}, {"density": 0.02}),
        ("snow", {"density": 0.001, "veil": 0.05}, {"density": 0.01, "veil": 0.4}),
    ],
)
def test_stronger_parameter_lowers_psnr(kind, mild, strong):
    assert _psnr(kind, **strong) < _psnr(kind, **mild) - 1.0


def test_gaussian_sigma_is_on_255_scale():
    flat = np.full((128, 128), 0.5, np.float32)
    residual = noise.gaussian_noise(flat, seed=0, sigma=25.5) - flat
    assert residual.std() == pytest.approx(0.1, rel=0.05)  # variance 0.01 on [0, 1]


def test_unclipped_gaussian_noise_keeps_values_outside_the_range():
    """clip=False is the papers' protocol: float32 whatever the input, the same noise, nothing
    cut at 0 or 1 (a uint8 file would hold the clipped, rounded version)."""
    dark = np.full((64, 64), 5, np.uint8)
    clipped = noise.gaussian_noise(dark, seed=3, sigma=50)
    raw = noise.gaussian_noise(dark, seed=3, sigma=50, clip=False)
    assert raw.dtype == np.float32 and raw.shape == dark.shape and raw.min() < -0.2
    np.testing.assert_array_equal(np.rint(np.clip(raw, 0, 1) * 255).astype(np.uint8), clipped)
    pair = pairs.make_pair([dark[:, :, None]], crop=32, seed=0, index=0,
                           steps=[{"kind": "gaussian_noise", "params": {"sigma": 50.0, "clip": False}}])
    assert pair["input"].min() < -0.2 and pair["target"].min() >= 0  # chw keeps float values


def test_salt_pepper_hits_about_amount_of_pixels():
    flat = np.full((128, 128, 3), 128, np.uint8)
    out = noise.salt_pepper(flat, seed=0, amount=0.1, salt_ratio=1.0)
    hit = (out != 128).any(axis=2)
    assert hit.mean() == pytest.approx(0.1, abs=0.015)
    assert (out[hit] == 255).all()


def test_periodic_noise_period_and_orientation():
    flat = np.full((32, 32), 0.5, np.float32)
    vertical_stripes = noise.periodic_noise(flat, seed=0, amplitude=0.2, alpha=2 * np.pi / 8, angle_deg=0)
    assert np.allclose(vertical_stripes, vertical_stripes[:1, :])  # constant down each column
    assert np.allclose(vertical_stripes[:, :-8], vertical_stripes[:, 8:], atol=1e-5)
    assert vertical_stripes.std() > 0.1
    horizontal = noise.periodic_noise(flat, seed=0, amplitude=0.2, alpha=2 * np.pi / 8, angle_deg=90)
    assert np.allclose(horizontal, horizontal[:, :1])


def test_banding_offsets_are_per_row_and_repeat_with_period():
    flat = np.full((32, 24, 3), 0.5, np.float32)
    out = noise.banding(flat, seed=0, strength=0.05, axis="rows", period=4)
    assert np.allclose(out, out[:, :1, :1])
    assert np.allclose(out[:-4], out[4:])
    assert out[:4, 0, 0].std() > 0
    cols = noise.banding(flat, seed=0, strength=0.05, axis="columns")
    assert np.allclose(cols, cols[:1])


def test_low_light_lower_exposure_is_darker():
    image = VARIANTS["u8_rgb"]
    bright = capture.low_light(image, seed=0, exposure=0.3).mean()
    dark = capture.low_light(image, seed=0, exposure=0.05).mean()
    assert dark < bright < image.mean()


def test_haze_higher_beta_lowers_contrast_toward_airlight():
    image = VARIANTS["f32_rgb"]
    thin = weather.haze(image, seed=0, beta=0.5, airlight=0.9)
    thick = weather.haze(image, seed=0, beta=3.0, airlight=0.9)
    assert thick.std() < thin.std() < image.std()
    assert abs(thick.mean() - 0.9) < abs(thin.mean() - 0.9)


def test_haze_zero_depth_is_identity():
    image = VARIANTS["f32_rgb"]
    out = weather.haze(image, seed=0, beta=2.0, depth=np.zeros(image.shape[:2], np.float32))
    assert np.allclose(out, image, atol=1e-6)


def test_rain_only_brightens_and_raindrops_leave_background():
    image = VARIANTS["f32_rgb"]
    rain = weather.rain_streaks(image, seed=0)
    assert (rain >= image - 1e-6).all() and rain.mean() > image.mean()
    drops = weather.raindrops(image, seed=0, count=5, radius=(3, 6))
    unchanged = np.isclose(drops, image).all(axis=2).mean()
    assert 0.5 < unchanged < 1.0


def test_jpeg_uint16_is_quantised_to_8_bit():
    out = capture.jpeg(VARIANTS["u16_rgb"], seed=0, quality=30)
    assert out.dtype == np.uint16 and (out % 257 == 0).all()


def test_downscale_mod_crops_and_upscale_back_keeps_size():
    image = np.zeros((66, 70, 3), np.uint8)
    assert capture.downscale(image, seed=0, factor=4).shape == (16, 17, 3)
    assert capture.downscale(image, seed=0, factor=3, blur_sigma=1.0).shape == (22, 23, 3)
    assert capture.upscale_back(image, seed=0, factor=4).shape == (66, 70, 3)


def test_holes_mask_is_exactly_the_zeroed_region():
    image = VARIANTS["u8_rgb"].copy()
    image[image == 0] = 1  # so every hole pixel visibly changes
    out, mask = damage.holes(image, seed=4, count=4)
    assert mask.dtype == bool and mask.shape == image.shape[:2] and mask.any()
    assert (out[mask] == 0).all()
    assert np.array_equal(out[~mask], image[~mask])
    assert np.array_equal((out != image).any(axis=2), mask)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_scratches_mask_is_exactly_the_changed_region(dtype):
    grey = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    image = grey if dtype == np.float32 else np.rint(grey * 255).astype(np.uint8)
    out, mask = damage.scratches(image, seed=2, count=6)
    assert mask.shape == (SIZE, SIZE) and 0 < mask.mean() < 0.5
    assert np.array_equal((out != image).any(axis=2), mask)


def test_contact_sheet_writes_small_png(tmp_path):
    path = tmp_path / "sheet.png"
    sheet.main([str(path), "--size", "48"])
    written = cv2.imread(str(path))
    rows = -(-(len(DEGRADE) + 1) // sheet.COLUMNS)
    assert written.shape[:2] == (rows * (48 + sheet.LABEL_H), sheet.COLUMNS * 48)


def test_antialiased_downscale_averages_what_plain_bicubic_aliases():
    """Pixel noise: MATLAB-style bicubic (anti-aliased) averages about a 4x4 neighbourhood per
    output pixel, so its variation drops several fold; cv2's plain bicubic interpolates
    between two input pixels and keeps most of it (aliasing)."""
    noise = np.random.default_rng(0).random((128, 128, 1), dtype=np.float32)
    smooth = DEGRADE["downscale"](noise, seed=0, factor=4, antialias=True)
    plain = DEGRADE["downscale"](noise, seed=0, factor=4)
    assert smooth.shape == plain.shape == (32, 32, 1)
    assert plain.std() > 2.5 * smooth.std()
    assert abs(smooth.mean() - noise.mean()) < 0.01
    flat = DEGRADE["upscale_back"](np.full((40, 40, 3), 77, np.uint8), seed=0, factor=4, antialias=True)
    assert flat.dtype == np.uint8 and flat.shape == (40, 40, 3) and (flat == 77).all()

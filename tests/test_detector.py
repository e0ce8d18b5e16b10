"""The statistics detector on small synthetic images with inline degradations.

Each degradation is a few lines of numpy/cv2 here (not pipeline.degrade) so the detector's
tests do not move when the degradation library's defaults do.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest
import skimage.data

from pipeline.enhance import detector
from pipeline.enhance.detector import detect
from pipeline.labels import DEGRADATIONS


def _gray() -> np.ndarray:
    return (skimage.data.camera()[96:352, 128:384] / 255.0).astype(np.float32)[:, :, None]


def _colour() -> np.ndarray:
    return (skimage.data.astronaut()[:256, 200:456] / 255.0).astype(np.float32)


IMAGES = {"gray": _gray, "colour": _colour}


def _noisy(x: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0.0, sigma / 255.0, x.shape)
    return np.clip(x + noise, 0, 1).astype(np.float32)


def _salt_pepper(x: np.ndarray, amount: float) -> np.ndarray:
    r, x = np.random.default_rng(1).random(x.shape[:2]), x.copy()
    x[r < amount / 2] = 0.0
    x[(r >= amount / 2) & (r < amount)] = 1.0
    return x


def _periodic(x: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[: x.shape[0], : x.shape[1]]
    wave = 0.15 * np.sin(2 * np.pi * (0.07 * rows + 0.11 * cols))
    return np.clip(x + wave[:, :, None], 0, 1).astype(np.float32)


def _dark(x: np.ndarray) -> np.ndarray:
    return (0.15 * x**1.5).astype(np.float32)


def _jpeg(x: np.ndarray, quality: int = 10) -> np.ndarray:
    u8 = np.rint(x * 255).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", u8[:, :, ::-1] if u8.shape[2] == 3 else u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    out = out[:, :, None] if out.ndim == 2 else out[:, :, ::-1]
    return (out / 255.0).astype(np.float32)


def _haze(x: np.ndarray) -> np.ndarray:
    return (0.45 * x + 0.55 * 0.9).astype(np.float32)


def _low_resolution(x: np.ndarray, factor: int = 4) -> np.ndarray:
    h, w, c = x.shape
    small = cv2.resize(x, (w // factor, h // factor), interpolation=cv2.INTER_CUBIC)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
    return np.clip(big, 0, 1).astype(np.float32)


@pytest.mark.parametrize("kind", IMAGES)
def test_clean_image_is_clean(kind):
    result = detect(IMAGES[kind]())
    assert result.degradation == "clean", result.scores


@pytest.mark.parametrize("kind", IMAGES)
@pytest.mark.parametrize("sigma", [15.0, 30.0])
def test_gaussian_noise_is_noise_with_its_sigma(kind, sigma):
    result = detect(_noisy(IMAGES[kind](), sigma))
    assert result.degradation == "noise", result.scores
    assert result.stats["noise_sigma"] == pytest.approx(sigma, rel=0.3)


@pytest.mark.parametrize("kind", IMAGES)
def test_salt_and_pepper_measures_its_amount(kind):
    result = detect(_salt_pepper(IMAGES[kind](), 0.05))
    assert result.degradation == "salt_pepper", result.scores
    assert result.stats["impulse_fraction"] == pytest.approx(0.05, rel=0.25)


@pytest.mark.parametrize(
    ("degrade", "label"),
    [(_periodic, "periodic"), (_dark, "low_light"), (_jpeg, "jpeg"), (_haze, "haze"),
     (_low_resolution, "low_resolution")],
)
@pytest.mark.parametrize("kind", IMAGES)
def test_degradation_is_named(kind, degrade, label):
    result = detect(degrade(IMAGES[kind]()))
    assert result.degradation == label, result.scores
    assert result.score >= 0.5


def test_scores_and_stats_are_well_formed():
    result = detect(_noisy(_colour(), 20.0))
    assert set(result.scores) == set(DEGRADATIONS)
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())
    assert result.score == result.scores[result.degradation]
    assert all(type(v) is float and math.isfinite(v) for v in result.stats.values())
    assert {"noise_sigma", "impulse_fraction", "periodic_peak", "dark_channel", "mean_luma",
            "blockiness", "hf_energy"} <= set(result.stats)


def test_large_image_is_measured_on_a_bounded_crop():
    rng = np.random.default_rng(2)
    big = cv2.resize(_colour(), (3000, 2000), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big + rng.normal(0, 0.1, big.shape), 0, 1).astype(np.float32)
    started = time.perf_counter()
    result = detect(big, max_side=256)
    assert time.perf_counter() - started < 3.0
    crop = detector.center_crop(big, 256)
    assert crop.shape[:2] == (256, 256)
    assert result.stats["noise_sigma"] == pytest.approx(detector.noise_stats(crop)["noise_sigma"])
    assert result.degradation == "noise"


def test_single_channel_layouts_agree():
    gray = _noisy(_gray(), 25.0)
    assert detect(gray).stats == detect(gray[:, :, 0]).stats
    rgb = np.repeat(gray, 3, axis=2)
    assert detect(rgb).stats["noise_sigma"] == pytest.approx(detect(gray).stats["noise_sigma"], rel=1e-3)


def test_tiny_and_flat_images_do_not_fail():
    for image in (np.zeros((5, 7, 1), np.float32), np.full((40, 30, 3), 0.5, np.float32)):
        result = detect(image)
        assert result.degradation in DEGRADATIONS
        assert all(math.isfinite(v) for v in result.stats.values())


def test_dark_and_noisy_is_low_light_not_noise():
    """Precedence: under-exposed images carry amplified sensor noise; low light wins."""
    result = detect(_noisy(_dark(_gray()), 12.0))
    assert result.scores["noise"] >= 0.5
    assert result.degradation == "low_light"


def test_bench_confusion_accuracy_and_calibration():
    from pipeline.bench import detector as bench
    from pipeline.bench.common import confusion

    rows = [{"label": "noise", "predicted": "noise"}, {"label": "noise", "predicted": "clean"},
            {"label": "clean", "predicted": "clean"}]
    labels, matrix = confusion([r["label"] for r in rows], [r["predicted"] for r in rows], DEGRADATIONS)
    assert labels == ("clean", "noise")
    assert matrix.tolist() == [[1, 0], [1, 1]]
    assert bench.accuracy(rows) == pytest.approx(2 / 3)
    table = bench.markdown(rows)
    assert "| noise | 0.500 | 1.000 | 2 |" in table and "| clean | 1.000 | 0.500 | 1 |" in table
    assert "| noise | 1 | 1 |" in table
    examples = [("clean", _gray()), ("noise", _noisy(_gray(), 20.0)), ("jpeg", _jpeg(_gray()))]
    rows = [{"label": label, "stats": detect(image).stats} for label, image in examples]
    tuned = bench.calibrate(rows, rounds=1)
    assert set(tuned) == set(detector.RULES)
    assert bench._objective(rows, tuned) >= bench._objective(rows, detector.RULES)


def test_measure_returns_the_stats_the_learned_decision_reads_in_order():
    detection = detect(_noisy(_colour(), 10))
    assert tuple(detection.stats) == detector.STATS
    assert np.array_equal(detector.decision_input(detection.stats, detection.scores), detector.decision_input(detection.stats))


def test_percentiles_match_numpy():
    values = np.random.default_rng(3).random((37, 53), dtype=np.float32)
    qs = [0, 1, 5, 10, 50, 95, 99, 100]
    assert np.allclose(detector.percentiles(values, qs), np.percentile(values, qs), rtol=0, atol=1e-7)


def test_integer_morphology_matches_float_morphology():
    """Top-hats and line openings run on 16-bit integers for speed: they must agree with
    the float computation up to the 16-bit rounding."""
    y = _noisy(_gray(), 10)[:, :, 0]
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    _, bright, dark = detector.tophats(y[:, :, None])
    ref_bright = cv2.morphologyEx(y, cv2.MORPH_TOPHAT, disk, borderType=cv2.BORDER_REPLICATE)
    ref_dark = cv2.morphologyEx(y, cv2.MORPH_BLACKHAT, disk, borderType=cv2.BORDER_REPLICATE)
    assert np.abs(bright - ref_bright).max() < 2e-5 and np.abs(dark - ref_dark).max() < 2e-5
    line = detector._LINES[3]  # 45 degrees: not separable
    opened = detector._open(detector._to_u16(bright), line).astype(np.float32) / 65535
    assert np.abs(opened - detector._open(ref_bright, line)).max() < 2e-5


def test_decision_image_is_the_measured_crop_resized_to_rgb_uint8():
    from pipeline.enhance.detector import center_crop, decision_image

    rng = np.random.default_rng(0)
    big = rng.random((900, 1300, 3)).astype(np.float32)
    big[200:700, 400:900] = 0.0  # the central 512 crop (top 194, left 392) is almost all black
    view = decision_image(big, 64)
    assert view.shape == (3, 64, 64) and view.dtype == np.uint8
    assert view[:, 8:-8, 8:-8].max() == 0 and view.mean() < 40  # the centre, not the whole picture
    crop = center_crop(big, 512)
    assert view.mean() == pytest.approx(crop.mean() * 255, abs=2)  # area-averaged, not sampled
    gray = rng.random((40, 30, 1)).astype(np.float32)
    up = decision_image(gray, 64)
    assert up.shape == (3, 64, 64) and (up[0] == up[1]).all() and (up[1] == up[2]).all()
    assert abs(float(up.mean()) - gray.mean() * 255) < 8

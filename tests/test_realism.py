"""Realism suite statistics on synthetic inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.bench import realism
from pipeline.degrade import weather

GREY = np.full((160, 200, 3), 0.3, np.float32)


def _residual(out: np.ndarray, clean: np.ndarray = GREY) -> np.ndarray:
    return realism._luma(out) - realism._luma(clean)


def _rain(**params) -> np.ndarray:
    base = {"density": 0.003, "length": 30.0, "angle_deg": 10.0, "blur": 0.5, "brightness": 0.5}
    return weather.rain_streaks(GREY, seed=3, **{**base, **params})


@pytest.mark.parametrize("angle", [-25.0, 0.0, 10.0, 30.0])
def test_orientation_of_synthetic_streaks(angle):
    lean, coherence = realism.orientation(_residual(_rain(angle_deg=angle)))
    assert abs(lean - angle) <= 3.0 and coherence > 0.7


def test_coverage_is_monotone_in_density():
    cover = [realism.coverage(_residual(_rain(density=d))) for d in (0.0005, 0.001, 0.002, 0.004, 0.008)]
    assert all(a < b for a, b in zip(cover, cover[1:])) and cover[0] > 0


def test_streak_length_and_width_follow_the_parameters():
    short, _ = realism.acf_shape(_residual(_rain(length=15.0)), 10.0)
    long, thin = realism.acf_shape(_residual(_rain(length=45.0)), 10.0)
    _, wide = realism.acf_shape(_residual(_rain(length=45.0, width=3)), 10.0)
    assert short < long and thin < wide
    assert 0.5 * 45 < long < 1.5 * 45


def test_orientation_spread_small_for_one_direction_large_for_many():
    lean, weight = realism.orientation_field(_residual(_rain()))
    assert realism.orientation_spread(lean, weight) < 8.0
    rng = np.random.default_rng(0)
    assert realism.orientation_spread(rng.uniform(-90, 90, 5000), np.ones(5000)) > 30.0


def test_white_rain_has_no_chroma_on_a_coloured_scene():
    scene = np.broadcast_to(np.array([0.6, 0.3, 0.1], np.float32), GREY.shape).copy()
    rainy = weather.rain_streaks(scene, seed=0, density=0.003, brightness=0.3)
    assert realism.residual_chroma(rainy, scene) < 0.05


def test_rain_stats_on_identical_images_are_empty_not_errors():
    stats, values, hist = realism.rain_stats(GREY, GREY)
    assert stats["coverage"] == 0 and values.size == 0 and hist.sum() == 0


def test_haze_fit_recovers_airlight_and_transmission():
    yy, xx = np.mgrid[0:96, 0:128]
    clean = np.stack([0.2 + 0.6 * (xx % 17) / 17, 0.1 + 0.5 * (yy % 13) / 13, 0.3 + 0.4 * ((xx + yy) % 7) / 7], axis=2).astype(np.float32)
    hazy = weather.haze(clean, seed=0, beta=1.2, airlight=(0.8, 0.8, 0.8), depth=np.full((96, 128), 0.5, np.float32))
    stats = realism.haze_stats(hazy, clean)
    assert stats["airlight_fit"] == pytest.approx(0.8, abs=0.02)
    assert stats["t_global"] == pytest.approx(np.exp(-0.6), abs=0.02)
    assert stats["t_p50"] == pytest.approx(np.exp(-0.6), abs=0.05)


def test_snow_blobs_grow_with_density_and_veil_lifts_black_level():
    dark = np.full((160, 200, 3), 0.15, np.float32)
    few, many = (realism.snow_stats(weather.snow(dark, seed=1, density=d, veil=0.0)) for d in (0.001, 0.006))
    assert few["blobs_per_mp"] < many["blobs_per_mp"]
    veiled = realism.snow_stats(weather.snow(dark, seed=1, density=0.001, veil=0.3))
    assert veiled["luma_p1"] > few["luma_p1"] + 0.1


def test_logistic_regression_and_auc():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(2.5, 1, (100, 2))])
    y = np.repeat([0, 1], 100)
    score = realism.fit_logistic(x, y)(x)
    assert np.mean((score > 0.5) == y) > 0.9 and realism.auc(score, y) > 0.95
    assert realism.auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0


def test_rain_features_tell_streaks_from_a_plain_scene():
    yy, xx = np.mgrid[0:160, 0:200]
    scene = np.repeat((0.4 + 0.2 * np.sin(xx / 9.0) * np.cos(yy / 11.0))[:, :, None], 3, axis=2).astype(np.float32)
    rainy = weather.rain_streaks(scene, seed=0, density=0.003, length=40.0, angle_deg=5.0, brightness=0.5)
    clean_f, rain_f = realism.rain_features(scene), realism.rain_features(rainy)
    assert rain_f[1] > clean_f[1] and rain_f[5] > clean_f[5]  # more top-hat, a near-vertical peak


def test_summarize_renders_every_part():
    rows = [realism._row("rain", group, "1", "coverage", v) for group, v in (("real", 0.15), ("synthetic", 0.16))]
    rows += [realism._row("rain", "distance", "*", "ks_intensity", 0.06), realism._row("rain", "detector", "*", "rain100L_accuracy", 0.8)]
    rows += [realism._row("haze", "real", "27", "t_global", 0.4), realism._row("haze", "synthetic:haze", "27#0", "t_global", 0.38)]
    rows += [realism._row("snow", group, "a", "luma_p1", 0.1) for group in ("real", "synthetic", "clean")]
    text = realism.summarize(pa.Table.from_pylist(rows))
    assert "| coverage | 0.15 | 0.16 |" in text and "ks_intensity 0.06" in text and "rain100L_accuracy 0.8" in text
    assert "| t_global | 0.4 | 0.38 |" in text and "| luma_p1 | 0.1 | 0.1 | 0.1 |" in text


def test_run_without_data_raises_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        realism.run({}, 0)

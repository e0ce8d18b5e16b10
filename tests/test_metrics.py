"""Full-reference metrics against values known without scikit-image."""

import numpy as np
import pytest

from pipeline.metrics.fullref import psnr, ssim


def test_psnr_of_a_constant_offset_is_known():
    """An offset of 10/255 everywhere: MSE = (10/255)^2, PSNR = 20 log10(255/10) = 28.1308 dB."""
    clean = np.random.default_rng(0).uniform(0.1, 0.8, (64, 64, 1)).astype(np.float64)
    assert psnr(clean, clean + 10 / 255) == pytest.approx(20 * np.log10(255 / 10), abs=1e-9)
    assert psnr(clean, clean + 10 / 255) == pytest.approx(28.1308, abs=1e-4)


@pytest.mark.parametrize("a, b", [(0.5, 0.6), (0.2, 0.9), (0.05, 0.04)])
def test_ssim_of_two_constant_images_is_the_luminance_term(a, b):
    """Flat images have no variance, so SSIM reduces to Wang et al.'s luminance term
    (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 L)^2 with L = 1, in every window."""
    expected = (2 * a * b + 0.01**2) / (a**2 + b**2 + 0.01**2)
    value = ssim(np.full((32, 32, 1), a), np.full((32, 32, 1), b))
    assert value == pytest.approx(expected, rel=1e-9)
    assert value < 1.0


def test_ssim_of_a_contrast_flip_is_negative():
    """y = 1 - x on a zero-mean-symmetric image: structure term -1 where the windows vary."""
    x = np.indices((48, 48)).sum(axis=0) % 2 * 0.5 + 0.25  # checkerboard of 0.25/0.75: mean 0.5
    assert ssim(x, 1.0 - x) < -0.9

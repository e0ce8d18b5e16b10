"""Full-reference measures (PSNR, SSIM) from scikit-image, on float images in [0, 1].

Used by the enhance job when a reference archive is given and by the benchmarks. Shapes
must match; an output of another size (super-resolution against a mismatched reference)
is a caller error and raises.
"""

from __future__ import annotations

import numpy as np

# skimage.metrics is imported where it is used: it pulls in scipy.stats (~0.5 s of CPU), which
# every enhance-job worker would pay at start-up although most runs have no reference.


def _check(reference: np.ndarray, image: np.ndarray) -> None:
    if reference.shape != image.shape:
        raise ValueError(f"reference shape {reference.shape} != image shape {image.shape}")


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR in dB with data range 1; identical images give +inf."""
    _check(reference, image)
    if np.array_equal(reference, image):
        return float("inf")
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(reference, image, data_range=1.0))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004 Gaussian window settings), channels averaged."""
    _check(reference, image)
    if reference.ndim == 3 and reference.shape[2] == 1:
        reference, image = reference[:, :, 0], image[:, :, 0]
    channel_axis = 2 if reference.ndim == 3 else None
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            reference,
            image,
            data_range=1.0,
            channel_axis=channel_axis,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )

"""Degradation library: seeded, labelled damage to clean images.

Used to make training data, benchmark pairs, the bundled sample and to measure the
heuristic degradation detector. Every kind is a plain function
``fn(image, *, seed, **params) -> image`` (damage kinds return ``(image, mask)``), found by
name in `DEGRADE`; `LABEL_OF` says which label of pipeline.labels.DEGRADATIONS it produces.
Recipes (random compositions with parameter ranges) live in `pipeline.degrade.recipe`.
"""

from __future__ import annotations

from pipeline.degrade import capture, damage, noise, weather

DEGRADE = {
    "gaussian_noise": noise.gaussian_noise,
    "poisson_noise": noise.poisson_noise,
    "speckle_noise": noise.speckle_noise,
    "salt_pepper": noise.salt_pepper,
    "periodic_noise": noise.periodic_noise,
    "banding": noise.banding,
    "rain_streaks": weather.rain_streaks,
    "raindrops": weather.raindrops,
    "snow": weather.snow,
    "haze": weather.haze,
    "dust": weather.dust,
    "low_light": capture.low_light,
    "jpeg": capture.jpeg,
    "downscale": capture.downscale,
    "upscale_back": capture.upscale_back,
    "motion_blur": capture.motion_blur,
    "defocus_blur": capture.defocus_blur,
    "holes": damage.holes,
    "scratches": damage.scratches,
}

# Kinds whose function returns (image, mask) rather than an image.
RETURNS_MASK = frozenset({"holes", "scratches"})

# Kinds that ignore their seed (the same input always gives the same output).
DETERMINISTIC = frozenset({"jpeg", "downscale", "upscale_back", "motion_blur", "defocus_blur"})

LABEL_OF = {
    "gaussian_noise": "noise",
    "poisson_noise": "noise",
    "speckle_noise": "noise",
    "salt_pepper": "salt_pepper",
    "periodic_noise": "periodic",
    # Stripes put their energy on one axis of the spectrum and are removed by the same
    # Fourier notch/destriping route as sinusoidal interference, not by a denoiser.
    "banding": "periodic",
    "rain_streaks": "rain",
    "raindrops": "raindrops",
    "snow": "snow",
    "haze": "haze",
    # Same scattering model with a brown airlight; dehazing is the fix.
    "dust": "haze",
    "low_light": "low_light",
    "jpeg": "jpeg",
    "downscale": "low_resolution",
    "upscale_back": "low_resolution",
    # There is no blur label: blur, like upsampled low resolution, is missing high
    # frequencies, and the same-size super-resolution/deblur route restores them.
    "motion_blur": "low_resolution",
    "defocus_blur": "low_resolution",
    "holes": "damage",
    "scratches": "damage",
}

"""The label sets every stage agrees on: domains and degradations.

Defined once here so the detector, the learned classifier, the routes, the degradation
library and the benchmarks cannot drift apart.
"""

DOMAINS = ("traffic", "satellite", "medical", "other")
# What `domain` says when no classifier that knows domains has run (never a guess).
UNKNOWN_DOMAIN = "unknown"

DEGRADATIONS = (
    "clean",
    "noise",  # additive Gaussian, Poisson/shot and speckle noise: one denoiser family
    "salt_pepper",
    "periodic",
    "rain",
    "raindrops",
    "snow",
    "haze",
    "low_light",
    "jpeg",
    "low_resolution",
    "damage",
)

# The route that enhances nothing: the original bytes are copied to the output.
PASSTHROUGH = "passthrough"

"""The model zoo: compact PyTorch architectures (no torchvision) and their name -> spec table.

`MODELS` is the one place a model name resolves to an architecture: `build("ffdnet",
features=32)` constructs it with explicit keyword overrides, and fails loudly with the known
names otherwise. Weights are saved/loaded by `pipeline.models.weights` (state_dict + JSON
sidecar naming the spec and its builder kwargs); inference cost by `pipeline.models.cost`.

All models take NCHW float tensors in [0, 1]. Noise levels (`needs_sigma`) are on the
[0, 1] scale, i.e. sigma_255 / 255; masks (`needs_mask`) are (N, 1, H, W) with 1 at holes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from pipeline.labels import DEGRADATIONS
from pipeline.models.autoencoder import ConvAutoencoder, DenseAutoencoder
from pipeline.models.classifier import (MultiTaskClassifier, SingleTaskClassifier, StatsClassifier,
                                         StatsImageClassifier)
from pipeline.models.dehaze import ScatteringDehazer, TransmissionDehazer
from pipeline.models.denoise import NLRN, DnCNN, FFDNet, OpponentFFDNet
from pipeline.models.inpaint import InpaintNet
from pipeline.models.lowlight import LowLightCNN, MIRNetLite
from pipeline.models.sr import SRDiscriminator, SRResNet
from pipeline.models.weather import AttentiveDiscriminator, AttentiveGAN

KINDS = ("denoise", "restore", "sr", "gan", "classifier", "autoencoder", "inpaint")


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the zoo."""

    name: str
    # Called with the user's keyword overrides; a functools.partial carries the entry's defaults.
    builder: Callable[..., nn.Module]
    # Degradation labels (pipeline.labels.DEGRADATIONS) the model is meant to remove.
    consumes: tuple[str, ...]
    # Output size / input size (build(..., scale=2) of an SR model changes it: use the model's).
    scale: int
    # "gan" marks adversarial-training-only parts (discriminators); generators that serve
    # as enhancers carry the kind of enhancement they do.
    kind: str
    # forward(x, sigma) takes a noise level (N,) on the [0, 1] scale (None = estimate).
    needs_sigma: bool = False
    # forward(x, mask) takes a (N, 1, H, W) hole mask.
    needs_mask: bool = False
    # Input channels at the default settings (what example inputs and cost reports use).
    channels: int = 3
    # Its estimate needs the whole picture (haze's depth runs over the scene): never tiled.
    whole_picture: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        unknown = set(self.consumes) - set(DEGRADATIONS)
        if unknown:
            raise ValueError(f"{self.name}: unknown degradations {sorted(unknown)}")
        if self.scale < 1:
            raise ValueError(f"{self.name}: scale must be >= 1, got {self.scale}")


_NOISE = ("noise",)

MODELS: dict[str, ModelSpec] = {
    "dncnn": ModelSpec("dncnn", partial(DnCNN, channels=1), _NOISE, 1, "denoise", channels=1),
    "ffdnet": ModelSpec("ffdnet", partial(FFDNet, channels=1), _NOISE, 1, "denoise",
                        needs_sigma=True, channels=1),
    # 96 features for colour, as in the FFDNet paper.
    "ffdnet_color": ModelSpec("ffdnet_color", partial(FFDNet, channels=3, features=96), _NOISE, 1,
                              "denoise", needs_sigma=True),
    # The gray trunk on opponent colour channels: loads gray FFDNet weights as they are.
    "ffdnet_opponent": ModelSpec("ffdnet_opponent", OpponentFFDNet, _NOISE, 1, "denoise", needs_sigma=True),
    "nlrn": ModelSpec("nlrn", partial(NLRN, channels=1), _NOISE, 1, "denoise", channels=1),
    "dense_ae": ModelSpec("dense_ae", DenseAutoencoder, _NOISE, 1, "autoencoder", channels=1),
    "conv_ae": ModelSpec("conv_ae", partial(ConvAutoencoder, channels=1), _NOISE, 1, "autoencoder",
                         channels=1),
    "srresnet": ModelSpec("srresnet", partial(SRResNet, scale=4), ("low_resolution",), 4, "sr"),
    "srgan_d": ModelSpec("srgan_d", SRDiscriminator, (), 1, "gan"),
    "attentive_gan": ModelSpec("attentive_gan", AttentiveGAN, ("raindrops", "rain"), 1, "restore"),
    "attentive_d": ModelSpec("attentive_d", AttentiveDiscriminator, (), 1, "gan"),
    "lowlight_cnn": ModelSpec("lowlight_cnn", LowLightCNN, ("low_light",), 1, "restore"),
    "mirnet_lite": ModelSpec("mirnet_lite", MIRNetLite, ("low_light",), 1, "restore"),
    "dehaze_net": ModelSpec("dehaze_net", ScatteringDehazer, ("haze",), 1, "restore"),
    "transmission_dehazer": ModelSpec("transmission_dehazer", TransmissionDehazer, ("haze",), 1, "restore",
                                      whole_picture=True),
    "inpaint": ModelSpec("inpaint", InpaintNet, ("damage",), 1, "inpaint", needs_mask=True),
    "resnet_multitask": ModelSpec("resnet_multitask", MultiTaskClassifier, (), 1, "classifier"),
    "resnet_single": ModelSpec("resnet_single", SingleTaskClassifier, (), 1, "classifier"),
    # Takes the statistics detector's features (N, len(detector.FEATURES)), not pixels.
    "stats_mlp": ModelSpec("stats_mlp", StatsClassifier, (), 1, "classifier"),
    # The same statistics and the picture (detector.decision_image): (stats, image) -> logits.
    "stats_cnn": ModelSpec("stats_cnn", StatsImageClassifier, (), 1, "classifier"),
}


def spec(name: str) -> ModelSpec:
    """The spec for `name`, or a KeyError listing the known names."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name]


def build(name: str, **kwargs: object) -> nn.Module:
    """Construct model `name` with keyword overrides of its builder's defaults."""
    return spec(name).builder(**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_inputs(x: torch.Tensor, *, needs_sigma: bool = False, needs_mask: bool = False,
                 sigma_255: float = 25.0) -> tuple[torch.Tensor, ...]:
    """Positional inputs around image batch `x`: (x,), (x, sigma) or (x, mask).

    For tests and cost reports: sigma is `sigma_255` / 255, the mask a centred rectangle
    covering a quarter of the image.
    """
    n, _, h, w = x.shape
    if needs_sigma:
        return x, torch.full((n,), sigma_255 / 255)
    if needs_mask:
        mask = torch.zeros(n, 1, h, w)
        mask[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
        return x, mask
    return (x,)


def example_inputs(name: str, batch: int = 1, height: int = 32, width: int = 32,
                   channels: int | None = None, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded random inputs for model `name` (see `model_inputs`)."""
    s = spec(name)
    x = torch.rand(batch, channels or s.channels, height, width, generator=torch.Generator().manual_seed(seed))
    return model_inputs(x, needs_sigma=s.needs_sigma, needs_mask=s.needs_mask)


__all__ = ["KINDS", "MODELS", "ModelSpec", "build", "count_parameters", "example_inputs", "model_inputs", "spec"]

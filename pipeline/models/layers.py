"""Building blocks shared by the model zoo: conv helpers, padding, residual blocks, a
ConvLSTM cell, channel/spatial attention and selective-kernel fusion.

Kept here so each architecture module reads as its own diagram, and so the same block
(e.g. `pad_to_multiple` for odd image sizes) behaves the same in every model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv(in_features: int, out_features: int, kernel: int = 3, stride: int = 1,
         dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 'same'-padded Conv2d (output size = ceil(input / stride))."""
    padding = dilation * (kernel - 1) // 2
    return nn.Conv2d(in_features, out_features, kernel, stride=stride, padding=padding,
                     dilation=dilation, bias=bias)


def activation(name: str) -> nn.Module:
    """The activations used in the zoo, by name (fails loudly on an unknown one)."""
    table = {"relu": nn.ReLU, "prelu": nn.PReLU, "lrelu": lambda: nn.LeakyReLU(0.2),
             "elu": nn.ELU, "none": nn.Identity}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(table)}")
    return table[name]()


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W (bottom/right) up to a multiple, returning the original size for `crop_to`.

    Reflect padding avoids the dark border zero padding would add; it needs the pad to be
    smaller than the side, so tiny inputs fall back to replicate padding.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo `pad_to_multiple` (top-left crop to `size`)."""
    return x[..., : size[0], : size[1]]


def unshuffle(x: torch.Tensor, factor: int = 2) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pixel-unshuffle after padding odd sizes; returns the original size for `shuffle`."""
    x, size = pad_to_multiple(x, factor)
    return F.pixel_unshuffle(x, factor), size


def shuffle(x: torch.Tensor, size: tuple[int, int], factor: int = 2) -> torch.Tensor:
    """Pixel-shuffle back and crop to the size `unshuffle` recorded."""
    return crop_to(F.pixel_shuffle(x, factor), size)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Depthwise Gaussian blur (radius 3 sigma, replicate borders); identity for sigma <= 0."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class ResidualBlock(nn.Module):
    """conv-[BN]-act-conv-[BN] plus identity (EDSR/SRResNet style; `res_scale` < 1 keeps
    deep stacks without BN stable)."""

    def __init__(self, features: int, batch_norm: bool = False, act: str = "relu",
                 res_scale: float = 1.0, dilation: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv(features, features, dilation=dilation, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(features))
        layers += [activation(act), conv(features, features, dilation=dilation, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(features))
        self.body = nn.Sequential(*layers)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015): the four gates from one conv over [x, h]."""

    def __init__(self, in_features: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = conv(in_features + hidden, 4 * hidden, kernel)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; `state` is (h, c) from the previous step or None (zeros). Returns (h, c)."""
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, x.shape[2], x.shape[3])
            state = (zeros, zeros)
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average pool -> bottleneck -> per-channel gate."""

    def __init__(self, features: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(features // reduction, 4)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(features, hidden, 1),
                                  nn.ReLU(), nn.Conv2d(hidden, features, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SpatialAttention(nn.Module):
    """CBAM-style spatial gate from the channel-wise mean and max."""

    def __init__(self, kernel: int = 5) -> None:
        super().__init__()
        self.conv = conv(2, 1, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class DualAttention(nn.Module):
    """MIRNet's dual attention unit: conv-PReLU-conv, then channel and spatial attention
    in parallel, fused by a 1x1 conv, plus identity."""

    def __init__(self, features: int, reduction: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(conv(features, features), nn.PReLU(), conv(features, features))
        self.channel = ChannelAttention(features, reduction)
        self.spatial = SpatialAttention()
        self.fuse = nn.Conv2d(2 * features, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + self.fuse(torch.cat([self.channel(y), self.spatial(y)], dim=1))


class SKFF(nn.Module):
    """Selective kernel feature fusion (MIRNet): sum the branches, squeeze to a descriptor,
    and softmax-select per channel how much each branch contributes."""

    def __init__(self, features: int, branches: int = 3, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(features // reduction, 4)
        self.squeeze = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(features, hidden, 1), nn.PReLU())
        self.select = nn.ModuleList(nn.Conv2d(hidden, features, 1) for _ in range(branches))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != len(self.select):
            raise ValueError(f"SKFF: expected {len(self.select)} branches, got {len(inputs)}")
        stacked = torch.stack(inputs, dim=1)  # N, B, C, H, W
        z = self.squeeze(stacked.sum(dim=1))
        weights = torch.stack([s(z) for s in self.select], dim=1).softmax(dim=1)
        return (stacked * weights).sum(dim=1)

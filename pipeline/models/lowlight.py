"""Low-light enhancement (seed 003): a compact curve-estimation CNN and a small MIRNet.

`LowLightCNN` predicts per-pixel curve parameters (Zero-DCE style) rather than pixels, so
its output stays in [0, 1] and keeps the input's structure by construction. `MIRNetLite`
keeps MIRNet's ideas (parallel multi-resolution streams, selective kernel fusion, dual
attention) at a size that trains on CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import SKFF, DualAttention, conv, crop_to, pad_to_multiple


class LowLightCNN(nn.Module):
    """Zero-DCE-style curve estimator: `depth` 3x3 convs (first half an encoder, second half
    concatenating the mirrored encoder features), tanh -> `iterations` curve maps per channel,
    applied as x <- x + a * x * (1 - x). Full resolution, so any H, W works."""

    def __init__(self, channels: int = 3, features: int = 32, depth: int = 8, iterations: int = 8) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"LowLightCNN: depth must be >= 3, got {depth}")
        self.channels = channels
        self.iterations = iterations
        half = depth // 2
        self.encoder = nn.ModuleList(conv(channels if i == 0 else features, features) for i in range(half))
        # Decoder layer i also sees encoder layer (half - 2 - i) when there is one (U-shaped skips).
        self.skips = [half - 2 - i for i in range(depth - half)]
        self.decoder = nn.ModuleList()
        for i, skip in enumerate(self.skips):
            in_features = features * (2 if skip >= 0 else 1)
            last = i == depth - half - 1
            self.decoder.append(conv(in_features, channels * iterations if last else features))

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """The curve parameters (N, channels * iterations, H, W) in [-1, 1]."""
        encoded = []
        h = x
        for layer in self.encoder:
            h = F.relu(layer(h))
            encoded.append(h)
        for i, (layer, skip) in enumerate(zip(self.decoder, self.skips)):
            h = layer(torch.cat([h, encoded[skip]], dim=1) if skip >= 0 else h)
            h = torch.tanh(h) if i == len(self.decoder) - 1 else F.relu(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for a in self.curves(x).split(self.channels, dim=1):
            x = x + a * x * (1 - x)
        return x


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool down or bilinear up to `size` (streams only differ by powers of two)."""
    if x.shape[-1] > size[1]:
        return F.adaptive_avg_pool2d(x, size)
    if x.shape[-1] < size[1]:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


class MultiScaleBlock(nn.Module):
    """MIRNet's multi-scale residual block, lite: streams at 1, 1/2, 1/4 resolution with a dual
    attention unit each, an SKFF information exchange at every scale, a second dual attention
    unit, SKFF back to full resolution, 1x1 conv, plus identity. All streams share one width
    (MIRNet widens the coarse ones); resampling is parameter-free."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.first = nn.ModuleList(DualAttention(features) for _ in range(3))
        self.exchange = nn.ModuleList(SKFF(features, 3) for _ in range(3))
        self.second = nn.ModuleList(DualAttention(features) for _ in range(3))
        self.merge = SKFF(features, 3)
        self.out = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        streams = [x, F.avg_pool2d(x, 2), F.avg_pool2d(x, 4)]
        streams = [dau(s) for dau, s in zip(self.first, streams)]
        sizes = [s.shape[-2:] for s in streams]
        streams = [fuse([_resize(s, size) for s in streams]) for fuse, size in zip(self.exchange, sizes)]
        streams = [dau(s) for dau, s in zip(self.second, streams)]
        merged = self.merge([_resize(s, sizes[0]) for s in streams])
        return x + self.out(merged)


class MIRNetLite(nn.Module):
    """Head conv -> `blocks` multi-scale blocks -> tail conv, added to the input (the net
    predicts the brightening/denoising correction). Pads to a multiple of 4 for the 1/4 stream."""

    def __init__(self, channels: int = 3, features: int = 32, blocks: int = 2) -> None:
        super().__init__()
        self.head = conv(channels, features)
        self.body = nn.Sequential(*(MultiScaleBlock(features) for _ in range(blocks)))
        self.tail = conv(features, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x, 4)
        return x + crop_to(self.tail(self.body(self.head(padded))), size)

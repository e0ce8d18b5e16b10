"""Inpainting: a U-Net of gated convolutions (Yu et al. 2019, DeepFill v2) taking (image, mask).

Gated convolutions learn a soft per-pixel validity gate, which handles free-form holes better
than plain convs (which treat hole pixels as data) with no hand-written mask update rule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import conv, crop_to, pad_to_multiple


class GatedConv2d(nn.Module):
    """ELU(features) * sigmoid(gate), both from one conv with twice the outputs."""

    def __init__(self, in_features: int, out_features: int, kernel: int = 3, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = conv(in_features, 2 * out_features, kernel, stride, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


class InpaintNet(nn.Module):
    """Gated-conv U-Net: encoder to 1/4 resolution, dilated gated convs (d = 2, 4, 8),
    nearest-upsampling decoder with concatenated skips, sigmoid output.

    `mask` is (N, 1, H, W) with 1 at the holes. The holes are zeroed in the input (their
    content is unknown) and only they are replaced in the output:
    out = mask * pred + (1 - mask) * image. Any H, W (padded to a multiple of 4).
    """

    def __init__(self, channels: int = 3, features: int = 32) -> None:
        super().__init__()
        f = features
        self.enc1 = GatedConv2d(channels + 1, f, 5)
        self.enc2 = nn.Sequential(GatedConv2d(f, 2 * f, stride=2), GatedConv2d(2 * f, 2 * f))
        self.enc3 = nn.Sequential(GatedConv2d(2 * f, 4 * f, stride=2), GatedConv2d(4 * f, 4 * f))
        self.context = nn.Sequential(*(GatedConv2d(4 * f, 4 * f, dilation=d) for d in (2, 4, 8)))
        self.dec2 = nn.Sequential(GatedConv2d(6 * f, 2 * f), GatedConv2d(2 * f, 2 * f))
        self.dec1 = nn.Sequential(GatedConv2d(3 * f, f), GatedConv2d(f, f))
        self.out = conv(f, channels)

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The raw prediction for every pixel (before keeping the known ones)."""
        x, size = pad_to_multiple(torch.cat([image * (1 - mask), mask], dim=1), 4)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        c = self.context(self.enc3(e2))
        d2 = self.dec2(torch.cat([F.interpolate(c, scale_factor=2.0, mode="nearest"), e2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], dim=1))
        return crop_to(torch.sigmoid(self.out(d1)), size)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0] \
                or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"InpaintNet: mask must be (N, 1, H, W) matching {tuple(image.shape)}, "
                             f"got {tuple(mask.shape)}")
        mask = mask.to(image.dtype)
        return mask * self.predict(image, mask) + (1 - mask) * image

"""Haze removal through the atmospheric scattering model I = J * t + A * (1 - t).

`ScatteringDehazer` does not paint the clear picture. A small U-Net estimates one map K per pixel
and channel, and the output is J = K * (I - 1) + 1: AOD-Net's rewriting of the scattering model
(Li et al. 2017), where K folds the transmission t and the airlight A into one unknown. The
physics does the restoring, so a few thousand crops train it on CPU.

Estimating t and A apart (sigmoid heads) and dividing by t was tried first. After 6 epochs
both sigmoids were saturated, t = 1.000 everywhere and A = 1.0 on a hazed test picture, so the
model returned its input (+0.00 dB on the weather-synthetic haze case) and the training loss
stayed at 0.21-0.22 from epoch 1: no gradient left. The likely cause is the division, whose
gradients are largest where t is small, early in training. K has no division. K starts at 1
(the head's weights are zero), so the untrained model is the identity and training moves it
from there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import conv, crop_to, pad_to_multiple


def _block(in_features: int, out_features: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(conv(in_features, out_features, stride=stride), nn.ReLU(),
                         conv(out_features, out_features), nn.ReLU())


class ScatteringDehazer(nn.Module):
    """U-Net (full, 1/2, 1/4 resolution) -> K (N, C, H, W) -> J = K * (I - 1) + 1.

    Haze thickens with distance, and distance follows where a pixel sits in the picture (farther
    toward the top outdoors), so the net also sees each row's position (0 at the top, 1 at the
    bottom). A global pooled summary of the deepest features joins the bottleneck, because haze
    density and airlight belong to the whole scene.
    """

    def __init__(self, channels: int = 3, features: int = 16) -> None:
        super().__init__()
        f = features
        self.enc1 = _block(channels + 1, f)
        self.enc2 = _block(f, 2 * f, stride=2)
        self.enc3 = _block(2 * f, 4 * f, stride=2)
        self.context = nn.Sequential(nn.Linear(4 * f, 4 * f), nn.ReLU())
        self.dec2 = _block(4 * f + 2 * f, 2 * f)
        self.dec1 = _block(2 * f + f, f)
        self.head = conv(f, channels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def k_map(self, x: torch.Tensor) -> torch.Tensor:
        """K (N, C, H, W) for hazy `x`: 1 leaves a pixel as it is, larger values lift the veil."""
        padded, size = pad_to_multiple(x, 4)
        n, _, h, w = padded.shape
        rows = torch.linspace(0.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
        e1 = self.enc1(torch.cat([padded, rows], dim=1))
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e3 = e3 + self.context(e3.mean(dim=(2, 3)))[:, :, None, None]
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[2:], mode="bilinear", align_corners=False), e1], 1))
        return 1 + crop_to(self.head(d1), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k_map(x) * (x - 1) + 1

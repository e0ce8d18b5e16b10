"""Super-resolution (SRGAN seed): the SRResNet generator and the SRGAN discriminator.

SRResNet is trained alone with a pixel loss first, then as SRGAN's generator against
`SRDiscriminator` (adversarial + perceptual losses live with the trainer, not here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import ResidualBlock, conv

SCALES = (2, 4)


class SRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017): 9x9 head, residual blocks (PReLU, optional BN), a global
    skip, one conv + pixel-shuffle x2 + PReLU stage per factor of two, 9x9 tail.

    With `image_skip` the network adds a bicubic upsampling of the input, so it only learns
    the missing detail: much faster to train on CPU than predicting the whole image.
    """

    def __init__(self, channels: int = 3, features: int = 64, blocks: int = 16, scale: int = 4,
                 batch_norm: bool = True, image_skip: bool = True) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"SRResNet: scale must be one of {SCALES}, got {scale}")
        self.scale = scale
        self.image_skip = image_skip
        self.head = nn.Sequential(conv(channels, features, 9), nn.PReLU())
        trunk: list[nn.Module] = [ResidualBlock(features, batch_norm, act="prelu") for _ in range(blocks)]
        trunk.append(conv(features, features, bias=not batch_norm))
        if batch_norm:
            trunk.append(nn.BatchNorm2d(features))
        self.trunk = nn.Sequential(*trunk)
        up: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):
            up += [conv(features, 4 * features), nn.PixelShuffle(2), nn.PReLU()]
        self.upsample = nn.Sequential(*up)
        self.tail = conv(features, channels, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        out = self.tail(self.upsample(h + self.trunk(h)))
        if self.image_skip:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


def _disc_block(in_features: int, out_features: int, stride: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [conv(in_features, out_features, stride=stride, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_features))
    return layers + [nn.LeakyReLU(0.2)]


class SRDiscriminator(nn.Module):
    """SRGAN discriminator: 8 conv blocks (features x1, x2, x4, x8, every other one stride 2),
    LeakyReLU, then global average pooling and a 2-layer head -> one logit (N, 1).

    Global pooling instead of the paper's fixed-size dense layer accepts any input size
    (>= 32 keeps at least 2x2 positions after the four stride-2 blocks).
    """

    def __init__(self, channels: int = 3, features: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        widths = [features * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        layers: list[nn.Module] = [conv(channels, widths[0]), nn.LeakyReLU(0.2)]
        for i in range(1, len(widths)):
            layers += _disc_block(widths[i - 1], widths[i], stride=2 if i % 2 else 1, batch_norm=batch_norm)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(widths[-1], 2 * widths[-1]), nn.LeakyReLU(0.2),
                                  nn.Linear(2 * widths[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

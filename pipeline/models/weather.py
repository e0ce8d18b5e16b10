"""Weather removal (Attentive GAN seeds, Qian et al. 2018): a recurrent attention network
finds the raindrop/rain regions, a contextual autoencoder restores the image guided by the
final attention map, and an attentive discriminator judges real/fake and where.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import ConvLSTMCell, ResidualBlock, conv, gaussian_blur, pad_to_multiple


class AttentiveRecurrentNet(nn.Module):
    """Unrolled `steps` times: [image, previous map] -> conv -> residual blocks -> ConvLSTM ->
    conv -> sigmoid map. Returns the list of attention maps (N, 1, H, W) in [0, 1], one per
    step; the paper's loss weights later steps more. The first map is 0.5 everywhere."""

    def __init__(self, channels: int = 3, features: int = 32, steps: int = 4, blocks: int = 3) -> None:
        super().__init__()
        self.steps = steps
        self.head = nn.Sequential(conv(channels + 1, features), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(features) for _ in range(blocks)))
        self.lstm = ConvLSTMCell(features, features)
        self.to_map = conv(features, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        attention = x.new_full((x.shape[0], 1, x.shape[2], x.shape[3]), 0.5)
        state = None
        maps = []
        for _ in range(self.steps):
            h = self.blocks(self.head(torch.cat([x, attention], dim=1)))
            state = self.lstm(h, state)
            attention = torch.sigmoid(self.to_map(state[0]))
            maps.append(attention)
        return maps


def _relu_conv(in_features: int, out_features: int, kernel: int = 3, stride: int = 1,
               dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(conv(in_features, out_features, kernel, stride, dilation), nn.ReLU())


def _up(in_features: int, out_features: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_features, out_features, 4, stride=2, padding=1), nn.ReLU())


class ContextualAutoencoder(nn.Module):
    """Encoder (1, 1/2, 1/4 resolution) -> dilated context convs (d = 2, 4, 8, 16) -> decoder
    with additive skips, taking [image, attention map].

    Returns three outputs [1/4, 1/2, full resolution] for the multi-scale loss; each is the
    (downsampled) input plus a predicted correction, so an untrained net starts near the
    identity. Any H, W (padded to a multiple of 4; outputs cropped to ceil(H / s)).
    """

    def __init__(self, channels: int = 3, features: int = 64) -> None:
        super().__init__()
        f = features
        self.enc1 = _relu_conv(channels + 1, f, 5)
        self.enc2 = nn.Sequential(_relu_conv(f, 2 * f, stride=2), _relu_conv(2 * f, 2 * f))
        self.enc3 = nn.Sequential(_relu_conv(2 * f, 4 * f, stride=2), _relu_conv(4 * f, 4 * f))
        self.context = nn.Sequential(*(_relu_conv(4 * f, 4 * f, dilation=d) for d in (2, 4, 8, 16)),
                                     _relu_conv(4 * f, 4 * f))
        self.up2 = _up(4 * f, 2 * f)
        self.dec2 = _relu_conv(2 * f, 2 * f)
        self.up1 = _up(2 * f, f)
        self.dec1 = _relu_conv(f, f)
        self.out4 = conv(4 * f, channels)
        self.out2 = conv(2 * f, channels)
        self.out1 = conv(f, channels)

    def forward(self, x: torch.Tensor, attention: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        padded, _ = pad_to_multiple(torch.cat([x, attention], dim=1), 4)
        image = padded[:, : x.shape[1]]
        e1 = self.enc1(padded)
        e2 = self.enc2(e1)
        c = self.context(self.enc3(e2))
        d2 = self.dec2(self.up2(c) + e2)
        d1 = self.dec1(self.up1(d2) + e1)
        outputs = []
        for feats, head, s in ((c, self.out4, 4), (d2, self.out2, 2), (d1, self.out1, 1)):
            base = F.avg_pool2d(image, s) if s > 1 else image
            outputs.append((base + head(feats))[..., : math.ceil(h / s), : math.ceil(w / s)])
        return outputs


class AttentiveGAN(nn.Module):
    """The Attentive GAN generator: attention maps from `AttentiveRecurrentNet`, then the
    `ContextualAutoencoder` on [image, last map].

    `forward` returns (output, attention_maps) in eval mode and, in train mode, all three
    autoencoder scales instead of the output (the multi-scale loss uses every head; a single
    output would leave the coarse heads without gradients, which DDP flags as unused). `post_blur_sigma` > 0 (seed 001)
    smooths the final output with a Gaussian (in pixels) to hide residual artefacts; training
    outputs are not blurred.
    """

    def __init__(self, channels: int = 3, features: int = 32, ae_features: int = 64, steps: int = 4,
                 blocks: int = 3, post_blur_sigma: float = 0.0) -> None:
        super().__init__()
        if post_blur_sigma < 0:
            raise ValueError(f"AttentiveGAN: post_blur_sigma must be >= 0, got {post_blur_sigma}")
        self.attention = AttentiveRecurrentNet(channels, features, steps, blocks)
        self.autoencoder = ContextualAutoencoder(channels, ae_features)
        self.post_blur_sigma = post_blur_sigma

    def forward_multiscale(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """([1/4, 1/2, full] outputs, attention maps)."""
        maps = self.attention(x)
        return self.autoencoder(x, maps[-1]), maps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | list[torch.Tensor], list[torch.Tensor]]:
        """Eval mode: (restored image, attention maps). Train mode: (all three scales, maps),
        the outputs the multi-scale loss needs, from `forward` itself so DDP sees the call."""
        outputs, maps = self.forward_multiscale(x)
        if self.training:
            return outputs, maps
        return gaussian_blur(outputs[-1], self.post_blur_sigma), maps


class AttentiveDiscriminator(nn.Module):
    """Attentive discriminator: conv layers to 1/4 resolution, an internal attention-like map
    (N, 1, ceil(H/4), ceil(W/4)) in [0, 1] that gates the features, more strided convs,
    global pooling -> logit (N, 1). forward returns (logit, map); the trainer pulls the map
    towards the generator's attention for fakes and towards zero for real images.
    """

    def __init__(self, channels: int = 3, features: int = 32) -> None:
        super().__init__()
        f = features
        self.features = nn.Sequential(
            conv(channels, f, 5), nn.LeakyReLU(0.2),
            conv(f, 2 * f, stride=2), nn.LeakyReLU(0.2),
            conv(2 * f, 4 * f, stride=2), nn.LeakyReLU(0.2),
            conv(4 * f, 4 * f), nn.LeakyReLU(0.2),
        )
        self.to_map = conv(4 * f, 1, 5)
        self.judge = nn.Sequential(
            conv(4 * f, 8 * f, stride=2), nn.LeakyReLU(0.2),
            conv(8 * f, 8 * f, stride=2), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * f, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        attention = torch.sigmoid(self.to_map(feats))
        return self.judge(feats * attention), attention

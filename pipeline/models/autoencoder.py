"""Autoencoders (seed 004): a dense one for 28x28 images and a small convolutional one.

Both reconstruct their input in [0, 1]; trained on noisy -> clean pairs they are denoising
autoencoders, the simplest learned baseline in the zoo.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.layers import conv, crop_to, pad_to_multiple


class DenseAutoencoder(nn.Module):
    """Fully connected encoder/decoder over the flattened image (784 = 1 x 28 x 28).

    `hidden` lists the encoder widths down to the code size; the decoder mirrors them.
    Input must have exactly `in_features` values per sample; the output keeps its shape.
    """

    def __init__(self, in_features: int = 784, hidden: tuple[int, ...] = (256, 64)) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("DenseAutoencoder: hidden must list at least one width")
        self.in_features = in_features
        widths = (in_features, *hidden)
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        dec: list[nn.Module] = []
        rev = widths[::-1]
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        dec[-1] = nn.Sigmoid()
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code vector (N, hidden[-1])."""
        if x[0].numel() != self.in_features:
            raise ValueError(f"DenseAutoencoder: expects {self.in_features} values per sample, "
                             f"got shape {tuple(x.shape)}")
        return self.encoder(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x)).view(x.shape)


class ConvAutoencoder(nn.Module):
    """Two stride-2 conv stages down, two transposed-conv stages up, a linear output that is
    clamped to [0, 1] in eval mode.

    Not a sigmoid: on MNIST (mostly black) the first Adam steps push a sigmoid output into
    saturation, where MSE has no gradient left, and the output stays black for good (pre-
    sigmoid values near -100 after 40 steps at lr 1e-3). With the linear output the same
    setup trains: MSE 0.0024 after 800 steps on sigma-25.5 noise (input 0.0054).
    Any H, W: inputs are padded to a multiple of 4 and the output cropped back.
    """

    def __init__(self, channels: int = 1, features: int = 32) -> None:
        super().__init__()
        f = features
        self.encoder = nn.Sequential(
            conv(channels, f, stride=2), nn.ReLU(),
            conv(f, 2 * f, stride=2), nn.ReLU(),
            conv(2 * f, 2 * f), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * f, f, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(f, f, 4, stride=2, padding=1), nn.ReLU(),
            conv(f, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x, 4)
        out = crop_to(self.decoder(self.encoder(padded)), size)
        return out if self.training else out.clamp(0, 1)  # clamping in training would stop gradients

"""Classifiers (seed 000): the ResNet family and the domain + degradation heads on top.

`MultiTaskClassifier` shares one trunk between the domain and the degradation heads (one
forward pass per image in the classify stage); `SingleTaskClassifier` is the one-head
baseline it is compared against. Inputs are NCHW RGB in [0, 1]; a `width` of 16 or 32
instead of ResNet's 64 keeps CPU training practical.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.labels import DEGRADATIONS, DOMAINS


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_features: int, features: int, stride: int = 1) -> None:
        super().__init__()
        out = features * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_features, features, 3, stride, 1, bias=False), nn.BatchNorm2d(features), nn.ReLU(),
            nn.Conv2d(features, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(in_features, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand x4 (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, in_features: int, features: int, stride: int = 1) -> None:
        super().__init__()
        out = features * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_features, features, 1, bias=False), nn.BatchNorm2d(features), nn.ReLU(),
            nn.Conv2d(features, features, 3, stride, 1, bias=False), nn.BatchNorm2d(features), nn.ReLU(),
            nn.Conv2d(features, out, 1, bias=False), nn.BatchNorm2d(out),
        )
        self.shortcut = _shortcut(in_features, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def _shortcut(in_features: int, out_features: int, stride: int) -> nn.Module:
    """Identity, or a strided 1x1 conv + BN projection when the shape changes."""
    if stride == 1 and in_features == out_features:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_features, out_features, 1, stride, bias=False),
                         nn.BatchNorm2d(out_features))


# depth -> (block, blocks per stage), as in He et al. 2016.
DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """ResNet-`depth` with base width `width` (stages width x1, x2, x4, x8).

    With `classes` > 0 it ends in a linear layer (logits); with 0 it returns the pooled
    feature vector of size `out_features`, for use as a shared trunk.
    """

    def __init__(self, depth: int = 18, width: int = 64, in_channels: int = 3, classes: int = 0) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet: depth must be one of {sorted(DEPTHS)}, got {depth}")
        block, counts = DEPTHS[depth]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        in_features = width
        for i, count in enumerate(counts):
            features = width * 2**i
            for j in range(count):
                stages.append(block(in_features, features, stride=2 if i > 0 and j == 0 else 1))
                in_features = features * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = in_features
        self.fc = nn.Linear(in_features, classes) if classes > 0 else nn.Identity()
        _zero_init_last_bn(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features (N, out_features)."""
        return self.pool(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _zero_init_last_bn(model: nn.Module) -> None:
    """Start every residual branch at zero (Goyal et al. 2017): each block begins as the
    identity, which trains faster and more stably, notably with small batches."""
    for m in model.modules():
        if isinstance(m, (BasicBlock, Bottleneck)):
            nn.init.zeros_(m.body[-1].weight)


class MultiTaskClassifier(nn.Module):
    """One ResNet trunk, two linear heads. forward -> {"domain": (N, domains),
    "degradation": (N, degradations)} logits (the trainer picks softmax or sigmoid losses)."""

    def __init__(self, depth: int = 18, width: int = 32, domains: int = len(DOMAINS),
                 degradations: int = len(DEGRADATIONS), in_channels: int = 3) -> None:
        super().__init__()
        self.trunk = ResNet(depth, width, in_channels, classes=0)
        self.domain = nn.Linear(self.trunk.out_features, domains)
        self.degradation = nn.Linear(self.trunk.out_features, degradations)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.trunk(x)
        return {"domain": self.domain(z), "degradation": self.degradation(z)}


class SingleTaskClassifier(nn.Module):
    """The one-head comparison: ResNet trunk + one linear head -> (N, classes) logits."""

    def __init__(self, depth: int = 18, width: int = 32, classes: int = len(DEGRADATIONS),
                 in_channels: int = 3) -> None:
        super().__init__()
        if classes < 1:
            raise ValueError(f"SingleTaskClassifier: classes must be >= 1, got {classes}")
        self.net = ResNet(depth, width, in_channels, classes=classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StatsClassifier(nn.Module):
    """Degradation label from the statistics detector's measurements, a learned decision in
    place of the hand-set rules' (`pipeline.enhance.detector.RULES`).

    Input: (N, len(FEATURES)) in `detector.FEATURES` order: the raw statistics and the rules'
    scores. Each enters twice, as it is and compressed (sign(x) * log1p(10 |x|): noise levels, densities and ratios span
    decades), the streak angle as sin and cos of twice the angle (0 and 180 degrees are one
    direction). A batch norm standardises them (its running statistics are the training
    data's), two hidden layers decide: (N, classes) logits.
    """

    def __init__(self, hidden: int = 64, classes: int = len(DEGRADATIONS), dropout: float = 0.1) -> None:
        super().__init__()
        from pipeline.enhance.detector import FEATURES

        self.stats, self.angle = len(FEATURES), FEATURES.index("streak_angle")
        features = 2 * (self.stats - 1) + 2
        self.norm = nn.BatchNorm1d(features)
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, classes))

    def features(self, stats: torch.Tensor) -> torch.Tensor:
        if stats.ndim != 2 or stats.shape[1] != self.stats:
            raise ValueError(f"StatsClassifier takes (N, {self.stats}) features, got {tuple(stats.shape)}")
        stats = stats.float()
        angle = torch.deg2rad(stats[:, self.angle]) * 2
        rest = torch.cat([stats[:, : self.angle], stats[:, self.angle + 1 :]], dim=1)
        return torch.cat([rest, torch.sign(rest) * torch.log1p(10 * rest.abs()),
                          torch.sin(angle)[:, None], torch.cos(angle)[:, None]], dim=1)

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(self.features(stats)))

    def distance(self, stats: torch.Tensor) -> torch.Tensor:
        """(N,) the largest |z-score| of any feature against the training data (the batch
        norm's running statistics): how far outside what the model has seen an input lies."""
        z = (self.features(stats) - self.norm.running_mean) / torch.sqrt(self.norm.running_var + self.norm.eps)
        return z.abs().amax(dim=1)


class StatsImageClassifier(nn.Module):
    """The statistics decision with eyes: `StatsClassifier`'s inputs and a small ResNet's
    pooled features of the picture, one decision on both.

    The statistics cannot see raindrops (refracted discs) and miss light snow and rain on
    textured scenes; a CNN on the pixels can, and the statistics keep what a small CNN on a
    shrunken copy cannot see (noise levels, JPEG blocks at native resolution).
    forward(stats (N, len(FEATURES)), image (N, 3, side, side) uint8 or float in [0, 1]) ->
    (N, classes) logits. `side` is the image input's side (`detector.decision_image`).
    """

    def __init__(self, hidden: int = 64, width: int = 16, depth: int = 18, side: int = 192,
                 classes: int = len(DEGRADATIONS), dropout: float = 0.1) -> None:
        super().__init__()
        self.side = side
        self.stats = StatsClassifier(hidden, classes=hidden, dropout=dropout)  # its last layer: a hidden one
        self.trunk = ResNet(depth, width, in_channels=3, classes=0)
        self.head = nn.Sequential(nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden + self.trunk.out_features, hidden), nn.GELU(),
                                  nn.Linear(hidden, classes))

    def forward(self, stats: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[2:]) != (self.side, self.side):
            raise ValueError(f"StatsImageClassifier takes (N, 3, {self.side}, {self.side}) images, "
                             f"got {tuple(image.shape)}")
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        return self.head(torch.cat([self.stats(stats), self.trunk(image)], dim=1))

    def distance(self, stats: torch.Tensor) -> torch.Tensor:
        """(N,) how far outside the training data the statistics lie (`StatsClassifier.distance`)."""
        return self.stats.distance(stats)

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

import math

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


def _squeeze(x: torch.Tensor, side: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, side, side): area-averaged when shrinking, bilinear when enlarging."""
    if min(x.shape[2:]) >= side:
        return F.interpolate(x, size=(side, side), mode="area")
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


class TransmissionDehazer(nn.Module):
    """Haze removal that estimates the scattering model's unknowns on the whole picture.

    Haze depends on how far each point of the scene is, and that is a property of the whole
    scene (farther toward the top, where it is bright and smooth), not of a window. So this model
    squeezes the picture to `side` x `side`, and a small U-Net there estimates one transmission map
    t (in [t_min, 1]) and a pooled head estimates the airlight A (one value per channel). The map
    is enlarged back to the picture's size (haze varies smoothly), and the scattering model is
    inverted at full resolution: J = (I - A) / t + A. The fine detail of the output is the input's
    own, amplified by 1 / t; the network never paints it, and its cost hardly grows with the
    picture (a few operations per pixel beyond the fixed-size estimate).

    `ScatteringDehazer` learned on native crops, where each crop had its own range of depths, and
    could not match the whole-picture case. This one trains on whole pictures (`data.view: whole`).
    It starts at t = 0.525 and A = 0.85 (zero head weights), a mild dehaze, away from the
    saturated t = 1 that stalled the first version of `ScatteringDehazer`.

    With `work`, the estimator also sees statistics of each of its cells taken on the picture
    squeezed to work x work (`_views`): the darkest and brightest values and the luma spread, the
    cues that area averaging erases (the dark channel prior's among them).

    Its estimate needs the whole picture, so the enhance job never tiles it
    (`ModelSpec.whole_picture`); beside the input it holds one full-size map of t and the result.
    """

    def __init__(self, channels: int = 3, features: int = 24, side: int = 64, t_min: float = 0.05,
                 work: int | None = None) -> None:
        super().__init__()
        if side % 8:
            raise ValueError(f"side must be a multiple of 8 (three halvings), got {side}")
        if work is not None and work % side:
            raise ValueError(f"work ({work}) must be a multiple of side ({side})")
        f = features
        self.side, self.t_min, self.work = side, t_min, work
        self.enc1 = _block(channels + 1 + (3 if work else 0), f)
        self.enc2 = _block(f, 2 * f, stride=2)
        self.enc3 = _block(2 * f, 4 * f, stride=2)
        self.enc4 = _block(4 * f, 4 * f, stride=2)
        self.context = nn.Sequential(nn.Linear(4 * f, 4 * f), nn.ReLU())
        self.airlight = nn.Linear(4 * f, channels)
        self.dec3 = _block(8 * f, 2 * f)
        self.dec2 = _block(4 * f, f)
        self.dec1 = _block(2 * f, f)
        self.head = conv(f, 1)
        for layer, bias in ((self.head, 0.0), (self.airlight, math.log(0.85 / 0.15))):
            nn.init.zeros_(layer.weight)
            nn.init.constant_(layer.bias, bias)

    def _views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """What the estimator sees at side x side: the squeezed picture and, with `work`, three
        statistics of each cell of the picture squeezed to work x work: its darkest channel value
        (the dark channel prior's cue: haze lifts it), its brightest (the airlight's) and the
        spread of its luma (haze flattens contrast). Area averaging alone would erase all three."""
        if not self.work:
            return [_squeeze(x, self.side)]
        big = _squeeze(x, self.work)
        k = self.work // self.side
        luma = big.mean(dim=1, keepdim=True)
        spread = (F.avg_pool2d(luma * luma, k) - F.avg_pool2d(luma, k) ** 2).clamp_min(0).sqrt()
        return [F.avg_pool2d(big, k), -F.max_pool2d(-big.amin(dim=1, keepdim=True), k),
                F.max_pool2d(big.amax(dim=1, keepdim=True), k), spread]

    def estimate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(t (N, 1, side, side), A (N, C)) for hazy pictures `x` (N, C, H, W) in [0, 1]."""
        s = self.side
        rows = torch.linspace(0.0, 1.0, s, device=x.device, dtype=x.dtype).view(1, 1, s, 1).expand(len(x), 1, s, s)
        e1 = self.enc1(torch.cat([*self._views(x), rows], dim=1))
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        scene = self.context(e4.mean(dim=(2, 3)))
        e4 = e4 + scene[:, :, None, None]
        up = lambda a, b: F.interpolate(a, size=b.shape[2:], mode="bilinear", align_corners=False)  # noqa: E731
        d3 = self.dec3(torch.cat([up(e4, e3), e3], 1))
        d2 = self.dec2(torch.cat([up(d3, e2), e2], 1))
        d1 = self.dec1(torch.cat([up(d2, e1), e1], 1))
        t = self.t_min + (1 - self.t_min) * torch.sigmoid(self.head(d1))
        return t, torch.sigmoid(self.airlight(scene))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, a = self.estimate(x)
        t = F.interpolate(t.float(), size=x.shape[2:], mode="bilinear", align_corners=False)
        a = a.float()[:, :, None, None]
        out = x.float() - a
        if torch.is_grad_enabled():
            return out / t + a
        # In place: one picture-sized result beside the input and t. On a 16 MP picture that peaked
        # 183 MB above them, against 366 MB for (x - a) / t + a (a /tmp probe, ru_maxrss).
        return out.div_(t).add_(a)

"""Learned denoisers: DnCNN, FFDNet (noise-level map, blind mode via `estimate_sigma`) and an
NLRN-style non-local recurrent network.

All take NCHW float images in [0, 1] and return the same shape. Noise levels are on the
[0, 1] scale (sigma_255 / 255) everywhere in this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.layers import conv, crop_to, pad_to_multiple, shuffle, unshuffle

# Median of |N(0, 1)|: turns a median absolute deviation into a standard deviation.
_MAD_TO_SIGMA = 0.6745


def _plain_body(in_features: int, out_features: int, features: int, depth: int,
                batch_norm: bool) -> nn.Sequential:
    """conv-ReLU, (depth - 2) x conv-[BN]-ReLU, conv: the DnCNN/FFDNet trunk."""
    if depth < 2:
        raise ValueError(f"depth must be >= 2, got {depth}")
    layers: list[nn.Module] = [conv(in_features, features), nn.ReLU()]
    for _ in range(depth - 2):
        layers.append(conv(features, features, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(features))
        layers.append(nn.ReLU())
    layers.append(conv(features, out_features))
    return nn.Sequential(*layers)


@torch.no_grad()
def deepen_body(body: nn.Sequential, depth: int) -> nn.Sequential:
    """A `_plain_body` trunk of `depth` layers that computes what `body` computes (Net2DeeperNet,
    Chen et al. 2016): new conv-BN-ReLU blocks start as the identity, spread evenly between the
    existing ones, so training continues from the shallower model's quality instead of from scratch.

    Each new conv is the identity kernel and its batch norm undoes itself (gamma = the running
    std, beta = the running mean), so in eval mode the block is exactly the identity on the
    non-negative features it receives. The running statistics start at batch norm's defaults;
    `calibrate_grown` sets them to the features' real ones, which training mode needs. Only
    trunks with batch norm.
    """
    modules = list(body)
    middle = [modules[i:i + 3] for i in range(2, len(modules) - 1, 3)]
    if not middle or not all(isinstance(block[1], nn.BatchNorm2d) for block in middle):
        raise ValueError("deepen_body: needs a batch-norm trunk with at least one middle block")
    old_depth = len(middle) + 2
    if depth < old_depth:
        raise ValueError(f"deepen_body: cannot go from depth {old_depth} down to {depth}")
    added, count = depth - old_depth, len(middle)
    # After which existing block (1-based) each new one goes: evenly spread, several in a gap if
    # there are more new blocks than gaps (stacked identities stay the identity).
    after = [min(count, max(1, round((i + 1) * count / (added + 1)))) for i in range(added)]
    layers = modules[:2]
    for index, block in enumerate(middle, start=1):
        layers += block
        for _ in range(after.count(index)):
            layers += _identity_block(block[1])
    return nn.Sequential(*layers, modules[-1])


def _identity_block(previous: nn.BatchNorm2d) -> list[nn.Module]:
    """conv-BN-ReLU that passes ReLU(previous BN's output) through unchanged (see `deepen_body`)."""
    features = previous.num_features
    conv_ = conv(features, features, bias=False)
    conv_.weight.zero_()
    conv_.weight[range(features), range(features), 1, 1] = 1.0
    norm = nn.BatchNorm2d(features, eps=previous.eps)  # running mean 0, var 1: gamma undoes the eps
    norm.weight.data.fill_(math.sqrt(1 + norm.eps))
    norm.grown = True  # for `calibrate_grown`
    return [conv_, norm, nn.ReLU()]


@torch.no_grad()
def calibrate_grown(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Set the grown blocks' batch norms (see `deepen_body`) from the features they really see on
    `inputs` (a batch of training inputs). The model stays exactly the same function in eval
    mode, and in training mode, where batch norm uses the batch's statistics, the new blocks then
    start near the identity too. Grown from 12 to 16 layers, the shipped gray FFDNet scored 29.2
    dB in training mode on 16 Train400 crops calibrated on 128 others (the 12-layer model: 29.8),
    and 9.0 dB with the default statistics."""
    norms = [m for m in model.modules() if getattr(m, "grown", False)]
    seen: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.__setitem__(mod, args[0])) for m in norms]
    was_training = model.training
    try:
        model.eval()
        model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for norm in norms:
        features = seen[norm].float()
        mean, var = features.mean(dim=(0, 2, 3)), features.var(dim=(0, 2, 3), unbiased=False)
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.copy_(torch.sqrt(var + norm.eps))
        norm.bias.copy_(mean)


def deepen_state(name: str, config: dict, state: dict, target: dict,
                 inputs: Callable[[], tuple[torch.Tensor, ...]] | None = None) -> dict | None:
    """`state` (of `build(name, **config)`) grown to `build(name, **target)` with `deepen_body`,
    when the two configs differ only in a larger `depth`; else None. With `inputs` (called only
    when growing: a batch of training inputs) the new blocks are calibrated on it
    (`calibrate_grown`)."""
    from pipeline.models import build

    rest = {k: v for k, v in config.items() if k != "depth"}
    if rest != {k: v for k, v in target.items() if k != "depth"}:
        return None
    small, large = build(name, **config), build(name, **target)
    if not isinstance(getattr(small, "body", None), nn.Sequential):
        return None
    depth, old_depth = (sum(isinstance(m, nn.Conv2d) for m in model.body) for model in (large, small))
    if depth <= old_depth:
        return None
    small.load_state_dict(state)
    small.body = deepen_body(small.body, depth)
    if inputs is not None:
        calibrate_grown(small, inputs())
    large.load_state_dict(small.state_dict())
    return large.state_dict()


@torch.no_grad()
def estimate_sigma(x: torch.Tensor) -> torch.Tensor:
    """Per-image noise sigma (N,) on the [0, 1] scale from the finest Haar diagonal band.

    Donoho's wavelet MAD estimator: the HH band of white Gaussian noise keeps its sigma
    (orthonormal Haar), while smooth image content mostly vanishes there, so
    median(|HH|) / 0.6745 is a robust, cheap estimate. Not differentiable on purpose (it is
    a control input, not something to learn through). Odd sizes drop the last row/column.
    """
    h, w = x.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"estimate_sigma: needs H, W >= 2, got {tuple(x.shape)}")
    x = x[..., : h - h % 2, : w - w % 2]
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    return hh.abs().flatten(1).median(dim=1).values / _MAD_TO_SIGMA


class DnCNN(nn.Module):
    """DnCNN (Zhang et al. 2017): a plain conv stack that predicts the noise; returns x - noise."""

    def __init__(self, channels: int = 1, features: int = 64, depth: int = 17,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.body = _plain_body(channels, channels, features, depth, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


class FFDNet(nn.Module):
    """FFDNet (Zhang et al. 2018): pixel-unshuffle x2, concatenate a noise-level map, conv
    trunk, pixel-shuffle back.

    Working at half resolution makes it ~4x cheaper than DnCNN per layer, and the noise map
    lets one model cover a range of sigmas (and trade detail for smoothing at inference).
    With `residual` the trunk predicts the noise (converges faster in short CPU budgets);
    without, it predicts the clean image as in the paper.
    """

    def __init__(self, channels: int = 1, features: int = 64, depth: int = 12,
                 batch_norm: bool = True, residual: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.residual = residual
        # 4 sub-images per channel plus one noise map per channel, as in the paper.
        self.body = _plain_body(5 * channels, 4 * channels, features, depth, batch_norm)

    def _sigma_map(self, sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
        """Sigma as given ((), (N,), (N,1,1,1) or (N,C,1,1)) -> (N, C, 1, 1)."""
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        n = x.shape[0]
        if s.ndim == 0:
            s = s.expand(n)
        if s.ndim == 1:
            s = s.view(-1, 1, 1, 1)
        if s.ndim != 4 or s.shape[0] != n or s.shape[2:] != (1, 1) or s.shape[1] not in (1, self.channels):
            raise ValueError(f"FFDNet: sigma shape {tuple(s.shape)} does not fit input {tuple(x.shape)}")
        return s.expand(n, self.channels, 1, 1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        """Denoise `x`; `sigma` on the [0, 1] scale, estimated per image when None."""
        if sigma is None:
            sigma = estimate_sigma(x)
        sub, size = unshuffle(x, 2)
        noise_map = self._sigma_map(sigma, x).expand(-1, -1, sub.shape[2], sub.shape[3])
        out = shuffle(self.body(torch.cat([sub, noise_map], dim=1)), size, 2)
        return x - out if self.residual else out


# The orthonormal opponent colour transform (CBM3D's "opp"): rows are luminance and two
# colour differences. Being orthonormal, it keeps i.i.d. RGB noise i.i.d. with the same sigma in
# every channel, while the picture's energy gathers in the first channel and the other two are
# smooth, so a gray denoiser removes far more noise there than on R, G and B one by one.
_S2, _S3, _S6 = math.sqrt(2), math.sqrt(3), math.sqrt(6)
_OPPONENT = ((1 / _S3, 1 / _S3, 1 / _S3), (1 / _S2, 0.0, -1 / _S2), (1 / _S6, -2 / _S6, 1 / _S6))
# Per channel, the scale and offset that map RGB in [0, 1] onto [0, 1] (the gray model's range).
_OPPONENT_SCALE = (1 / _S3, 1 / _S2, _S6 / 4)
_OPPONENT_SHIFT = (0.0, 0.5, 0.5)


class OpponentFFDNet(FFDNet):
    """Colour denoiser: one gray FFDNet trunk run on each channel of the opponent transform.

    Same parameters (and state_dict keys) as the gray FFDNet, so the gray weights load as they
    are (zero-shot this beats colour NL-means on CBSD68) and fine-tune on colour crops. Takes
    and returns RGB; the noise level is the RGB one, scaled per channel with the transform.
    """

    def __init__(self, features: int = 64, depth: int = 12, batch_norm: bool = True,
                 residual: bool = True) -> None:
        super().__init__(channels=1, features=features, depth=depth, batch_norm=batch_norm, residual=residual)
        scale, opponent = torch.tensor(_OPPONENT_SCALE), torch.tensor(_OPPONENT)
        # RGB -> opponent channels on [0, 1], and back (orthonormal: the inverse is the transpose).
        self.register_buffer("to_opp", scale[:, None] * opponent, persistent=False)
        self.register_buffer("from_opp", opponent.T / scale[None, :], persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", torch.tensor(_OPPONENT_SHIFT)[:, None, None], persistent=False)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        """Denoise RGB `x` (N, 3, H, W); `sigma` () or (N,) on the [0, 1] scale, estimated when None."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"OpponentFFDNet: expects (N, 3, H, W), got {tuple(x.shape)}")
        n, _, h, w = x.shape
        if sigma is None:
            sigma = estimate_sigma(x)  # the transform is orthonormal: the RGB sigma is every channel's
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(n)
        to_opp, from_opp, shift = (t.to(x.dtype) for t in (self.to_opp, self.from_opp, self.shift))
        y = torch.einsum("oc,nchw->nohw", to_opp, x) + shift
        sigmas = (s[:, None] * self.scale.to(x.dtype)).reshape(-1)
        y = super().forward(y.reshape(n * 3, 1, h, w), sigmas).reshape(n, 3, h, w)
        return torch.einsum("co,nohw->nchw", from_opp, y - shift)


def _to_windows(x: torch.Tensor, side: int) -> torch.Tensor:
    """(N, C, H, W) with H, W multiples of `side` -> (N * windows, C, side, side)."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // side, side, w // side, side).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c, side, side)


def _from_windows(x: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `_to_windows`."""
    c, side = x.shape[1], x.shape[2]
    x = x.view(n, h // side, w // side, c, side, side).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, c, h, w)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(N, d, H, W) -> contiguous (N, 1, H*W, d): SDPA silently falls back to its slow,
    O(L^2)-memory math kernel on strided (transposed) inputs."""
    return x.flatten(2).transpose(1, 2).unsqueeze(1).contiguous()


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al. 2018): z = x + W(softmax(theta^T phi) g).

    Attention over all H*W positions costs (H*W)^2 memory and time, so inputs larger than
    `max_positions` (64x64 by default) or any input when `window` is set attend within
    non-overlapping windows (as NLRN does with its neighbourhoods). `key_stride` > 1
    max-pools phi and g (Wang et al.'s subsampling trick) for a further 1/stride^2 saving.
    W starts at zero so the block starts as the identity.
    """

    def __init__(self, features: int, inter_features: int | None = None, window: int | None = None,
                 key_stride: int = 1, max_positions: int = 4096) -> None:
        super().__init__()
        inter = inter_features or max(features // 2, 1)
        self.theta = nn.Conv2d(features, inter, 1)
        self.phi = nn.Conv2d(features, inter, 1)
        self.g = nn.Conv2d(features, inter, 1)
        self.out = nn.Conv2d(inter, features, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.inter = inter
        self.window = window
        self.key_stride = key_stride
        self.max_positions = max_positions

    def _window_for(self, h: int, w: int) -> int | None:
        if self.window is not None:
            return self.window
        return None if h * w <= self.max_positions else math.isqrt(self.max_positions)

    def _keys(self, proj: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        y = proj(x)
        if self.key_stride > 1:
            y = F.max_pool2d(y, self.key_stride, ceil_mode=True)
        return _tokens(y)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q = _tokens(self.theta(x))
        # SDPA's fused CPU kernel is ~10x faster and O(L) in memory; its 1/sqrt(d) scale is
        # absorbed by theta.
        y = F.scaled_dot_product_attention(q, self._keys(self.phi, x), self._keys(self.g, x))
        return self.out(y.squeeze(1).transpose(1, 2).reshape(n, self.inter, h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        side = self._window_for(h, w)
        if side is None:
            return x + self._attend(x)
        padded, size = pad_to_multiple(x, side)
        ph, pw = padded.shape[-2:]
        y = _from_windows(self._attend(_to_windows(padded, side)), n, ph, pw)
        return x + crop_to(y, size)

    def attention_macs(self, h: int, w: int) -> int:
        """Multiply-adds of the two attention matmuls for one HxW image (for cost reports:
        conv/linear hooks do not see them)."""
        side = self._window_for(h, w)
        windows = 1 if side is None else math.ceil(h / side) * math.ceil(w / side)
        wh, ww = (h, w) if side is None else (side, side)
        keys = math.ceil(wh / self.key_stride) * math.ceil(ww / self.key_stride)
        return 2 * windows * wh * ww * keys * self.inter


class NLRN(nn.Module):
    """NLRN-style non-local recurrent network (Liu et al. 2018), simplified.

    A recurrent state s_t = f(s_{t-1}) + s_0 is unrolled `steps` times with one shared
    f = non-local block -> conv-ReLU-conv, so depth grows without parameters. Predicts the
    noise and returns x - noise. (The paper's correlation propagation between steps is
    left out to keep the block a plain, windowable attention.)
    """

    def __init__(self, channels: int = 1, features: int = 64, steps: int = 6,
                 window: int | None = None, max_positions: int = 4096) -> None:
        super().__init__()
        self.steps = steps
        self.head = conv(channels, features)
        self.non_local = NonLocalBlock(features, window=window, max_positions=max_positions)
        self.step = nn.Sequential(conv(features, features), nn.ReLU(), conv(features, features))
        self.tail = nn.Sequential(nn.ReLU(), conv(features, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.head(x)
        s = s0
        for _ in range(self.steps):
            s = self.step(self.non_local(F.relu(s))) + s0
        return x - self.tail(s)

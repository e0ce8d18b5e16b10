"""The restoration task: degraded -> clean pairs, a pixel loss, PSNR/SSIM, a before/after grid.

What every denoiser, super-resolution, weather, low-light and inpainting model learns; the
loop (pipeline.train.loop) is shared with the classifiers and asks the task for these parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.metrics.fullref import psnr, ssim
from pipeline.models import spec
from pipeline.train import data as pair_data
from pipeline.train import figures
from pipeline.train.config import DataConf
from pipeline.train.data import model_inputs


def charbonnier(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1 variant sqrt(d^2 + eps^2) (Lai et al.): robust like L1, differentiable at 0."""
    return torch.sqrt((output - target) ** 2 + eps * eps).mean()


LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier}
# Attentive GAN (Qian et al. 2018): weights of the 1/4, 1/2 and full-scale outputs, the decay
# of earlier attention maps' weight, and the difference (of 255) that marks a rain/drop pixel.
SCALE_WEIGHTS = (0.6, 0.8, 1.0)
MAP_DECAY = 0.8
MASK_THRESHOLD = 30 / 255


def image_of(output) -> torch.Tensor:
    """The restored image of a model's output: the tensor itself, or the first element of a
    tuple (the Attentive GAN returns (image, attention maps); in train mode (scales, maps))."""
    if isinstance(output, (tuple, list)):
        output = output[0]
        return output[-1] if isinstance(output, (tuple, list)) else output
    return output


def attentive_loss(output, batch: Mapping[str, torch.Tensor], pixel_loss) -> torch.Tensor:
    """Multi-scale pixel loss over the three outputs plus the attention loss: every map is
    pulled (MSE) towards the mask of pixels the degradation changed, later maps weighted more."""
    scales, maps = output
    target, degraded = batch["target"], batch["input"]
    loss = sum(w * pixel_loss(out.float(), F.adaptive_avg_pool2d(target, out.shape[-2:]))
               for w, out in zip(SCALE_WEIGHTS, scales))
    mask = ((degraded - target).abs().amax(dim=1, keepdim=True) > MASK_THRESHOLD).float()
    n = len(maps)
    return loss + sum(MAP_DECAY ** (n - 1 - t) * F.mse_loss(m.float(), mask) for t, m in enumerate(maps))


@torch.no_grad()
def predict(model: nn.Module, pairs: Mapping[str, np.ndarray], *, needs: Mapping[str, bool],
            batch_size: int = 16) -> np.ndarray:
    """Model outputs (N, C, H, W) in [0, 1] for validation pairs, in fp32 (as inference runs)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(pairs["input"]), batch_size):
        batch = {k: torch.from_numpy(v[start : start + batch_size]).to(device) for k, v in pairs.items()}
        outputs.append(image_of(model(*model_inputs(batch, **needs))).clamp(0, 1).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(outputs)


# A crop the model returns exactly has an infinite PSNR, which makes the mean infinite: a clean
# validation crop (recipes leave some crops undegraded) through a model that learned the identity
# did that to every epoch of the first dehaze run. Each crop counts at most this much.
PSNR_CAP = 100.0


def evaluate(model: nn.Module, pairs: Mapping[str, np.ndarray], *, needs: Mapping[str, bool]) -> dict[str, float]:
    """Mean PSNR (dB, each crop at most `PSNR_CAP`) and SSIM of the model on the validation pairs."""
    outputs = predict(model, pairs, needs=needs)
    targets = pairs["target"].transpose(0, 2, 3, 1)
    outputs = outputs.transpose(0, 2, 3, 1)
    return {"val_psnr": float(np.mean([min(psnr(t, o), PSNR_CAP) for t, o in zip(targets, outputs)])),
            "val_ssim": float(np.mean([ssim(t, o) for t, o in zip(targets, outputs)]))}


class Restoration:
    """The task of models that restore images (every kind but classifier)."""

    curves = ("train_loss", "val_psnr", "val_ssim", "epoch_seconds")
    sources = staticmethod(pair_data.sources)
    train_dataset = staticmethod(pair_data.train_dataset)
    validation_set = staticmethod(pair_data.validation_set)

    def __init__(self, config: Mapping[str, Any]) -> None:
        s = spec(config["model"]["name"])
        self.needs = {"needs_sigma": s.needs_sigma, "needs_mask": s.needs_mask}
        self.loss_fn = LOSSES[config["train"]["loss"]]
        if config["train"].get("adversarial"):
            self.curves = (*self.curves, "pixel_loss", "g_loss", "d_loss")

    def inputs(self, batch: Mapping[str, torch.Tensor], channels_last: bool = False) -> tuple[torch.Tensor, ...]:
        return model_inputs(batch, channels_last=channels_last, **self.needs)

    def loss(self, output, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(output, tuple):  # an attentive generator in train mode: (scales, maps)
            return attentive_loss(output, batch, self.loss_fn)
        return self.loss_fn(output.float(), batch["target"])

    @staticmethod
    def image_and_attention(output) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the discriminator judges (the full-scale image) and, for an attentive
        generator, its final attention map (what an attentive discriminator should find)."""
        return image_of(output), (output[1][-1] if isinstance(output, tuple) else None)

    def evaluate(self, model: nn.Module, val: Mapping[str, np.ndarray]) -> dict[str, float]:
        return evaluate(model, val, needs=self.needs)

    def figures(self, folder: Path, model: nn.Module, data: DataConf, val: list[str]) -> None:
        """before_after.png: 4 validation pairs, input | output | target with PSNRs."""
        pairs = pair_data.validation_set(data.model_dump() | {"val_count": 4}, val)
        outputs = predict(model, pairs, needs=self.needs)
        hwc = lambda a: a.transpose(1, 2, 0)  # noqa: E731
        before = [psnr(hwc(t), hwc(i)) if t.shape == i.shape else float("nan")
                  for t, i in zip(pairs["target"], pairs["input"])]
        after = [psnr(hwc(t), hwc(o)) for t, o in zip(pairs["target"], outputs)]
        figures.before_after(folder / "before_after.png", pairs["input"], outputs, pairs["target"], before, after)

    @staticmethod
    def tags(data: DataConf, metrics: Mapping[str, float]) -> dict[str, str]:
        """Registered-version tags: the training data and the final validation PSNR."""
        return {"data": ",".join(data.clean)[:5000], "val_psnr": f"{metrics.get('val_psnr', np.nan):.3f}"}

    @staticmethod
    def data_list(train: list[str]) -> list[str]:
        """The training sources, as the weights' sidecar records them."""
        return list(train)

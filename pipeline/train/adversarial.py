"""GAN training: the discriminator side, used when a train config sets `train.adversarial`.

The generator is the run's model and learns with the task's pixel loss plus `weight` times
the adversarial term (SRGAN: content + 1e-3 adversarial; the Attentive GAN: multi-scale and
attention losses + adversarial). Each step first updates the discriminator on the real
target against the detached generator output, then the generator:

    d_loss = BCE(D(target), 1) + BCE(D(fake), 0)   [+ map loss for an attentive D]
    g_loss = BCE(D(fake), 1)
    train_loss = pixel loss + weight * g_loss

An attentive discriminator (seed 000/001) returns (logit, map): its map is pulled towards the
generator's final attention map for fakes and towards zero for real images, as in Qian et
al. 2018. Both losses are logged per epoch (seed 001 reports them). The discriminator and its
optimiser are saved in every checkpoint, so a resumed run continues the same game; only the
generator is registered and shipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models import build

bce = F.binary_cross_entropy_with_logits


def _logit_and_map(output) -> tuple[torch.Tensor, torch.Tensor | None]:
    return (output[0], output[1]) if isinstance(output, (tuple, list)) else (output, None)


class Adversary:
    """The discriminator and its optimiser on one worker (wrapped for DDP by `prepare`)."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self.conf = conf
        self.net = build(conf["discriminator"], **conf["params"])
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=conf["lr"], betas=(0.9, 0.999))

    def prepare(self) -> None:
        import ray.train.torch

        self.net = ray.train.torch.prepare_model(self.net)

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, attention: torch.Tensor | None) -> float:
        """One discriminator update on real targets vs detached generator outputs."""
        real_logit, real_map = _logit_and_map(self.net(real))
        fake_logit, fake_map = _logit_and_map(self.net(fake.detach()))
        loss = bce(real_logit, torch.ones_like(real_logit)) + bce(fake_logit, torch.zeros_like(fake_logit))
        if fake_map is not None and attention is not None:
            # Where the generator looked (downsampled to the map's size) for fakes, nothing for reals.
            target_map = F.adaptive_avg_pool2d(attention.detach().float(), fake_map.shape[-2:])
            loss = loss + self.conf["map_weight"] * (F.mse_loss(fake_map, target_map)
                                                      + F.mse_loss(real_map, torch.zeros_like(real_map)))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def g_term(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss: make the discriminator call its output real."""
        logit, _ = _logit_and_map(self.net(fake))
        return bce(logit, torch.ones_like(logit))

    def state(self) -> dict[str, Any]:
        return {"discriminator": getattr(self.net, "module", self.net).state_dict(),
                "d_optimizer": self.optimizer.state_dict()}

    def load(self, state: Mapping[str, Any]) -> None:
        getattr(self.net, "module", self.net).load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["d_optimizer"])


def gan_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Mapping[str, torch.Tensor], *,
             task, adversary: Adversary, bf16: bool, channels_last: bool, grad_clip: float | None) -> dict[str, float]:
    """One discriminator update, then one generator update; the losses of both."""
    inputs = task.inputs(batch, channels_last=channels_last)
    with torch.autocast(inputs[0].device.type, dtype=torch.bfloat16, enabled=bf16):
        output = model(*inputs)
    pixel = task.loss(output, batch)
    fake, attention = task.image_and_attention(output)
    d_loss = adversary.d_step(batch["target"], fake.float(), attention)
    g_loss = adversary.g_term(fake.float())
    loss = pixel + adversary.conf["weight"] * g_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"train_loss": float(loss.detach()), "pixel_loss": float(pixel.detach()),
            "g_loss": float(g_loss.detach()), "d_loss": d_loss}

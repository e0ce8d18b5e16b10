"""The supervised training loop run by every Ray Train worker, for every task.

What is learned comes from the task (pipeline.train.tasks): restoration (degraded -> clean)
or classification (crop -> domain and degradation labels); the loop only steps, counts and
reports.

Data: one streaming pass over the train dataset covers all remaining epochs; an epoch is
`steps_per_epoch` global batches, so the stream is cut into epochs by counting. Every
worker reads the whole ordered stream and trains on its rows of each global batch, so the
batches are the same on every run. After a worker-group restart the loop resumes from the
latest checkpoint and skips the batches of the epochs it already has (crops only, no
training), so every epoch sees its own crops.

Per epoch rank 0 measures the task's validation metrics (PSNR/SSIM, accuracies) on its
fixed validation set, logs to MLflow (run id and URI come in the loop config: the workers
may live on other machines) and reports a checkpoint; the other ranks report metrics only.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.models import build
from pipeline.train import adversarial, checkpoints, tasks

log = logging.getLogger(__name__)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (itself otherwise)."""
    return getattr(model, "module", model)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Mapping[str, torch.Tensor],
               *, task, bf16: bool, channels_last: bool, grad_clip: float | None, adversary=None) -> dict[str, float]:
    """One optimiser step (a GAN step when there is an adversary); the forward pass under bf16
    autocast when asked, the loss in fp32. Returns the step's losses."""
    if adversary is not None:
        return adversarial.gan_step(model, optimizer, batch, task=task, adversary=adversary, bf16=bf16,
                                    channels_last=channels_last, grad_clip=grad_clip)
    inputs = task.inputs(batch, channels_last=channels_last)
    with torch.autocast(inputs[0].device.type, dtype=torch.bfloat16, enabled=bf16):
        output = model(*inputs)
    loss = task.loss(output, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"train_loss": float(loss.detach())}


def mean_over_workers(value: float) -> float:
    """Average of a per-worker scalar over the process group (the value itself when alone)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def lr_at(epoch: int, train: Mapping[str, Any]) -> float:
    """Learning rate of `epoch`: constant, or cosine from lr to lr_min over the run's epochs
    (a function of the epoch only, so a resumed run continues the same schedule)."""
    if train["lr_min"] is None or train["epochs"] <= 1:
        return train["lr"]
    progress = epoch / (train["epochs"] - 1)
    return float(train["lr_min"] + 0.5 * (train["lr"] - train["lr_min"]) * (1 + np.cos(np.pi * progress)))


def run_epoch(model, optimizer, batches: Iterator, steps: int, **step_kwargs) -> dict[str, float]:
    """`steps` training steps from `batches`: mean losses, seconds, and seconds spent waiting for data."""
    model.train()
    start, waited, losses = time.perf_counter(), 0.0, []
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(batches)
        waited += time.perf_counter() - t0
        losses.append(train_step(model, optimizer, batch, **step_kwargs))
    seconds = time.perf_counter() - start
    return {**{k: float(np.mean([step[k] for step in losses])) for k in losses[0]},
            "epoch_seconds": seconds, "data_wait_seconds": waited,
            "steps_per_s": steps / seconds, "compute_steps_per_s": steps / max(seconds - waited, 1e-9)}


def my_slices(batches, rank: int, size: int) -> Iterator[dict[str, torch.Tensor]]:
    """This rank's rows of every global batch (each worker reads the whole stream)."""
    for batch in batches:
        yield {k: v[rank * size : (rank + 1) * size] for k, v in batch.items()}


def bf16_fast(device_type: str) -> bool:
    """Whether bf16 autocast speeds training up on this device: on CUDA, and on CPUs whose
    oneDNN has bf16 kernels (AVX-512 or newer). On an AVX2-only CPU PyTorch emulates it,
    15x slower than fp32 (a 32-channel convolution step on an AVX2 EPYC)."""
    if device_type != "cpu":
        return device_type == "cuda"
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _setup(config: Mapping[str, Any], checkpoint=None) -> tuple[nn.Module, torch.optim.Optimizer, int, Any]:
    """Model, optimiser and (GAN training) the adversary on this worker: from `init_state`
    (train.init_from) if given, restored from `checkpoint` (the run's latest) if there is one."""
    torch.manual_seed(config["data"]["seed"])  # the same initial weights on every rank
    model = build(config["model"]["name"], **config["model"]["params"])
    if config.get("init_state") is not None:
        model.load_state_dict(config["init_state"])  # train.init_from; a checkpoint overrides it below
    if config["train"]["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["train"]["lr"])
    gan = config["train"].get("adversarial")
    adversary = adversarial.Adversary(gan) if gan else None
    epoch = checkpoints.load_into(checkpoint, model, optimizer, adversary)["epoch"] if checkpoint else 0
    return model, optimizer, epoch, adversary


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train entry point; `config` is built by `pipeline.train.job.loop_config`."""
    import ray.train
    import ray.train.torch

    if config["threads"]:
        torch.set_num_threads(config["threads"])
    rank = ray.train.get_context().get_world_rank()
    model, optimizer, epoch, adversary = _setup(config, ray.train.get_checkpoint())
    model = ray.train.torch.prepare_model(model)
    if adversary is not None:
        adversary.prepare()
    task, t = tasks.of(config), config["train"]
    device = ray.train.torch.get_device().type
    bf16 = t["bf16"] and bf16_fast(device)
    if t["bf16"] and not bf16 and rank == 0:
        log.warning("train.bf16: this %s has no fast bfloat16 (PyTorch would emulate it, ~15x slower): "
                    "training in fp32", device.upper())
    step_kwargs = dict(task=task, bf16=bf16, channels_last=t["channels_last"], grad_clip=t["grad_clip"],
                       adversary=adversary)
    steps = config["steps_per_epoch"]
    batches = my_slices(ray.train.get_dataset_shard("train").iter_torch_batches(
        batch_size=config["batch_size"], drop_last=True), rank, config["worker_batch"])
    for _ in range(max(0, epoch - config["data_start_epoch"]) * steps):
        next(batches)  # epochs done before a worker-group restart: keep the stream aligned
    val = task.validation_set(config["data"], config["val"]) if rank == 0 else None
    # After a worker-group restart the epochs since the last registered checkpoint run again
    # (with identical batches): their metrics are in MLflow already.
    logged = _logged_epochs(config) if rank == 0 else set()
    for epoch in range(epoch, t["epochs"]):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch, t)
        metrics = {"epoch": epoch + 1, "lr": lr_at(epoch, t), "bf16": float(bf16),
                   **run_epoch(model, optimizer, batches, steps, **step_kwargs)}
        for key in ("train_loss", "pixel_loss", "g_loss", "d_loss"):
            if key in metrics:
                metrics[key] = mean_over_workers(metrics[key])
        _report(model, optimizer, epoch, metrics, config, val if rank == 0 else None, task, epoch not in logged,
                adversary)


def _logged_epochs(config: Mapping[str, Any]) -> set[int]:
    from pipeline import tracking

    try:
        return tracking.metric_steps(config["run_id"], "train_loss", uri=config["tracking_uri"]) if config["run_id"] else set()
    except Exception as exc:
        log.warning("could not read the MLflow history: %s", exc)
        return set()


def _report(model, optimizer, epoch: int, metrics: dict[str, float], config: Mapping[str, Any],
            val: Mapping[str, np.ndarray] | None, task, log_metrics: bool = True, adversary=None) -> None:
    """Rank 0 (`val` given): validate, log to MLflow, checkpoint. Everyone: ray.train.report."""
    import ray.train

    from pipeline import tracking

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if val is not None:
            metrics.update(task.evaluate(unwrap(model), val))
            meta = {"model": config["model"], "mlflow_run_id": config["run_id"], "metrics": metrics}
            checkpoints.write(folder, model=unwrap(model), optimizer=optimizer, epoch=epoch + 1, meta=meta,
                              extra=adversary.state() if adversary is not None else None)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
            if config["run_id"] and log_metrics:
                try:
                    tracking.log_metrics(config["run_id"], metrics, step=epoch, uri=config["tracking_uri"])
                except Exception as exc:  # a tracking outage must not kill the training run
                    log.warning("MLflow logging of epoch %d failed: %s", epoch + 1, exc)
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=checkpoints.dir_name(epoch + 1))

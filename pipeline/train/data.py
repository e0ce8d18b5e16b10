"""Training data: dataset names -> URLs, the streaming train set, the fixed validation set.

Dataset names resolve under `data_root()` (IMGENHANCE_DATA); when one is missing the
config's `data.fallback` sources are used instead, with a warning, so the smoke config runs
on any machine. Train and validation images are checked to be disjoint file by file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pipeline.datasets import MNIST_TEST, data_root
from pipeline.degrade import pairs
from pipeline.train.config import DataConf

log = logging.getLogger(__name__)
# Validation pairs draw from their own seed stream, never the training one.
VAL_SEED_OFFSET = 1_000_003


def _is_name(source: str) -> bool:
    return "://" not in source and not source.startswith((pairs.SKIMAGE, pairs.MNIST, pairs.PAGES, "/", "~", "."))


def resolve(sources: Sequence[str]) -> list[str] | None:
    """Names -> folders or files under data_root() (slices kept); None when one is missing.

    `mnist:[a:b]` gets its file made explicit (`mnist:<data_root>/MNIST_test/...[a:b]`), so
    workers read the file the driver checked whatever their environment."""
    out = []
    for source in sources:
        if source == pairs.MNIST or source.startswith(pairs.MNIST + "["):
            file = data_root() / MNIST_TEST
            if not file.is_file():
                return None
            source = f"{pairs.MNIST}{file}{source[len(pairs.MNIST):]}"
        if not _is_name(source):
            out.append(source)
            continue
        name, bracket, rest = source.partition("[")
        folder = data_root() / name
        if not folder.exists():  # a folder, or one file of it
            return None
        out.append(str(folder) + bracket + rest)
    return out


def sources(data: DataConf) -> tuple[list[str], list[str]]:
    """(clean, val) URLs for `data`, falling back as configured; checks they are disjoint."""
    clean, val = resolve(data.clean), resolve(data.val)
    if clean is None or val is None:
        if data.fallback is None:
            missing = data.clean if clean is None else data.val
            raise FileNotFoundError(f"dataset of {missing} not found under {data_root()} (set IMGENHANCE_DATA)")
        log.warning("datasets %s not under %s: using data.fallback %s",
                    data.clean + data.val, data_root(), data.fallback.model_dump())
        clean, val = list(data.fallback.clean), list(data.fallback.val)
    shared = set(pairs.expand(clean) + pairs.expand(real_sources(data))) & set(pairs.expand(val))
    if shared:
        raise ValueError(f"{len(shared)} validation images are also training images, e.g. {sorted(shared)[0]}")
    return clean, val


def real_sources(data: DataConf) -> list[str]:
    """The targets of `data.real_pairs` under data_root() (no fallback: they are the point)."""
    if not data.real_pairs:
        return []
    real = resolve(data.real_pairs)
    if real is None:
        raise FileNotFoundError(f"real pairs {data.real_pairs} not found under {data_root()} (set IMGENHANCE_DATA)")
    return real


def steps_of(data: DataConf) -> list[dict[str, Any]]:
    return [step.model_dump() for step in data.steps]


def train_dataset(data: DataConf, clean: Sequence[str], *, start_epoch: int, epochs: int):
    """Pairs of epochs start_epoch .. epochs - 1 as one streaming dataset."""
    return pairs.paired_dataset(
        clean, channels=data.channels, crop=data.crop, steps=steps_of(data), seed=data.seed,
        start=start_epoch * data.per_epoch, count=(epochs - start_epoch) * data.per_epoch,
        scale=data.scale, num_cpus=data.num_cpus, augment=data.augment,
        real=real_sources(data), p_real=data.p_real, view=data.view,
        labels=False,  # strings do not become tensors; sigma/mask carry what models need
    )


def validation_set(data: Mapping[str, Any], val: Sequence[str]) -> dict[str, np.ndarray]:
    """The fixed validation pairs (same every epoch and every resume) as stacked arrays.

    `data` is DataConf.model_dump() (workers get plain dicts).
    """
    images = pairs.load_clean(pairs.absolute(val), data["channels"])
    made = [pairs.make_pair(images, crop=data["crop"], steps=data["steps"], scale=data["scale"],
                            augment=data["augment"], view=data["view"], seed=data["seed"] + VAL_SEED_OFFSET, index=i)
            for i in range(data["val_count"])]
    return {k: np.stack([m[k] for m in made]) for k in made[0] if k != "labels"}


def model_inputs(batch: Mapping[str, torch.Tensor], *, needs_sigma: bool, needs_mask: bool,
                 channels_last: bool = False) -> tuple[torch.Tensor, ...]:
    """Positional model inputs from a pair batch: (x,), (x, true sigma) or (x, mask)."""
    x = batch["input"]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if needs_sigma:
        return x, batch["sigma"]
    if needs_mask:
        return x, batch["mask"]
    return (x,)

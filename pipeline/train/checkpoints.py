"""Checkpoints: one folder per epoch with `state.pt` (model + optimizer state, loaded with
weights_only=True) and `meta.json` (epoch, model, MLflow run id), found again by run name.

Ray Train v2 restores by run folder: a trainer with the same `storage_path` and `name`
hands the latest reported checkpoint to `ray.train.get_checkpoint()`. The driver reads
the same snapshot (`latest`) to know where the data stream must start and which MLflow
run continues.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

STATE = "state.pt"
META = "meta.json"
# Written by Ray Train v2 in the run folder after every checkpoint (ray.train.v2 constants).
SNAPSHOT = "checkpoint_manager_snapshot.json"


def dir_name(epoch: int) -> str:
    """Checkpoint folder of the state after `epoch` completed epochs."""
    return f"epoch_{epoch:05d}"


def write(folder: str | os.PathLike, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
          epoch: int, meta: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Path:
    """Save the state after `epoch` completed epochs into `folder`; `extra` adds more state
    (a GAN's discriminator and its optimiser)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, **(extra or {})},
               folder / STATE)
    (folder / META).write_text(json.dumps({**meta, "epoch": epoch}, indent=2, sort_keys=True) + "\n")
    return folder


def read(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, meta) of a checkpoint folder; tensors only are unpickled."""
    folder = Path(folder)
    state = torch.load(folder / STATE, map_location="cpu", weights_only=True)
    return state, json.loads((folder / META).read_text())


def load_into(checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
              adversary=None) -> dict[str, Any]:
    """Load a `ray.train.Checkpoint` into model (and optimizer, and a GAN's adversary); returns its meta."""
    with checkpoint.as_directory() as folder:
        state, meta = read(folder)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if adversary is not None:
        if "discriminator" not in state:
            raise ValueError("the checkpoint has no discriminator: it was not written by a GAN run "
                             "(start a new run, with train.init_from to keep the generator)")
        adversary.load(state)
    return meta


def run_folder(storage_path: str, name: str) -> str:
    """The Ray Train run folder, as Ray builds it: `<storage_path>/<name>`."""
    from pipeline.io.storage import normalize_url

    return posixpath.join(normalize_url(storage_path), name)


def latest(storage_path: str, name: str) -> dict[str, Any] | None:
    """Meta of the run's latest checkpoint (plus its `path`), or None when the run has none."""
    from pipeline.io.storage import filesystem

    folder = run_folder(storage_path, name)
    fs, path = filesystem(folder)
    snapshot = posixpath.join(path, SNAPSHOT)
    if not fs.exists(snapshot):
        return None
    entry = json.loads(fs.cat_file(snapshot)).get("latest_checkpoint_result")
    if not entry:
        return None
    checkpoint = posixpath.join(path, entry["checkpoint_dir_name"])
    meta = json.loads(fs.cat_file(posixpath.join(checkpoint, META)))
    return {**meta, "path": posixpath.join(folder, entry["checkpoint_dir_name"])}


"""What a model learns, picked by its kind: the parts of training that differ between tasks.

The loop, checkpoints, resume, MLflow logging and registration are the same for every
model; a task supplies the rest. Restoration (pipeline.train.restoration): degraded ->
clean pairs, a pixel loss, PSNR/SSIM. Classification (pipeline.train.classification):
labelled domain crops, cross-entropy, accuracies and confusion matrices.

A task has
- `sources(data)` -> (train, val) sources and `train_dataset(data, train, start_epoch=,
  epochs=)` (driver), `validation_set(data_dict, val)` (rank 0),
- `inputs(batch, channels_last)` -> the model's positional inputs, `loss(output, batch)`,
  `evaluate(model, val)` -> metrics (workers),
- `figures(folder, model, data, val)`, `tags(data, metrics)`, `data_list(train)` and the
  metric names of its learning `curves` (driver, at the end).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.models import spec
from pipeline.train.classification import Classification
from pipeline.train.restoration import Restoration

TASKS = {"restoration": Restoration, "classification": Classification}


def name_of(model: str) -> str:
    return "classification" if spec(model).kind == "classifier" else "restoration"


def of(config: Mapping[str, Any]) -> Restoration | Classification:
    """The task of a config with `model`, `data` and `train` sections (plain dicts: a
    TrainJobConfig.model_dump() or the loop config the workers get)."""
    return TASKS[name_of(config["model"]["name"])](config)

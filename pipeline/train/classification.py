"""The classification task: labelled crops -> domain and degradation heads (seed 000).

The multitask classifier returns {head: logits} and learns the sum of the heads'
cross-entropies; the single-task one returns the logits of the one label `data.target`
names. Validation reports, per head, the accuracy, the accuracy of every class (recall:
share of that class's crops predicted as it) and the confusion matrix (rows true, columns
predicted), so a weak class is seen even when the mean looks good.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.labels import DEGRADATIONS, DOMAINS
from pipeline.train import classify_data, figures
from pipeline.train.config import DataConf

LABELS = {"domain": DOMAINS, "degradation": DEGRADATIONS}


def confusion(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    return np.bincount(true * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def accuracies(head: str, matrix: np.ndarray) -> dict[str, float]:
    """`val_<head>_acc` and `val_<head>_acc.<class>` for every class with validation crops."""
    out = {f"val_{head}_acc": float(np.trace(matrix) / max(matrix.sum(), 1))}
    for name, row, hit in zip(LABELS[head], matrix, np.diag(matrix)):
        if row.sum():
            out[f"val_{head}_acc.{name}"] = float(hit / row.sum())
    return out


class Classification:
    """The task of `classifier` models; `data.target` names the head of a single-task one."""

    curves = ("train_loss", "val_domain_acc", "val_degradation_acc", "epoch_seconds")
    sources = staticmethod(classify_data.sources)
    train_dataset = staticmethod(classify_data.train_dataset)
    validation_set = staticmethod(classify_data.validation_set)

    def __init__(self, config: Mapping[str, Any]) -> None:
        target = config["data"]["target"]
        self.heads = (target,) if target else tuple(LABELS)

    def inputs(self, batch: Mapping[str, torch.Tensor], channels_last: bool = False) -> tuple[torch.Tensor, ...]:
        """(input,), or (statistics, image) for `stats_cnn`."""
        x = batch["input"]
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        return (x, batch["image"]) if "image" in batch else (x,)

    def logits(self, output: torch.Tensor | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return dict(output) if isinstance(output, Mapping) else {self.heads[0]: output}

    def loss(self, output, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sum over heads of the cross-entropy (fp32, as the restoration losses)."""
        return sum(F.cross_entropy(z.float(), batch[head]) for head, z in self.logits(output).items())

    @torch.no_grad()
    def predict(self, model: nn.Module, val: Mapping[str, np.ndarray], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Predicted class per head for the validation crops, in fp32 eval mode."""
        was_training = model.training
        model.eval()
        out: dict[str, list[np.ndarray]] = {head: [] for head in self.heads}
        for start in range(0, len(val["input"]), batch_size):
            batch = {k: torch.from_numpy(val[k][start : start + batch_size]) for k in ("input", "image") if k in val}
            for head, z in self.logits(model(*self.inputs(batch))).items():
                out[head].append(z.argmax(1).numpy())
        model.train(was_training)
        return {head: np.concatenate(p) for head, p in out.items()}

    def confusions(self, model: nn.Module, val: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        predicted = self.predict(model, val)
        return {head: confusion(val[head], predicted[head], len(LABELS[head])) for head in self.heads}

    def evaluate(self, model: nn.Module, val: Mapping[str, np.ndarray]) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for head, matrix in self.confusions(model, val).items():
            metrics.update(accuracies(head, matrix))
        return metrics

    def figures(self, folder: Path, model: nn.Module, data: DataConf, val: Mapping[str, list[str]]) -> None:
        """confusion_<head>.png per head and confusion.json (matrices, labels, accuracies)."""
        matrices = self.confusions(model, self.validation_set(data.model_dump(), val))
        summary = {}
        for head, matrix in matrices.items():
            figures.confusion(folder / f"confusion_{head}.png", matrix, LABELS[head], f"{head} (rows: true)")
            summary[head] = {"labels": list(LABELS[head]), "matrix": matrix.tolist(), **accuracies(head, matrix)}
        (folder / "confusion.json").write_text(json.dumps(summary, indent=2) + "\n")

    def tags(self, data: DataConf, metrics: Mapping[str, float]) -> dict[str, str]:
        """Registered-version tags: the domains' training data and the final accuracies."""
        used = {domain: conf.clean for domain, conf in data.domains.items()}
        accuracy = {f"val_{h}_acc": f"{metrics.get(f'val_{h}_acc', np.nan):.4f}" for h in self.heads}
        return {"data": json.dumps(used)[:5000], **accuracy}

    @staticmethod
    def data_list(train: Mapping[str, list[str]]) -> list[str]:
        """The training sources as `<domain>:<url>`, as the weights' sidecar records them."""
        return [f"{domain}:{url}" for domain, urls in train.items() for url in urls]

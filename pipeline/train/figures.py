"""Pictures logged with a training run: a before/after grid and the learning curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and servers
    import matplotlib.pyplot as plt

    return plt


def _show(ax, image: np.ndarray, title: str) -> None:
    """Plot a (C, H, W) float image in [0, 1]."""
    hwc = np.clip(image.transpose(1, 2, 0), 0, 1)
    ax.imshow(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def before_after(path: str | Path, inputs: np.ndarray, outputs: np.ndarray, targets: np.ndarray,
                 psnrs_in: Sequence[float] | None = None, psnrs_out: Sequence[float] | None = None) -> Path:
    """Rows of input | output | target (at most 4), PSNRs in the titles when given."""
    plt = _pyplot()
    rows = min(4, len(inputs))
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.5 * rows), squeeze=False)
    for r in range(rows):
        din = f" {psnrs_in[r]:.2f} dB" if psnrs_in is not None else ""
        dout = f" {psnrs_out[r]:.2f} dB" if psnrs_out is not None else ""
        _show(axes[r, 0], inputs[r], "input" + din)
        _show(axes[r, 1], outputs[r], "output" + dout)
        _show(axes[r, 2], targets[r], "target")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def curves(path: str | Path, history: Mapping[str, Sequence[tuple[int, float]]]) -> Path:
    """One panel per metric: values (step, value) against the epoch."""
    plt = _pyplot()
    names = [n for n in history if history[n]]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4 * max(1, len(names)), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        steps, values = zip(*sorted(history[name]))
        ax.plot(steps, values, marker="o")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def confusion(path: str | Path, matrix: np.ndarray, labels: Sequence[str], title: str) -> Path:
    """A confusion matrix (rows true, columns predicted): cells shaded by the share of their
    row, annotated with the counts."""
    plt = _pyplot()
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = 1.2 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (r, c), count in np.ndenumerate(matrix):
        if count:
            ax.text(c, r, str(count), ha="center", va="center", fontsize=7,
                    color="white" if shares[r, c] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)

"""What every benchmark suite shares: loading images, timing, the row shape."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import psutil

from pipeline.io.codecs import decode


def enhancer_of(model: str, tracking_uri: str | None = None, threads: int = 2):
    """A suite's model entry as an enhancer: a model reference (`bundled:`, `models:/`, a path)
    becomes a LearnedEnhancer, anything else names a classical enhancer."""
    from pipeline.enhance.enhance import build_enhancer

    if ":" in model or "/" in model:
        return build_enhancer("learned", {"model": model, "tracking_uri": tracking_uri, "threads": threads})
    return build_enhancer(model, {})


def enhancers_by_label(models: list[str], tracking_uri: str | None = None) -> dict:
    """{label: enhancer} of a suite's `models`; the label is what rows record (the pinned
    model reference, `classical:<name>` for classical ones)."""
    out = {}
    for model in models:
        enhancer = enhancer_of(model, tracking_uri)
        out[getattr(enhancer, "model_ref", model) or model] = enhancer
    return out


def load_image(path: Path) -> np.ndarray:
    """A dataset image as stored (uint8/uint16, RGB order), through the pipeline's decoder."""
    return decode(path.read_bytes(), max_pixels=10**9).pixels


def timed(fn: Callable, *args, **kwargs):
    """(result, milliseconds) of one call."""
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - started) * 1e3


def bicubic_up(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[:2]
    out = cv2.resize(image, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h * factor, w * factor, *image.shape[2:])


def accuracy(true: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of examples whose predicted label is the true one (0 for none)."""
    return float(np.mean([t == p for t, p in zip(true, predicted)])) if len(true) else 0.0


def confusion(true: Sequence[str], predicted: Sequence[str],
              classes: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The classes present (in `classes` order) and counts[true, predicted]."""
    present = set(true) | set(predicted)
    labels = tuple(c for c in classes if c in present)
    index = {c: i for i, c in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(true, predicted):
        matrix[index[t], index[p]] += 1
    return labels, matrix


def label_tables(true: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Markdown lines: recall, precision and count per true class, then the confusion
    matrix (rows: true class, columns: predicted)."""
    labels, matrix = confusion(true, predicted, classes)
    lines = ["| class | recall | precision | n |", "|---|---|---|---|"]
    for i, c in enumerate(labels):
        n, said = matrix[i].sum(), matrix[:, i].sum()
        if n:
            lines.append(f"| {c} | {matrix[i, i] / n:.3f} | {matrix[i, i] / said if said else 0:.3f} | {n} |")
    lines += ["", "| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [f"| {c} | " + " | ".join(map(str, matrix[i])) + " |" for i, c in enumerate(labels)]
    return lines


def process_tree() -> list[psutil.Process]:
    """This process and every process under it (a local Ray cluster: GCS, raylet, workers)."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


class TreeSampler:
    """Calls `sample()` in a thread every `interval` seconds between enter and exit, and once
    more at exit; subclasses read `process_tree()` there (memory peaks, CPU time)."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

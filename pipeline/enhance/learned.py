"""Learned enhancers: a model reference resolved to weights, run as an `Enhancer`.

Model references (the contract): `bundled:<name>` (weights shipped in `pipeline/weights/`),
`models:/<name>@<alias>` or `models:/<name>/<version>` (MLflow registry), or a path/URL of a
weights file with its `.json` sidecar. The driver resolves aliases to versions before the
run (`pin_reference`), so every actor of a run loads the same version and every row names it.
A `fallback` reference stands in when the registry cannot answer the alias (no tracking store).
Big images are enhanced in overlapping tiles of equal size blended with a linear ramp, so
memory is bounded by the tile size and little work is repeated.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.enhance.base import Enhancer
from pipeline.io import storage
from pipeline.models import spec
from pipeline.models.weights import load_weights, read_meta

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"
log = logging.getLogger("imgenhance")


def _bundled(name: str) -> tuple[Path, str]:
    path = BUNDLED_DIR / f"{name}.pt"
    if not path.is_file():
        known = sorted(p.stem for p in BUNDLED_DIR.glob("*.pt"))
        raise FileNotFoundError(f"no bundled weights {name!r}; bundled: {known}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return path, f"bundled:{name}@sha256:{digest}"


def _use_tracking(tracking_uri: str | None) -> None:
    import mlflow

    from pipeline import tracking

    mlflow.set_tracking_uri(tracking_uri or tracking.tracking_uri())


def _registry(ref: str, tracking_uri: str | None) -> tuple[Path, str]:
    from pipeline import tracking

    _use_tracking(tracking_uri)
    name, version = tracking.resolve_version(ref)
    folder = tracking.download(f"models:/{name}/{version}", tempfile.mkdtemp(prefix="imgenhance-model-"))
    weights = sorted(folder.rglob("*.pt"))
    if not weights:
        raise FileNotFoundError(f"{ref}: the registered artifacts hold no .pt weights")
    return weights[0], f"models:/{name}/{version}"


def _remote(ref: str) -> tuple[Path, str]:
    fs, path = storage.filesystem(ref)
    folder = Path(tempfile.mkdtemp(prefix="imgenhance-model-"))
    local = folder / Path(path).name
    fs.get_file(path, str(local))
    fs.get_file(path + ".json", str(local) + ".json")
    return local, storage.redact(ref)


def resolve(ref: str, tracking_uri: str | None = None) -> tuple[Path, str]:
    """(local weights file, the resolved reference recorded in rows)."""
    if ref.startswith("bundled:"):
        return _bundled(ref[len("bundled:"):])
    if ref.startswith("models:/"):
        return _registry(ref, tracking_uri)
    if "://" not in ref and Path(ref).is_file():
        return Path(ref), str(Path(ref).resolve())
    return _remote(ref)


def pin_reference(ref: str, tracking_uri: str | None = None, fallback: str | None = None) -> str:
    """On the driver: `models:/name@alias` -> `models:/name/<version>`; other forms unchanged.

    With a `fallback` reference (e.g. `bundled:ffdnet_gray`), an alias the registry cannot
    answer (no tracking store configured or reachable, no such model or alias) gives the
    fallback instead, with a warning: a route to `models:/<name>@champion` then runs the
    bundled weights where no registry is set up, and rows say which one ran."""
    if not ref.startswith("models:/") or "@" not in ref:
        return ref
    from mlflow.exceptions import MlflowException

    from pipeline import tracking

    uri = tracking_uri or tracking.tracking_uri()
    if fallback and not tracking.reachable(uri):
        log.warning("%s: no tracking store at %s; using %s", ref, storage.redact(uri), fallback)
        return pin_reference(fallback, tracking_uri)
    _use_tracking(uri)
    try:
        name, version = tracking.resolve_version(ref)
    except MlflowException as exc:
        if not fallback:
            raise
        log.warning("%s: %s; using %s", ref, exc.message, fallback)
        return pin_reference(fallback, tracking_uri)
    return f"models:/{name}/{version}"


def _ramp(size: int, overlap: int) -> np.ndarray:
    """1 in the middle, rising linearly over `overlap` pixels at both ends (never 0)."""
    ramp = np.ones(size, np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap] = np.minimum(ramp[:overlap], edge)
        ramp[-overlap:] = np.minimum(ramp[-overlap:], edge[::-1])
    return ramp


ALIGN = 8  # tiles start on multiples of this: the models' pixel-unshuffle and pooling grids


def _spans(length: int, tile: int, overlap: int, full: bool = False) -> list[tuple[int, int]]:
    """(start, size) of the fewest tiles of at most `tile` pixels that cover `length`, with at
    least 2 x `overlap` pixels shared between neighbours and every start a multiple of ALIGN,
    so each tile sees the whole image's sampling grid. Tiles of equal size (the last may be a
    little shorter) rather than full tiles plus a remainder keep the repeated work small:
    600 px in tiles of 512 (overlap 32) is 340 + 336 px of work, not 512 + 512. `full` keeps
    every tile at `tile` pixels instead: more context per tile for models that judge the
    whole scene (low light), at the cost of more repeated work."""
    if length <= tile:
        return [(0, length)]
    margin = 2 * overlap + 2 * ALIGN  # the overlap, plus what aligning two starts may take from it
    count = math.ceil((length - margin) / (tile - margin))
    size = tile if full else min(tile, math.ceil((length + margin * (count - 1)) / count))
    step = (length - size) / (count - 1)
    starts = [int(i * step) // ALIGN * ALIGN for i in range(count - 1)] + [-(-(length - size) // ALIGN) * ALIGN]
    return [(start, min(size, length - start)) for start in starts]


class LearnedEnhancer(Enhancer):
    """Any restoration model of the zoo behind the `Enhancer` interface."""

    name = "learned"

    def __init__(self, model: str, tracking_uri: str | None = None, tile: int = 512, overlap: int = 32,
                 threads: int = 1, sigma_from_hint: bool = False, fallback: str | None = None,
                 full_tiles: bool = False):
        if overlap < 0 or tile <= 2 * (overlap + ALIGN):
            raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap}) plus {2 * ALIGN}")
        torch.set_num_threads(max(1, threads))
        if fallback:  # the enhance job pins on the driver already; this serves direct use
            model = pin_reference(model, tracking_uri, fallback)
        path, self.model_ref = resolve(model, tracking_uri)
        meta = read_meta(path)
        self.spec = spec(meta["name"])
        self.net = load_weights(path)
        self.channels = int(meta["config"].get("channels", self.spec.channels))
        self.scale, self.consumes = self.spec.scale, self.spec.consumes
        self.tile, self.overlap, self.sigma_from_hint = tile, overlap, sigma_from_hint
        self.full_tiles = full_tiles

    def _inputs(self, x: torch.Tensor, hints: Mapping[str, float]) -> tuple:
        if self.spec.needs_sigma:
            sigma = hints.get("noise_sigma") if self.sigma_from_hint else None
            return (x, None if sigma is None else torch.full((x.shape[0],), float(sigma) / 255.0))
        if self.spec.needs_mask:
            return (x, (x.amax(dim=1, keepdim=True) <= 1.0 / 255).float())  # holes are black
        return (x,)

    @torch.inference_mode()
    def _run(self, x: torch.Tensor, hints: Mapping[str, float]) -> torch.Tensor:
        out = self.net(*self._inputs(x, hints))
        return (out[0] if isinstance(out, tuple) else out).clamp(0, 1)  # (image, attention maps)

    def _tiled(self, x: torch.Tensor, hints: Mapping[str, float]) -> torch.Tensor:
        _, c, h, w = x.shape
        s, o = self.scale, self.overlap
        out = torch.zeros(1, c, h * s, w * s)
        weight = torch.zeros(1, 1, h * s, w * s)
        for top, th in _spans(h, self.tile, o, self.full_tiles):
            for left, tw in _spans(w, self.tile, o, self.full_tiles):
                part = self._run(x[:, :, top:top + th, left:left + tw], hints)
                ramp = torch.from_numpy(np.outer(_ramp(th * s, o * s), _ramp(tw * s, o * s)))[None, None]
                out[:, :, top * s:(top + th) * s, left * s:(left + tw) * s] += part * ramp
                weight[:, :, top * s:(top + th) * s, left * s:(left + tw) * s] += ramp
        return out / weight

    def _planes(self, image: np.ndarray) -> list[np.ndarray]:
        """Split or repeat channels to what the model takes (a gray model runs per channel)."""
        c = image.shape[2]
        if c == self.channels:
            return [image]
        if self.channels == 1:
            return [image[:, :, i:i + 1] for i in range(c)]
        return [np.repeat(image, self.channels, axis=2)]

    def _model(self, plane: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        """The model on one (H, W, C) float plane set, tiled when it is bigger than a tile (unless
        the model's estimate needs the whole picture: `ModelSpec.whole_picture`)."""
        x = torch.from_numpy(np.ascontiguousarray(plane.transpose(2, 0, 1)))[None]
        big = (x.shape[2] > self.tile or x.shape[3] > self.tile) and not self.spec.whole_picture
        y = self._tiled(x, hints) if big else self._run(x, hints)
        return y[0].numpy().transpose(1, 2, 0)

    def _luma_sr(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        """A gray super-resolution model on a colour image: the model upscales luma (Y of
        YCrCb, the channel SR benchmarks measure), the chroma planes are upscaled bicubically:
        a third of the per-channel cost, and chroma carries little detail."""
        ycc = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb)
        h, w = image.shape[0] * self.scale, image.shape[1] * self.scale
        chroma = cv2.resize(ycc[:, :, 1:], (w, h), interpolation=cv2.INTER_CUBIC)
        ycc_up = np.concatenate([self._model(ycc[:, :, :1], hints), chroma], axis=2)
        return cv2.cvtColor(np.ascontiguousarray(ycc_up, dtype=np.float32), cv2.COLOR_YCrCb2RGB)

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        if self.channels == 1 and self.scale > 1 and image.shape[2] == 3:
            return self._luma_sr(image, hints)
        out = np.concatenate([self._model(plane, hints) for plane in self._planes(image)], axis=2)
        if out.shape[2] != image.shape[2]:  # a colour model on a gray image: back to gray
            out = out.mean(axis=2, keepdims=True)
        return out.astype(np.float32)

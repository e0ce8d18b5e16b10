"""Enhance stage: one actor pool per enhancer; each actor enhances only the rows routed to it.

The pools are chained one after another on the same stream. A row not routed to a pool
passes through its actor untouched (a zero-copy slice of the Arrow batch), so no stage
re-runs upstream work and the classifier runs once per image, whatever the number of
routes. Conversions from and to the stored bit depth and alpha handling live here, so an
enhancer stays a float-image function.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.enhance.base import Enhancer
from pipeline.enhance.classical import CLASSICAL
from pipeline.enhance.rows import hints_of, map_rows, pixels_of, store_pixels
from pipeline.imageops import from_float, split_alpha, to_float

# Every kind a route's enhancer may be built from (config `kind`, default the route name).
ENHANCERS: frozenset[str] = frozenset({*CLASSICAL, "learned"})


def enhancer_class(kind: str) -> type[Enhancer]:
    if kind not in ENHANCERS:
        raise KeyError(f"unknown enhancer {kind!r}; known: {sorted(ENHANCERS)}")
    if kind == "learned":
        # Imported on use: torch costs each process seconds of CPU, and the classical pools'
        # actors (most of a run's actors) never need it.
        from pipeline.enhance.learned import LearnedEnhancer

        return LearnedEnhancer
    return CLASSICAL[kind]


def build_enhancer(kind: str, params: dict) -> Enhancer:
    return enhancer_class(kind)(**params)


def resolved_params(kind: str, params: dict, threads: int) -> dict:
    """Constructor params as the actors get them: a learned model's alias pinned to a version
    on the driver (all actors load the same one) and its threads set from its CPUs."""
    if kind != "learned":
        return dict(params)
    from pipeline.enhance.learned import pin_reference

    model = pin_reference(params["model"], params.get("tracking_uri"), params.get("fallback"))
    params = {**params, "model": model, "threads": threads}
    if params["model"].startswith("models:/") and not params.get("tracking_uri"):
        from pipeline.tracking import tracking_uri

        params["tracking_uri"] = tracking_uri()  # actors do not share the driver's env or cwd
    return params


def _resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return alpha
    return cv2.resize(alpha, (alpha.shape[1] * scale, alpha.shape[0] * scale), interpolation=cv2.INTER_LINEAR)


def enhance_image(enhancer: Enhancer, image: np.ndarray, hints: dict) -> np.ndarray:
    """Stored pixels in, stored pixels out: same dtype and channel count, alpha carried over."""
    colour, alpha = split_alpha(image)
    out = from_float(enhancer(to_float(colour), hints), image.dtype, squeeze=colour.ndim == 2)
    if alpha is None:
        return out
    out = out if out.ndim == 3 else out[:, :, None]
    return np.concatenate([out, _resize_alpha(alpha, enhancer.scale)[:, :, None]], axis=2)


class EnhanceActor:
    """Holds one enhancer; Ray runs this class as an actor pool (the model stays loaded).

    `max_pixels` (limits.max_pixels) bounds the output too: x4 super-resolution of a 20 MP
    image would need a 320 MP buffer, so such a row is skipped with the reason instead."""

    def __init__(self, name: str, kind: str, params: dict, threads: int = 1, max_pixels: int | None = None):
        cv2.setNumThreads(threads)
        self.name = name
        self.enhancer = build_enhancer(kind, params)
        self.max_pixels = max_pixels

    def _too_large(self, row: dict) -> bool:
        pixels = row["height"] * row["width"] * self.enhancer.scale**2
        if self.max_pixels is None or pixels <= self.max_pixels:
            return False
        row.update(status="skipped", pixels=None, error=(
            f"enhanced output would be {pixels / 1e6:.1f} MP (x{self.enhancer.scale} by {self.name}), "
            f"over limits.max_pixels = {self.max_pixels / 1e6:.1f} MP"))
        return True

    def _one(self, row: dict) -> None:
        if self._too_large(row):
            return
        out = enhance_image(self.enhancer, pixels_of(row), hints_of(row))
        store_pixels(row, out, "out_pixels")
        row["model"] = self.enhancer.model_ref

    def __call__(self, table: pa.Table) -> pa.Table:
        mine = pc.and_(pc.equal(table["enhancer"], self.name), pc.is_null(table["status"]))
        mine = pc.fill_null(mine, False)
        if not pc.any(mine).as_py():
            return table
        done = map_rows(table.filter(mine), self._one, f"enhance[{self.name}]", timing="t_enhance_ms")
        return pa.concat_tables([table.filter(pc.invert(mine)), done])

"""Measure stage: no-reference metrics before and after, PSNR/SSIM against a reference.

The input pixels are dropped here: after this stage only the output travels on.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.enhance.rows import map_rows, pixels_of
from pipeline.imageops import split_alpha, to_float
from pipeline.io.codecs import DecodeError, decode
from pipeline.io.reference import ReferenceIndex
from pipeline.labels import PASSTHROUGH
from pipeline.metrics import fullref, noref


def _colour(image: np.ndarray) -> np.ndarray:
    return to_float(split_alpha(image)[0])


def _full_reference(row: dict, reference: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
    if reference.shape == before.shape:
        row["psnr_before"], row["ssim_before"] = fullref.psnr(reference, before), fullref.ssim(reference, before)
    if reference.shape == after.shape:
        row["psnr_after"], row["ssim_after"] = fullref.psnr(reference, after), fullref.ssim(reference, after)


def _reference_image(reference: ReferenceIndex, member: str, max_pixels: int) -> np.ndarray | None:
    """The clean image for a member, or None when absent or undecodable (no metric then)."""
    data = reference.load(member)
    try:
        return _colour(decode(data, max_pixels).pixels) if data else None
    except DecodeError:
        return None


def measure_batch(table: pa.Table, reference: ReferenceIndex | None, max_pixels: int) -> pa.Table:
    def one(row: dict) -> None:
        before = _colour(pixels_of(row))
        after = before if row["enhancer"] == PASSTHROUGH else _colour(pixels_of(row, "out_pixels"))
        if row["enhancer"] == PASSTHROUGH:
            row.update(out_height=row["height"], out_width=row["width"], out_channels=row["channels"])
        for name, value in noref.measure(before).items():
            row[f"{name}_before"] = value
        for name, value in noref.measure(after).items():
            row[f"{name}_after"] = value
        ref = _reference_image(reference, row["member"], max_pixels) if reference else None
        if ref is not None:
            _full_reference(row, ref, before, after)
        row["pixels"] = None

    return map_rows(table, one, "measure")

"""Small helpers every stage uses to read and write the pixel columns of a work row."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from pipeline.io.schema import WORK_SCHEMA, to_table
from pipeline.io.storage import redact


def pending(row: dict) -> bool:
    """A row still in flight: no stage has given it a final status yet."""
    return row.get("status") is None


def pixels_of(row: dict, column: str = "pixels") -> np.ndarray:
    """The ndarray stored in a pixel column; shape from height/width/channels (out_* for outputs)."""
    prefix = "out_" if column == "out_pixels" else ""
    h, w, c = row[f"{prefix}height"], row[f"{prefix}width"], row[f"{prefix}channels"]
    shape = (h, w) if c == 1 else (h, w, c)
    return np.frombuffer(row[column], dtype=np.dtype(row["dtype"])).reshape(shape)


def store_pixels(row: dict, image: np.ndarray, column: str = "pixels") -> None:
    """Put an ndarray into a pixel column and record its shape (and dtype for the input)."""
    prefix = "out_" if column == "out_pixels" else ""
    row[column] = np.ascontiguousarray(image).tobytes()
    row[f"{prefix}height"], row[f"{prefix}width"] = int(image.shape[0]), int(image.shape[1])
    row[f"{prefix}channels"] = 1 if image.ndim == 2 else int(image.shape[2])
    if not prefix:
        row["dtype"] = str(image.dtype)


def fail(row: dict, stage: str, exc: BaseException) -> None:
    """Mark a row failed with a readable error and drop its payload."""
    error = redact(f"{stage}: {type(exc).__name__}: {exc}")
    row.update(status="failed", error=error, data=None, pixels=None, out_pixels=None)


def hints_of(row: dict) -> dict[str, float]:
    return json.loads(row["detector_stats"]) if row.get("detector_stats") else {}


def map_rows(table: pa.Table, fn: Callable[[dict], None], stage: str, timing: str | None = None) -> pa.Table:
    """Apply `fn` to each pending row in place; an exception fails that row only."""
    rows = table.to_pylist()
    for row in rows:
        if not pending(row):
            continue
        started = time.perf_counter()
        try:
            fn(row)
        except Exception as exc:  # one bad image must not fail its batch
            fail(row, stage, exc)
        if timing:
            row[timing] = (time.perf_counter() - started) * 1e3
    return to_table(rows, WORK_SCHEMA)

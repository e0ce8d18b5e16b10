"""The one record schema: every stage passes rows of WORK_SCHEMA; Parquet holds RESULT_SCHEMA.

A row is a plain dict keyed by these column names. Stages fill their columns and leave the
rest alone; `to_table` turns rows back into an Arrow table with the exact schema, so no
stage can invent a column or change a type by accident (and all-null columns keep their type).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

# Bump when columns change meaning or are removed; stored in every Parquet file's metadata.
SCHEMA_VERSION = "1"

STATUSES = ("ok", "failed", "skipped")
NO_REFERENCE_METRICS = ("noise", "sharpness", "brightness", "contrast")
FULL_REFERENCE_METRICS = ("psnr", "ssim")
TIMINGS = ("t_read_ms", "t_decode_ms", "t_classify_ms", "t_enhance_ms", "t_write_ms")

_f64, _i32, _str = pa.float64(), pa.int32(), pa.string()

RESULT_FIELDS = [
    pa.field("run_id", _str), pa.field("source", _str), pa.field("member", _str),
    pa.field("key", _str), pa.field("input_sha256", _str), pa.field("input_bytes", pa.int64()),
    pa.field("status", _str), pa.field("error", _str),
    pa.field("domain", _str), pa.field("domain_score", _f64),
    pa.field("degradation", _str), pa.field("degradation_score", _f64),
    pa.field("detector_scores", _str), pa.field("detector_stats", _str),  # JSON objects
    pa.field("enhancer", _str), pa.field("model", _str), pa.field("route_reason", _str),
    pa.field("output_uri", _str), pa.field("format", _str),
    pa.field("height", _i32), pa.field("width", _i32), pa.field("channels", _i32),
    pa.field("dtype", _str),
    pa.field("out_height", _i32), pa.field("out_width", _i32), pa.field("out_channels", _i32),
    *[pa.field(f"{m}_{when}", _f64) for m in NO_REFERENCE_METRICS for when in ("before", "after")],
    *[pa.field(f"{m}_{when}", _f64) for m in FULL_REFERENCE_METRICS for when in ("before", "after")],
    *[pa.field(t, _f64) for t in TIMINGS],
    pa.field("node", _str),
]
RESULT_SCHEMA = pa.schema(RESULT_FIELDS, metadata={"imgenhance.schema_version": SCHEMA_VERSION})

# Columns that only live between stages: raw member bytes and raw pixel buffers.
WORK_SCHEMA = pa.schema(
    RESULT_FIELDS
    + [
        pa.field("data", pa.large_binary()),  # member bytes; kept for passthrough copies
        pa.field("pixels", pa.large_binary()),  # decoded input, C order, shape from height/width/channels
        pa.field("out_pixels", pa.large_binary()),  # enhanced output, shape from out_*
    ]
)
RESULT_COLUMNS = tuple(RESULT_SCHEMA.names)


def to_table(rows: Iterable[dict], schema: pa.Schema = WORK_SCHEMA) -> pa.Table:
    """Rows (dicts, missing keys = null) -> Arrow table with exactly `schema`."""
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def result_rows(table: pa.Table) -> list[dict]:
    """The Parquet columns of a work table, as dicts."""
    return table.select(list(RESULT_COLUMNS)).to_pylist()

"""Write stage: the enhanced image to `<output>/<key>`, then the row leaves as a result.

Keys are sanitised member paths under the source's stem, and the final URL is checked to
lie inside the output prefix before anything is written. Passthrough images are copied
byte for byte; enhanced ones are encoded in the member's own format and bit depth.
"""

from __future__ import annotations

import posixpath
import socket
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from pipeline.enhance.rows import map_rows, pixels_of
from pipeline.io import storage
from pipeline.io.codecs import encode, output_format
from pipeline.io.schema import RESULT_COLUMNS, RESULT_SCHEMA
from pipeline.labels import PASSTHROUGH


def output_url(output: str, key: str) -> str:
    url = storage.join(output, key)
    if not storage.is_within(url, output) or url.rstrip("/") == output.rstrip("/"):
        raise ValueError(f"refusing to write outside the output prefix: {key!r}")
    return url


def write_batch(table: pa.Table, output: str, options: Mapping[str, Any] | None, jpeg_quality: int) -> pa.Table:
    fs, _ = storage.filesystem(output, options)
    node = socket.gethostname()

    def one(row: dict) -> None:
        url = output_url(output, row["key"])
        if row["enhancer"] == PASSTHROUGH:
            payload = row["data"]
        else:
            payload = encode(pixels_of(row, "out_pixels"), output_format(row["member"], row["format"]), jpeg_quality)
        _, path = storage.filesystem(url, options)
        if "://" not in url:
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.pipe_file(path, payload)
        row.update(status="ok", output_uri=storage.redact(url), node=node)

    done = map_rows(table, one, "write", timing="t_write_ms")
    return done.select(list(RESULT_COLUMNS)).cast(RESULT_SCHEMA)

"""Decode stage: member bytes -> pixel buffer with its shape, dtype and format.

Bad bytes become a failed row (a decompression bomb or an image over the pixel limit a
skipped one) with the decoder's reason; the run goes on.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.enhance.rows import map_rows, store_pixels
from pipeline.io.codecs import TooLarge, decode


def decode_batch(table: pa.Table, max_pixels: int) -> pa.Table:
    def one(row: dict) -> None:
        try:
            decoded = decode(row["data"], max_pixels)
        except TooLarge as exc:
            row.update(status="skipped", error=str(exc), data=None)
            return
        store_pixels(row, decoded.pixels)
        row["format"] = decoded.format

    return map_rows(table, one, "decode", timing="t_decode_ms")

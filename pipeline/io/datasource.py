"""A Ray Data datasource: one read task per source, yielding small blocks as it streams.

Each read task walks one archive (or one chunk of loose files) with `readers.iter_members`
and emits a block every `rows_per_block` rows or `bytes_per_block` bytes, so memory stays
bounded whatever the archive size. Members already done by an earlier run into the same
output (same key and input hash, see `jobs`' resume logic) are dropped here, before any
decoding, and counted rather than re-processed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from pipeline.io.readers import ReadLimits, iter_members
from pipeline.io.storage import redact
from pipeline.io.schema import WORK_SCHEMA, to_table
from pipeline.io.sources import Source


def _already_done(row: dict, done: Mapping[str, str | None]) -> bool:
    """A member is done when its key has a row with the same input hash (or both have none)."""
    if row["key"] not in done:
        return False
    return done[row["key"]] == row.get("input_sha256")


def read_blocks(
    source: Source,
    options: Mapping[str, Any] | None,
    limits: ReadLimits,
    done: Mapping[str, str | None],
    run_id: str,
    rows_per_block: int,
    bytes_per_block: int,
) -> Iterator[pa.Table]:
    """Blocks of work rows for one source, skipping members done by an earlier run."""
    rows, size = [], 0
    for row in iter_members(source, options, limits):
        if _already_done(row, done):
            continue
        row["run_id"] = run_id
        rows.append(row)
        size += len(row.get("data") or b"")
        if len(rows) >= rows_per_block or size >= bytes_per_block:
            yield to_table(rows)
            rows, size = [], 0
    if rows:
        yield to_table(rows)


class ArchiveDatasource(Datasource):
    def __init__(
        self,
        sources: list[Source],
        *,
        options: Mapping[str, Any] | None,
        limits: ReadLimits,
        done_by_stem: Mapping[str, Mapping[str, str | None]],
        run_id: str,
        rows_per_block: int = 16,
        bytes_per_block: int = 64 << 20,
    ):
        super().__init__()
        self.sources = sources
        self.options = dict(options or {})
        self.limits = limits
        self.done_by_stem = done_by_stem
        self.run_id = run_id
        self.rows_per_block = rows_per_block
        self.bytes_per_block = bytes_per_block

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(s.size for s in self.sources) or None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None) -> list[ReadTask]:
        return [self._task(source) for source in self.sources]

    def _task(self, source: Source) -> ReadTask:
        args = (
            source, self.options, self.limits, dict(self.done_by_stem.get(source.stem, {})),
            self.run_id, self.rows_per_block, self.bytes_per_block,
        )
        metadata = BlockMetadata(num_rows=None, size_bytes=source.size or None, exec_stats=None, input_files=(redact(source.url),))
        return ReadTask(lambda: read_blocks(*args), metadata, schema=WORK_SCHEMA)

"""The `_results/` folder of an output: Parquet part files, the done-set for re-runs, the summary.

Rows arrive at the driver as the stream finishes them and are written in part files of
`rows_per_file` rows (or every `flush_seconds`), each named by run id and sequence, with
the schema version in the file metadata. A crash loses at most the unflushed rows; their
members are simply done again by the next run (outputs are overwritten, never duplicated),
because a member counts as done only once its row is in a part file.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io import storage
from pipeline.io.schema import RESULT_SCHEMA, SCHEMA_VERSION

RESULTS_DIR = "_results"


def results_url(output: str) -> str:
    return storage.join(output, RESULTS_DIR)


class ResultWriter:
    def __init__(self, output: str, run_id: str, options: Mapping[str, Any] | None, rows_per_file: int, flush_seconds: float):
        self.url = results_url(output)
        self.fs, self.path = storage.filesystem(self.url, options)
        self.run_id, self.rows_per_file, self.flush_seconds = run_id, rows_per_file, flush_seconds
        self.pending: list[pa.Table] = []
        self.pending_rows, self.sequence, self.last_flush = 0, 0, time.monotonic()

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        due = time.monotonic() - self.last_flush >= self.flush_seconds
        if self.pending_rows >= self.rows_per_file or (due and self.pending_rows):
            self.flush()

    def flush(self) -> None:
        if not self.pending_rows:
            return
        table = pa.concat_tables(self.pending).cast(RESULT_SCHEMA)
        self.fs.makedirs(self.path, exist_ok=True)
        name = f"{self.path}/part-{self.run_id}-{self.sequence:05d}.parquet"
        with self.fs.open(name + ".tmp", "wb") as f:
            pq.write_table(table, f)
        self.fs.mv(name + ".tmp", name)  # readers never see half a file
        self.pending, self.pending_rows, self.last_flush = [], 0, time.monotonic()
        self.sequence += 1


def check_writable(output: str, options: Mapping[str, Any] | None) -> None:
    """Write and remove a marker in `_results/`, so a bad output fails before any work."""
    fs, path = storage.filesystem(results_url(output), options)
    fs.makedirs(path, exist_ok=True)
    marker = f"{path}/_write_check"
    fs.pipe_file(marker, b"ok")
    fs.rm(marker)


def part_files(output: str, options: Mapping[str, Any] | None) -> list[str]:
    fs, path = storage.filesystem(results_url(output), options)
    if not fs.exists(path):
        return []
    return sorted(p for p in fs.find(path) if p.endswith(".parquet"))


def read_results(output: str, options: Mapping[str, Any] | None, columns: list[str] | None = None,
                 run_id: str | None = None) -> pa.Table:
    """Every result row of every run into this output, or of run `run_id` only (its part files
    carry the id in their name); an empty table when none."""
    fs, _ = storage.filesystem(results_url(output), options)
    tables = []
    for path in part_files(output, options):
        if run_id is not None and not posixpath.basename(path).startswith(f"part-{run_id}-"):
            continue
        with fs.open(path, "rb") as f:
            tables.append(pq.read_table(f, columns=columns, schema=RESULT_SCHEMA))
    if not tables:
        return RESULT_SCHEMA.empty_table().select(columns) if columns else RESULT_SCHEMA.empty_table()
    return pa.concat_tables(tables)


# Runs that may try a failing member before it counts as done (its failure then stands).
MAX_ATTEMPTS = 3


def retryable(status: str, input_sha256: str | None, height: int | None) -> bool:
    """A failure the next run should try again: anything failed except bytes that were read
    and are no image (an input hash but no decoded size), which fail the same way every time."""
    return status == "failed" and not (input_sha256 is not None and height is None)


def done_by_stem(output: str, options: Mapping[str, Any] | None) -> dict[str, dict[str, str | None]]:
    """{source stem: {key: input hash}} of members no run needs to try again.

    Done: a member with an ok or skipped row; one whose bytes were read but are no image
    (failed with an input hash and no decoded size: corrupt, truncated, not an image, which
    fails the same way every time); and one that failed `MAX_ATTEMPTS` times. Other failures
    are retried by the next run (a read cut short, an S3 error, an enhancer crash, a model's
    NaN), and the retry's row joins the earlier ones: the latest row of a key is its state."""
    table = read_results(output, options, ["key", "input_sha256", "status", "height"])
    done: dict[str, str | None] = {}
    failures: dict[str, list[str | None]] = {}
    for key, sha, status, height in zip(*(table[c].to_pylist() for c in ("key", "input_sha256", "status", "height"))):
        if not retryable(status, sha, height):
            done[key] = sha
        else:
            failures.setdefault(key, []).append(sha)
    for key, shas in failures.items():
        if key not in done and len(shas) >= MAX_ATTEMPTS:
            done[key] = shas[-1]
    by_stem: dict[str, dict[str, str | None]] = {}
    for key, sha in done.items():
        by_stem.setdefault(key.split("/", 1)[0], {})[key] = sha
    return by_stem


def completed_sources(output: str, options: Mapping[str, Any] | None) -> dict[str, str]:
    """{archive URL: fingerprint} of archives earlier runs read to the end without error."""
    fs, path = storage.filesystem(results_url(output), options)
    if not fs.exists(path):
        return {}
    marks: dict[str, str] = {}
    for name in sorted(p for p in fs.find(path) if posixpath.basename(p).startswith("sources-")):
        marks.update(json.loads(fs.cat_file(name)))
    return marks


def mark_sources(output: str, options: Mapping[str, Any] | None, run_id: str, marks: dict[str, str]) -> None:
    """Record archives this run read completely; the next run skips them while unchanged."""
    if marks:
        fs, path = storage.filesystem(results_url(output), options)
        fs.pipe_file(f"{path}/sources-{run_id}.json", json.dumps(marks, indent=1, sort_keys=True).encode())


def write_summary(output: str, options: Mapping[str, Any] | None, summary: dict) -> str:
    """`_results/summary.json` (latest run) and `_results/summary-<run_id>.json`."""
    fs, path = storage.filesystem(results_url(output), options)
    fs.makedirs(path, exist_ok=True)
    text = json.dumps({"schema_version": SCHEMA_VERSION, **summary}, indent=2, sort_keys=True)
    fs.pipe_file(f"{path}/summary-{summary['run_id']}.json", text.encode())
    fs.pipe_file(f"{path}/summary.json", text.encode())
    return storage.join(results_url(output), "summary.json")

"""The run invariant, checked on what is actually stored under an output prefix.

For every output: `key` is unique across all result rows; every failed row has an error
text; every ok row's output object exists; and, when the inputs are given, the keys of the
rows are exactly the members of the inputs (none lost, none extra). The enhance job runs
this at the end of every run; `python -m jobs.audit` runs it on demand.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.io import results, storage
from pipeline.io.readers import ReadLimits, iter_members
from pipeline.io.sources import expand_inputs


@dataclass
class AuditReport:
    rows: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    duplicated_keys: list[str] = field(default_factory=list)
    failed_without_error: list[str] = field(default_factory=list)
    ok_without_output: list[str] = field(default_factory=list)
    expected_members: int | None = None
    missing_keys: list[str] = field(default_factory=list)  # members with no row (lost)
    unexpected_keys: list[str] = field(default_factory=list)  # rows for no member

    @property
    def ok(self) -> bool:
        return not (self.duplicated_keys or self.failed_without_error or self.ok_without_output
                    or self.missing_keys or self.unexpected_keys)

    def as_dict(self, sample: int = 20) -> dict[str, Any]:
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = {"count": len(value), "examples": value[:sample]}
        return {"invariant_holds": self.ok, **data}


def _stored_outputs(output: str, options: Mapping[str, Any] | None, folders: set[str] | None = None) -> set[str]:
    """Objects under the output prefix (or only under its `folders`: first key segments), as
    URLs comparable with `output_uri`."""
    found: list[str] = []
    fs = None
    for prefix in [output] if folders is None else [storage.join(output, f) for f in sorted(folders)]:
        fs, path = storage.filesystem(prefix, options)
        if fs.exists(path):
            found += fs.find(path)
    return {storage.redact(fs.unstrip_protocol(p) if "://" in output else p) for p in found} if fs else set()


def expected_keys(inputs: Sequence[str], options: Mapping[str, Any] | None) -> set[str]:
    """Keys of every member of the inputs, as the readers name them (reads the archives)."""
    limits = ReadLimits(max_member_bytes=0)  # size-skip every member: headers only where possible
    keys = set()
    for source in expand_inputs(inputs, options):
        keys.update(row["key"] for row in iter_members(source, options, limits))
    return keys


def audit(output: str, options: Mapping[str, Any] | None = None, inputs: Sequence[str] | None = None,
          run_id: str | None = None) -> AuditReport:
    """The invariant over every row in `output`. With `run_id`, the outputs of that run's rows
    only are checked for existence (and only the folders they lie in are listed): the end of
    a nightly run then lists what it wrote, not the whole archive of earlier nights. Keys stay
    checked for duplicates across all runs."""
    output = storage.normalize_url(output)
    table = results.read_results(output, options, ["key", "status", "error", "output_uri", "run_id"])
    rows = table.to_pylist()
    counts = collections.Counter(r["key"] for r in rows)
    checked = [r for r in rows if run_id is None or r["run_id"] == run_id]
    folders = None if run_id is None else {r["key"].split("/", 1)[0] for r in checked if r["status"] == "ok"}
    stored = _stored_outputs(output, options, folders)
    report = AuditReport(
        rows=len(rows),
        by_status=dict(collections.Counter(r["status"] for r in rows)),
        duplicated_keys=sorted(k for k, n in counts.items() if n > 1),
        failed_without_error=[r["key"] for r in rows if r["status"] == "failed" and not r["error"]],
        ok_without_output=[r["key"] for r in checked if r["status"] == "ok" and r["output_uri"] not in stored],
    )
    if inputs:
        expected = expected_keys(inputs, options)
        report.expected_members = len(expected)
        report.missing_keys = sorted(expected - counts.keys())
        report.unexpected_keys = sorted(counts.keys() - expected)
    return report

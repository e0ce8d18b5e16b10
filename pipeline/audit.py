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


def _stored_outputs(output: str, options: Mapping[str, Any] | None) -> set[str]:
    """Every object under the output prefix, as URLs comparable with `output_uri`."""
    fs, path = storage.filesystem(output, options)
    if not fs.exists(path):
        return set()
    found = fs.find(path)
    return {storage.redact(fs.unstrip_protocol(p) if "://" in output else p) for p in found}


def expected_keys(inputs: Sequence[str], options: Mapping[str, Any] | None) -> set[str]:
    """Keys of every member of the inputs, as the readers name them (reads the archives)."""
    limits = ReadLimits(max_member_bytes=0)  # size-skip every member: headers only where possible
    keys = set()
    for source in expand_inputs(inputs, options):
        keys.update(row["key"] for row in iter_members(source, options, limits))
    return keys


def audit(output: str, options: Mapping[str, Any] | None = None, inputs: Sequence[str] | None = None) -> AuditReport:
    output = storage.normalize_url(output)
    table = results.read_results(output, options, ["key", "status", "error", "output_uri"])
    rows = table.to_pylist()
    counts = collections.Counter(r["key"] for r in rows)
    stored = _stored_outputs(output, options)
    report = AuditReport(
        rows=len(rows),
        by_status=dict(collections.Counter(r["status"] for r in rows)),
        duplicated_keys=sorted(k for k, n in counts.items() if n > 1),
        failed_without_error=[r["key"] for r in rows if r["status"] == "failed" and not r["error"]],
        ok_without_output=[r["key"] for r in rows if r["status"] == "ok" and r["output_uri"] not in stored],
    )
    if inputs:
        expected = expected_keys(inputs, options)
        report.expected_members = len(expected)
        report.missing_keys = sorted(expected - counts.keys())
        report.unexpected_keys = sorted(counts.keys() - expected)
    return report

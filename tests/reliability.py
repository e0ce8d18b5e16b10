"""Figures of the fault and hostile-input tests, and the table of RELIABILITY.md built from them.

Each test ends with `check(...)`: it audits the output against its inputs (pipeline.audit),
counts what escaped the output prefix, asserts lost = duplicated = escaped = 0 and, when
`IMGENHANCE_RELIABILITY_OUT` names a folder, writes one JSON record per case there. Then

    IMGENHANCE_RELIABILITY_OUT=/tmp/rel .venv/bin/python -m pytest tests/test_faults.py tests/test_hostile.py
    IMGENHANCE_RELIABILITY_OUT=/tmp/rel .venv/bin/python -m tests.checkpoint_probe   # Ray Data checkpointing vs ours
    .venv/bin/python -m tests.reliability /tmp/rel            # rewrites the tables in RELIABILITY.md

so every figure in RELIABILITY.md comes from a test run, never from typing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.audit import audit
from pipeline.io import results

ENV = "IMGENHANCE_RELIABILITY_OUT"
REPORT = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
PROBE, PROBE_BEGIN, PROBE_END = "checkpoint-probe.json", "<!-- checkpoint:begin -->", "<!-- checkpoint:end -->"


def escaped(found: Iterable[str], allowed: Sequence[str]) -> list[str]:
    """Paths in `found` that lie under none of the `allowed` prefixes (inputs, output)."""
    prefixes = [a.rstrip("/") + "/" for a in allowed]
    return sorted(p for p in found if not any(p.startswith(a) for a in prefixes))


def _narrow(report, output: str, options, prefix: str) -> tuple[int, dict, list[str]]:
    """(rows, by status, invariant violations) of the rows whose key starts with `prefix`."""
    table = results.read_results(output, options, ["key", "status"])
    rows = [r for r in table.to_pylist() if r["key"].startswith(prefix)]
    faults = [k for name in ("duplicated_keys", "failed_without_error", "ok_without_output", "missing_keys",
                             "unexpected_keys") for k in getattr(report, name) if k.startswith(prefix)]
    return len(rows), dict(collections.Counter(r["status"] for r in rows)), faults


def check(case: str, kind: str, output: str, inputs: Sequence[str], options: Mapping[str, Any] | None,
          stray: Sequence[str], detail: str = "", expected: int | None = None, prefix: str = "") -> dict:
    """Audit `output` against `inputs`, assert the invariant, record the figures; returns them.

    `stray` lists files or objects found outside the input and output prefixes (see
    `escaped`). With `prefix` (a source's stem + '/'), `inputs` are that source alone and
    the figures count only its rows: one run then gives a record per hostile case.
    """
    report = audit(output, options, inputs)
    rows, by_status, faults = _narrow(report, output, options, prefix)
    record = {
        "case": case, "kind": kind, "expected": expected if expected is not None else report.expected_members,
        "written": rows, "lost": len([k for k in report.missing_keys if k.startswith(prefix)]),
        "duplicated": len([k for k in report.duplicated_keys if k.startswith(prefix)]),
        "escaped": len(stray), "by_status": by_status, "detail": detail,
        "invariant": not faults, "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    folder = os.environ.get(ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", case.lower()).strip("-")
        (Path(folder) / f"{kind}-{slug}.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    assert not faults, (faults, report.as_dict())
    assert record["written"] == record["expected"] and not stray, record
    return record


def table(records: Sequence[dict]) -> str:
    """Markdown table of the records, faults first, in case order."""
    lines = ["| kind | case | rows expected | rows written | lost | duplicated | escaped | by status | what happened |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["kind"] != "fault", r["case"])):
        status = ", ".join(f"{k} {v}" for k, v in sorted(r["by_status"].items()))
        detail = r["detail"].replace("|", "\\|")
        lines.append(f"| {r['kind']} | {r['case']} | {r['expected']} | {r['written']} | {r['lost']} | "
                     f"{r['duplicated']} | {r['escaped']} | {status} | {detail} |")
    return "\n".join(lines)


def probe_table(probe: dict) -> str:
    """Markdown table of tests/checkpoint_probe.py's figures."""
    lines = [f"Measured {probe['date']} (`python -m tests.checkpoint_probe`): the second run over two archives "
             f"({probe['runs'][0]['total_rows']} members in all), every member done by the first run.", "",
             "| approach | rows the read stage emitted | rows processed again | seconds | checkpoint files | note |",
             "|---|---|---|---|---|---|"]
    for r in probe["runs"]:
        lines.append(f"| {r['approach']} | {r['read_rows']} | {r['processed_rows']} | {r['seconds']} | "
                     f"{r['checkpoint_files']} | {r['note']} |")
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, body: str) -> str:
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[:start] + f"{begin}\n{body}\n{end}" + text[stop:]


def render(folder: Path, report: Path = REPORT) -> str:
    """RELIABILITY.md with the text between the markers replaced by the records' tables."""
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != PROBE]
    if not records:
        raise SystemExit(f"no records in {folder}: run the tests with {ENV}={folder}")
    dates = sorted(r["date"] for r in records)
    text = _replace(report.read_text(), BEGIN, END,
                    f"Last run: {dates[0]} to {dates[-1]}, {len(records)} cases.\n\n{table(records)}")
    if (folder / PROBE).is_file():
        text = _replace(text, PROBE_BEGIN, PROBE_END, probe_table(json.loads((folder / PROBE).read_text())))
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Rewrite the figures table of RELIABILITY.md from test records.")
    parser.add_argument("folder", type=Path, help=f"the folder the tests wrote records to (${ENV})")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    args.report.write_text(render(args.folder, args.report))
    print(f"wrote {args.report}")

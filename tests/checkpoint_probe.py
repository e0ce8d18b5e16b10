"""Measure Ray Data's checkpointing against the job's own resume, on this pipeline's shape.

    python -m tests.checkpoint_probe --out FOLDER     # or IMGENHANCE_RELIABILITY_OUT=FOLDER

Three ways to run the same flow twice over the same two archives (8 images each), the
second run after the first completed (what a resume sees for the finished part):

- `current` : the job as it is (rows stream to the driver, which writes `_results/`), with
  `DataContext.checkpoint_config` set: does Ray Data apply it at all?
- `datasink`: the same stages ending in `write_parquet` (a Datasink, the shape Ray Data's
  checkpointing supports), checkpoint id column `key`, kept after success.
- `ours`    : the job's resume: done-set by key + input hash, unchanged archives unopened.

For each: rows the second run's read stage produced (bytes fetched from storage and pushed
into the object store), rows it processed after filtering, and seconds. Writes the figures
as `checkpoint-probe.json` for `python -m tests.reliability`.
"""

from __future__ import annotations

import argparse
import json
import os
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

import ray
from ray.data.checkpoint import CheckpointConfig

from pipeline import raycluster
from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from tests.conftest import add_tar_member, noisy, png_bytes, small

IMAGES = ("camera", "moon", "coins", "astronaut", "coffee", "chelsea", "page", "text")


def _inputs(folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    for stem in ("a", "b"):
        with tarfile.open(folder / f"{stem}.tar", "w") as tar:
            for i, name in enumerate(IMAGES):
                add_tar_member(tar, f"{stem}{i}.png", png_bytes(noisy(small(name, 96), 20, seed=i)))
    return [str(folder / "a.tar"), str(folder / "b.tar")]


def _config(folder: Path):
    folder.mkdir(parents=True)
    (folder / "routes.yaml").write_text("rules:\n  - {degradation: noise, enhancer: nlmeans}\n")
    (folder / "enhance.yaml").write_text("routes: routes.yaml\ntracking: {enabled: false}\n")
    return load_enhance_config(folder / "enhance.yaml")


def _operator_rows(stats: str, name: str, which: str = "output") -> int:
    """'Total <which> num rows' in the stats section of operator `name` (0 when it saw none)."""
    if name not in stats:
        return 0
    section = stats.split(name, 1)[1]
    line = next((l for l in section.splitlines() if f"Total {which} num rows" in l), None)
    return int(line.split(":")[1].split()[0]) if line else 0


def _with_checkpoint(path: Path, fn):
    context = ray.data.DataContext.get_current()
    context.checkpoint_config = CheckpointConfig(id_column="key", checkpoint_path=str(path),
                                                 delete_checkpoint_on_success=False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
        return result, [str(w.message) for w in caught if "checkpoint" in str(w.message).lower()]
    finally:
        context.checkpoint_config = None


def probe_current(inputs, root: Path, config, routes) -> dict:
    out = str(root / "current")

    def once():
        plan = flow.plan(inputs, out, config)
        plan = flow.RunPlan(plan.run_id, plan.sources, plan.output, None, {})  # resume off: Ray alone
        ds = flow.build_dataset(plan, config, routes)
        started = time.monotonic()
        rows = sum(b.num_rows for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))
        return rows, time.monotonic() - started, ds.stats()

    once_ckpt = lambda: _with_checkpoint(root / "ckpt-current", once)  # noqa: E731
    once_ckpt()
    (rows, seconds, stats), notes = once_ckpt()
    return {"approach": "current shape + checkpoint_config", "read_rows": _operator_rows(stats, "ReadArchive"),
            "processed_rows": rows, "seconds": round(seconds, 1),
            "note": notes[0] if notes else "no warning", "checkpoint_files": _count(root / "ckpt-current")}


def probe_datasink(inputs, root: Path, config, routes) -> dict:
    out = root / "datasink"

    def once():
        plan = flow.plan(inputs, str(out), config)
        plan = flow.RunPlan(plan.run_id, plan.sources, plan.output, None, {})
        ds = flow.build_dataset(plan, config, routes)
        started = time.monotonic()
        ds.write_parquet(str(out / "_results"))
        return time.monotonic() - started, ds.stats()

    _with_checkpoint(root / "ckpt-sink", once)
    before = _count(out / "_results")
    (seconds, stats), notes = _with_checkpoint(root / "ckpt-sink", once)
    filtered = _operator_rows(stats, "MapBatches(decode_batch)", "input")
    return {"approach": "write_parquet datasink + checkpoint_config (id: key)",
            "read_rows": _operator_rows(stats, "ReadArchive"), "processed_rows": filtered,
            "seconds": round(seconds, 1), "note": notes[0] if notes else "checkpoint applied",
            "checkpoint_files": _count(root / "ckpt-sink"), "new_result_files": _count(out / "_results") - before}


def probe_ours(inputs, root: Path, config, routes) -> dict:
    out = str(root / "ours")
    flow.run(flow.plan(inputs, out, config), config, routes)
    started = time.monotonic()
    plan = flow.plan(inputs, out, config)
    summary = flow.run(plan, config, routes)
    # A changed archive is read again, its done members dropped inside the read task.
    os.utime(inputs[0], (time.time() + 10, time.time() + 10))
    plan_touched = flow.plan(inputs, out, config)
    ds = flow.build_dataset(plan_touched, config, routes)
    touched = sum(b.num_rows for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))
    return {"approach": "ours: done-set (key + input hash), unchanged archives unopened",
            "read_rows": 0, "processed_rows": summary["rows"], "seconds": round(time.monotonic() - started, 1),
            "note": f"{summary['archives_unchanged_skipped']} archives skipped unopened; after touching one, "
                    f"its read task dropped all {len(IMAGES)} done members and emitted {touched} rows",
            "checkpoint_files": 0}


def _count(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main(out: Path) -> list[dict]:
    raycluster.init(None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = _inputs(root / "in")
        config, routes = _config(root / "conf")
        records = [probe(inputs, root, config, routes) for probe in (probe_current, probe_datasink, probe_ours)]
    for r in records:
        r["total_rows"] = 2 * len(IMAGES)
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoint-probe.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "runs": records},
                                                          indent=1))
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("IMGENHANCE_RELIABILITY_OUT"),
                        help="folder for checkpoint-probe.json (default $IMGENHANCE_RELIABILITY_OUT)")
    args = parser.parse_args()
    if args.out is None:
        parser.error("give --out or set IMGENHANCE_RELIABILITY_OUT")
    for record in main(Path(args.out)):
        print(json.dumps(record))

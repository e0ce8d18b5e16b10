"""Run benchmark suites: Parquet rows per image and setting, and BENCHMARKS.md regenerated.

    python -m jobs.benchmark --suite classical
    python -m jobs.benchmark --suite standard          # every suite whose data is present
    python -m jobs.benchmark --report-only             # rebuild BENCHMARKS.md from the Parquet

Suites live in conf/benchmarks.yaml; data comes from IMGENHANCE_DATA (default ../shared/data).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from pipeline.bench import classical, denoise, detector, pairs, realism
from pipeline.bench.report import render, write_suite
from pipeline.config import CONF_DIR, load_yaml
from pipeline.datasets import REPO_ROOT

log = logging.getLogger("imgenhance.bench")

# name -> (description, run(conf, seed) -> rows, summarize(table) -> markdown)
SUITES = {
    "classical": ("classical enhancers on their own degradation", classical.run, classical.summarize),
    "denoise-gray": ("gray denoisers against the published BSD68 table", denoise.run, denoise.summarize),
    "detector": ("statistics-based degradation detector accuracy", detector.run, detector.summarize),
    "pairs": ("paired-data builder rate", pairs.run, pairs.summarize),
    "realism": ("synthetic weather vs real weather data", realism.run, realism.summarize),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", action="append", default=[], help=f"one of {sorted(SUITES)} or 'standard' (all)")
    parser.add_argument("--config", default=str(CONF_DIR / "benchmarks.yaml"))
    parser.add_argument("--report-only", action="store_true", help="only regenerate BENCHMARKS.md")
    parser.add_argument("--report", default=str(REPO_ROOT / "BENCHMARKS.md"), help="markdown file to regenerate")


def _run_suite(name: str, conf: dict, folder: Path, command: str) -> None:
    _, run, summarize = SUITES[name]
    try:
        rows = run(conf, int(conf.get("seed", 0)))
    except FileNotFoundError as exc:
        log.warning("suite %s skipped: %s", name, exc)
        return
    table = write_suite(folder / f"{name}.parquet", rows, command, REPO_ROOT)
    print(f"\n## {name}\n{summarize(table)}")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = load_yaml(args.config)
    folder = REPO_ROOT / config.get("output", "benchmarks")  # absolute paths stay as they are
    names = sorted(SUITES) if "standard" in args.suite else args.suite
    unknown = [n for n in names if n not in SUITES]
    if unknown or not (names or args.report_only):
        print(f"error: unknown or no suite {unknown}; choose from {sorted(SUITES)} or 'standard'", file=sys.stderr)
        return 2
    for name in names if not args.report_only else []:
        _run_suite(name, config["suites"][name], folder, f"python -m jobs.benchmark --suite {shlex.quote(name)}")
    summaries = {n: (d, s) for n, (d, _, s) in SUITES.items()}
    Path(args.report).write_text(render(folder, summaries))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

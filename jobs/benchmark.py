"""Run benchmark suites: Parquet rows per image and setting, and BENCHMARKS.md regenerated.

    python -m jobs.benchmark --suite classical
    python -m jobs.benchmark --suite standard          # every suite whose data is present
    python -m jobs.benchmark --report-only             # rebuild BENCHMARKS.md from the Parquet
    python -m jobs.benchmark --suite denoise-gray --model models:/ffdnet-gray/6 --model bm3d

Suites live in conf/benchmarks.yaml; data comes from IMGENHANCE_DATA (default ../shared/data).
`--model` replaces the models of suites that take model references. Each (model, suite) is
also an MLflow run (experiment imgenhance-benchmark; --tracking-uri, else MLFLOW_TRACKING_URI,
else ./mlflow.db; --no-tracking turns it off) with the aggregate metrics and the Parquet.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.bench import (autoencoder, classical, classifier, denoise, detector, jpeg, memory, mnist, multitask, pairs,
                             realism, restore, runs, sr, throughput, tiling)
from pipeline.bench.report import render, write_suite
from pipeline.config import CONF_DIR, Strict, load_yaml, validate
from pipeline.datasets import REPO_ROOT

log = logging.getLogger("imgenhance.bench")

# name -> (description, run(conf, seed) -> rows, summarize(table) -> markdown)
SUITES = {
    "ae-experiment": ("seed 004's autoencoders: trained on noisy vs fine-tuned vs classical", autoencoder.run,
                      autoencoder.summarize),
    "classical": ("classical enhancers on their own degradation", classical.run, classical.summarize),
    "classifier": ("the classify stage on held-out pictures: domain and degradation accuracy", classifier.run,
                   classifier.summarize),
    "denoise-color": ("colour denoisers against the published CBSD68 table", denoise.run, denoise.summarize),
    "denoise-gray": ("gray denoisers against the published BSD68 table", denoise.run, denoise.summarize),
    "derain": ("real rain and raindrop pairs: input vs classical vs models", restore.run, restore.summarize),
    "detector": ("statistics-based degradation detector accuracy", detector.run, detector.summarize),
    "jpeg-table": ("seed 003's Table I: JPEG quality vs PSNR, SSIM and size, and what deblocking wins back",
                   jpeg.run, jpeg.summarize),
    "lowlight": ("synthetic low light on held-out images: the classical route vs models", restore.run,
                 restore.summarize),
    "memory": ("peak memory of the enhance job, small vs 10x larger archive", memory.run, memory.summarize),
    "mnist-noise": ("seed 004's three noise types on held-out MNIST digits", mnist.run, mnist.summarize),
    "multitask": ("multitask vs single-task classifiers, same data and budget", multitask.run, multitask.summarize),
    "pairs": ("paired-data builder rate", pairs.run, pairs.summarize),
    "realism": ("synthetic weather vs real weather data", realism.run, realism.summarize),
    "sr-x4": ("x4 super-resolution on Set5 and Set14 (Y channel), against the published table", sr.run,
              sr.summarize),
    "tiling": ("tiled vs whole-image enhancement of big 16-bit scenes: seams and memory", tiling.run,
               tiling.summarize),
    "weather-synthetic": ("our rain, raindrops, snow and haze on held-out images: input vs classical vs models",
                          restore.run, restore.summarize),
    "throughput": ("enhance job vs model-only ceiling vs a naive loop", throughput.run, throughput.summarize),
    "throughput-large": ("the same three ways on megapixel frames", throughput.run, throughput.summarize),
}

# Keys a suite's run() reads without a default (the others have defaults in the suite's code).
REQUIRED_KEYS = {"classical": ("dataset", "cases"), "classifier": ("train_config", "models"), "denoise-gray": ("models", "datasets", "sigmas", "protocols"),
                 "denoise-color": ("models", "datasets", "sigmas", "protocols", "channels"),
                 "mnist-noise": ("source", "noises"), "sr-x4": ("models", "datasets"),
                 "jpeg-table": ("datasets", "qualities"), "derain": ("cases",), "lowlight": ("cases",),
                 "weather-synthetic": ("cases",),
                 "ae-experiment": ("source", "noises", "baselines", "architectures", "storage_path")}


class SuiteConf(BaseModel):
    """One suite's entry: a description plus the suite's own keys, read by its run()."""

    model_config = ConfigDict(extra="allow", frozen=True)
    description: str = ""
    seed: int = 0


class BenchmarksConf(Strict):
    """conf/benchmarks.yaml (or a smaller file for --config): entries only for suites of SUITES."""

    output: str = "benchmarks"
    suites: dict[str, SuiteConf]
    compare: dict[str, Any] = Field(default_factory=dict)
    """Rules of the compare job, validated there (pipeline.compare.CompareConf)."""

    @model_validator(mode="after")
    def _every_suite_runnable(self) -> BenchmarksConf:
        unknown = sorted(set(self.suites) - set(SUITES))
        if unknown:
            raise ValueError(f"unknown suites {unknown}; valid: {sorted(SUITES)}")
        for name, suite in self.suites.items():
            missing = [k for k in REQUIRED_KEYS.get(name, ()) if k not in (suite.model_extra or {})]
            if missing:
                raise ValueError(f"suite {name} lacks {missing}")
        return self


def load_config(path: str | Path) -> dict:
    """The benchmarks config as a dict (what the suites read), validated by BenchmarksConf."""
    data = load_yaml(path)
    validate(BenchmarksConf, data, str(path))
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", action="append", default=[], help=f"one of {sorted(SUITES)} or 'standard' (all)")
    parser.add_argument("--config", default=str(CONF_DIR / "benchmarks.yaml"))
    parser.add_argument("--report-only", action="store_true", help="only regenerate BENCHMARKS.md")
    parser.add_argument("--report", help="markdown file to regenerate (default: the repository's BENCHMARKS.md for "
                        "the default output folder, else BENCHMARKS.md inside the config's output folder)")
    parser.add_argument("--model", action="append", default=[], help="model reference or enhancer to measure "
                        "instead of the suite's `models` (suites that take models only)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI: runs are logged there and `models:/` "
                        "references resolve there (default MLFLOW_TRACKING_URI, else ./mlflow.db)")
    parser.add_argument("--no-tracking", action="store_true", help="no MLflow runs")


def _run_suite(name: str, conf: dict, folder: Path, command: str, args: argparse.Namespace) -> None:
    _, run, summarize = SUITES[name]
    try:
        rows = run(conf, int(conf.get("seed", 0)))
    except FileNotFoundError as exc:
        log.warning("suite %s skipped: %s", name, exc)
        return
    path = folder / f"{name}.parquet"
    table = write_suite(path, rows, command, REPO_ROOT)
    print(f"\n## {name}\n{summarize(table)}")
    if not args.no_tracking:
        for model, run_id in runs.log_suite(table, name, command, path, args.tracking_uri).items():
            print(f"MLflow run {run_id}: {name} / {model}")


def _suite_conf(name: str, conf: dict, models: list[str], config_path: str | None = None) -> tuple[dict, str]:
    """The suite's config with --model applied, and the command that reproduces it (with
    --config when it is not the default file, and IMGENHANCE_DATA when set)."""
    import os

    command = f"python -m jobs.benchmark --suite {shlex.quote(name)}"
    command += "".join(f" --model {shlex.quote(m)}" for m in models)
    if config_path and Path(config_path).resolve() != (CONF_DIR / "benchmarks.yaml").resolve():
        command += f" --config {shlex.quote(config_path)}"
    if os.environ.get("IMGENHANCE_DATA"):
        command = f"IMGENHANCE_DATA={shlex.quote(os.environ['IMGENHANCE_DATA'])} " + command
    if not models:
        return conf, command
    if "models" not in conf:
        raise ValueError(f"suite {name} does not take --model")
    return {**conf, "models": models}, command


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = load_config(args.config)
    folder = REPO_ROOT / config.get("output", "benchmarks")  # absolute paths stay as they are
    names = sorted(SUITES) if "standard" in args.suite else args.suite
    unknown = [n for n in names if n not in SUITES]
    if unknown or not (names or args.report_only):
        print(f"error: unknown or no suite {unknown}; choose from {sorted(SUITES)} or 'standard'", file=sys.stderr)
        return 2
    try:
        confs = {name: _suite_conf(name, config["suites"][name], args.model, args.config) for name in names}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in names if not args.report_only else []:
        conf, command = confs[name]
        if args.tracking_uri:  # where `models:/` references resolve, as where the runs are logged
            conf = {**conf, "tracking_uri": args.tracking_uri}
        _run_suite(name, conf, folder, command, args)
    summaries = {n: (d, s) for n, (d, _, s) in SUITES.items()}
    report_path(args.report, folder).write_text(render(folder, summaries))
    if not args.report_only:
        for line in ratio_lines(names, folder):
            print(line)
    return 0


def report_path(report: str | None, folder: Path) -> Path:
    """Where the markdown report goes: `report` if given; else the repository's BENCHMARKS.md
    when the Parquet folder is the repository's `benchmarks/`, else beside that folder's Parquet.
    A config with another output (a quick `/tmp` copy) then never overwrites BENCHMARKS.md with
    a report of only its own suites."""
    if report:
        return Path(report)
    if folder.resolve() == (REPO_ROOT / "benchmarks").resolve():
        return REPO_ROOT / "BENCHMARKS.md"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "BENCHMARKS.md"


def ratio_lines(names: list[str], folder: Path) -> list[str]:
    """The ratio lines of the throughput suites run, `throughput: ...` last (the issue's contract)."""
    import pyarrow.parquet as pq

    return [throughput.ratio_line(pq.read_table(folder / f"{name}.parquet"), name)
            for name in ("throughput-large", "throughput") if name in names and (folder / f"{name}.parquet").exists()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

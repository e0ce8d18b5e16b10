"""Enhance image archives: classify, route and enhance every member, write images + Parquet.

    python -m jobs.enhance --input s3://bucket/archives/*.tar --output s3://bucket/enhanced
    python -m jobs.enhance                       # the bundled sample into ./out
    imgenhance run --input data/ --output out --set limits.max_pixels=1e8

Exit status: 0 when the run completed (failed members are rows saying why), 2 when the
job cannot run (bad config, no input, unreachable storage).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from pipeline import raycluster, report, tracking
from pipeline.config import ConfigError, load_enhance_config
from pipeline.enhance import flow
from pipeline.io import storage
from pipeline.io.sources import InputError

log = logging.getLogger("imgenhance")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", action="extend", help="archive, folder, glob or image URLs (any fsspec URL); default: the bundled sample")
    parser.add_argument("--output", help="output prefix (default ./out)")
    parser.add_argument("--reference", help="clean images (folder, zip or tar) matched by member path: fills PSNR/SSIM")
    parser.add_argument("--config", help="enhance config YAML (default conf/enhance.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--since", type=_date, help="only inputs modified at or after this date/time (ISO, UTC)")
    parser.add_argument("--dry-run", action="store_true", help="list what would run and predicted routes for a sample; process nothing")


def _date(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _dry_run(plan, config, routes) -> int:
    print(f"dry run {plan.run_id}: {len(plan.sources)} sources to read, {plan.unchanged} unchanged archives skipped, "
          f"{sum(len(v) for v in plan.done.values())} rows from earlier runs")
    for src in plan.sources:
        print(f"  {src.kind:5} {storage.redact(src.url)} -> {src.stem}/ ({src.size} bytes"
              + (f", {len(src.members)} files)" if src.kind == "loose" else ")"))
    print("predicted routes for a sample:")
    for row in flow.preview(plan, config, routes):
        route = row["enhancer"] or f"{row['status']}: {row['error']}"
        print(f"  {row['key']}: {row['degradation']} ({row['degradation_score'] or 0:.2f}) -> {route}")
    return 0


def _defaults(args: argparse.Namespace) -> None:
    """No --input: the bundled sample (built on first use) with its clean reference."""
    if not args.input:
        from pipeline import sample

        built = sample.ensure_sample()
        args.input, args.reference = [built.degraded], args.reference or built.reference
    args.output = args.output or "out"


def _print_summary(summary: dict) -> None:
    print(f"run {summary['run_id']}: {summary['rows']} rows in {summary['seconds']} s ({summary['images_per_s']} images/s)")
    print("  by status: " + ", ".join(f"{k}={v}" for k, v in sorted(summary["by_status"].items())))
    print("  by route:  " + ", ".join(f"{k}={v}" for k, v in sorted(summary["by_route"].items())))
    audit = summary["audit"]
    verdict = "invariant holds" if audit["invariant_holds"] else f"INVARIANT VIOLATED: {audit}"
    print(f"  audit:     {verdict} ({audit['rows_in_output']} rows in the output)")
    print(f"  summary:   {summary['summary_uri']}")
    print(f"  report:    {summary.get('report_uri') or 'not written (see the warning above)'}")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config, routes = load_enhance_config(args.config, args.overrides)
        config = flow.pin_classify(config)
        params = flow.check(config, routes)
        _defaults(args)
        plan = flow.plan(args.input, args.output, config, args.reference, args.since, probe_output=not args.dry_run)
        if args.dry_run:
            return _dry_run(plan, config, routes)
    except (ConfigError, InputError, ValueError, OSError, KeyError) as exc:
        return _cannot_run(str(exc), args)
    except Exception as exc:  # storage clients raise their own types (botocore, aiohttp)
        return _cannot_run(f"storage unreachable or unusable: {type(exc).__name__}: {exc}", args)
    log.info("run %s: %d sources -> %s", plan.run_id, len(plan.sources), storage.redact(plan.output))
    raycluster.init(args.address or config.ray.address, dashboard=config.ray.dashboard)
    summary = flow.run(plan, config, routes, params=params)
    if config.tracking.enabled:
        params = {"inputs": [storage.redact(u) for u in args.input], "output": storage.redact(plan.output),
                  "config": config.model_dump(exclude={"storage"}), "routes": routes.model_dump()}
        html = report.load(plan.output, config.storage.options) if summary.get("report_uri") else None
        summary["mlflow_run_id"] = tracking.log_enhance_run(summary, params, config.tracking.experiment, html)
    _print_summary(summary)
    log.debug(json.dumps(summary))
    return 0


def _cannot_run(message: str, args: argparse.Namespace) -> int:
    print(f"error: {storage.redact(message, storage.secret_values(config_options(args)))}", file=sys.stderr)
    return 2


def config_options(args: argparse.Namespace) -> dict:
    """Storage options as far as they could be read, for redacting error messages."""
    try:
        return dict(load_enhance_config(args.config, args.overrides)[0].storage.options)
    except Exception:
        return {}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

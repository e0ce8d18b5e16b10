"""Compare registered versions of a model on its benchmark suite; with --promote, guard `champion`.

    python -m jobs.compare --model ffdnet-gray                        # every version, suite from config
    python -m jobs.compare --model ffdnet-gray --version 5 --version 6 --suite denoise-gray
    python -m jobs.compare --model ffdnet-gray --promote               # move `champion` if the rule allows
    imgenhance compare --model ffdnet-gray --set settings.sigmas=[50] --set margin=0.1

The rule (suite, primary and secondary metric, margin, tolerance, suite settings) comes from
`compare:` in conf/benchmarks.yaml; `--set KEY=VALUE` overrides its keys. The current champion
is always measured too. MLflow: --tracking-uri, else MLFLOW_TRACKING_URI, else ./mlflow.db; one
run per compare in experiment `imgenhance-compare` with the table (Parquet, markdown) and a plot,
also written to --output. Exit status 0 whether promoted or not; 2 when the comparison cannot
run (unknown model or version, no rule, bad config, no tracking store).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from jobs.benchmark import SUITES
from pipeline import compare, tracking
from pipeline.config import CONF_DIR, ConfigError, apply_overrides, load_yaml, validate
from pipeline.io.storage import redact

EXPERIMENT = "imgenhance-compare"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name, e.g. ffdnet-gray")
    parser.add_argument("--version", action="append", default=[], help="a version to compare (default: all)")
    parser.add_argument("--suite", help="benchmark suite (default: the model's rule in conf/benchmarks.yaml)")
    parser.add_argument("--promote", action="store_true", help="move alias `champion` when the rule allows")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default MLFLOW_TRACKING_URI, else ./mlflow.db)")
    parser.add_argument("--config", default=str(CONF_DIR / "benchmarks.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the compare rule, e.g. margin=0.1 or settings.datasets=[Set12]")
    parser.add_argument("--output", help="folder for the table and plot (default out/compare/<model>)")


def _architecture(name: str, version: str, uri: str):
    """(kind, channels) of a registered version, read from its weights' sidecar."""

    def ask() -> tuple[str, int]:
        from pipeline.enhance.learned import resolve
        from pipeline.models import spec
        from pipeline.models.weights import read_meta

        meta = read_meta(resolve(f"models:/{name}/{version}", uri)[0])
        model = spec(meta["name"])
        return model.kind, int(meta["config"].get("channels", model.channels))

    return ask


def _rule(config: dict, args: argparse.Namespace, newest: str, uri: str) -> compare.CompareRule:
    """The model's rule from config, --suite and --set applied, validated."""
    rules = validate(compare.CompareConf, config.get("compare") or {}, f"{args.config}: compare")
    try:
        rule = rules.rule(args.model, _architecture(args.model, newest, uri))
    except LookupError:
        if not args.suite:
            raise
        rule = compare.CompareRule(suite=args.suite)
    if args.suite and args.suite != rule.suite:  # the rule's settings belong to its own suite
        rule = rule.model_copy(update={"suite": args.suite, "settings": {}})
    rule = validate(compare.CompareRule, apply_overrides(rule.model_dump(), args.overrides), "--set")
    suite_conf = (config.get("suites") or {}).get(rule.suite)
    if rule.suite not in SUITES or suite_conf is None or "models" not in suite_conf:
        takes = sorted(n for n, c in (config.get("suites") or {}).items() if n in SUITES and "models" in c)
        raise ConfigError(f"suite {rule.suite!r} cannot evaluate model versions; suites that can: {takes}")
    return rule


def _versions(args: argparse.Namespace) -> tuple[list[str], str | None, list[str]]:
    """(all registered versions, current champion, versions to measure: chosen + champion)."""
    known = tracking.versions(args.model)
    unknown = sorted(set(args.version) - set(known), key=str)
    if unknown:
        raise LookupError(f"{args.model} has no version {unknown}; registered: {known}")
    champion = tracking.alias_version(args.model, compare.CHAMPION)
    chosen = set(args.version or known) | ({champion} if champion else set())
    return known, champion, sorted(chosen, key=int)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    uri = args.tracking_uri or tracking.tracking_uri()
    try:
        if not tracking.reachable(uri):
            raise LookupError(f"no tracking store at {redact(uri)}")
        config = load_yaml(args.config)
        tracking.setup(EXPERIMENT, uri)
        known, champion, measured = _versions(args)
        rule = _rule(config, args, known[-1], uri)
        suite_conf = {**config["suites"][rule.suite], **rule.settings}
        rows = compare.evaluate(SUITES[rule.suite][1], suite_conf, args.model, measured, uri,
                                int(suite_conf.get("seed", 0)))
        table = compare.scores(rows, rule)
        decision = compare.decide(table, champion, rule)
    except (ConfigError, LookupError, ValueError, FileNotFoundError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    folder = Path(args.output or Path("out") / "compare" / args.model)
    files = compare.write_outputs(folder, args.model, rule.suite, table, rows, rule, champion, decision)
    run_id, promoted = compare.record(args.model, rule.suite, table, champion, rule, decision, files, args.promote)
    print(files[2].read_text())
    if promoted:
        print(f"promoted: {args.model}@{compare.CHAMPION} -> v{decision.version} (was {champion or 'unset'})")
    elif decision.promote:
        print(f"not promoted: run with --promote to move {compare.CHAMPION} to v{decision.version}")
    else:
        print(f"not promoted: {compare.CHAMPION} stays {'v' + champion if champion else 'unset'}")
    print(f"outputs: {folder} and MLflow run {run_id} ({redact(uri)}, experiment {EXPERIMENT})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

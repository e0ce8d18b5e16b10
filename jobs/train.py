"""Train a restoration model on Ray Train, tracked in MLflow; resumable by run name.

    python -m jobs.train --config conf/train/smoke.yaml            # a few seconds: checks an install
    python -m jobs.train --config ffdnet_gray --set name=ffdnet-a   # the real gray denoiser
    python -m jobs.train --config ffdnet_gray --set name=ffdnet-a --set train.epochs=40 --resume

MLflow: MLFLOW_TRACKING_URI, else ./mlflow.db. Checkpoints: `storage_path` of the config
(or --storage), run folder `<storage>/<name>`. Prints the run id, the registered version
and the final metrics as JSON. Exit status 2 when the job cannot run (bad config, missing
data, a run name already taken without --resume).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pipeline import raycluster
from pipeline.config import ConfigError
from pipeline.io.storage import redact


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="conf/train/smoke.yaml",
                        help="train config YAML, or a name in conf/train/ (default: smoke)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. train.epochs=20")
    parser.add_argument("--resume", action="store_true", help="continue run `name` from its latest checkpoint")
    parser.add_argument("--storage", help="checkpoint storage (local path or s3://), overrides storage_path")
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from pipeline.train.config import load_train_config
    from pipeline.train.job import train

    overrides = list(args.overrides) + ([f"storage_path={args.storage}"] if args.storage else [])
    try:
        config = load_train_config(args.config, overrides)
        raycluster.init(args.address)
        summary = train(config, resume=args.resume)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

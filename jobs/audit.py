"""Check the run invariant of an output prefix and print the counts.

    python -m jobs.audit --output s3://bucket/enhanced                 # rows, keys, outputs
    python -m jobs.audit --output out --input archives/*.tar more.zip  # ... and no member lost

Exit status 0 when the invariant holds, 1 when it does not, 2 when the check cannot run.
Pass every input that fed the output: rows for members of other inputs count as unexpected.
"""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.audit import audit
from pipeline.config import ConfigError, load_enhance_config
from pipeline.io import storage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="output prefix of enhance runs")
    parser.add_argument("--input", nargs="+", action="extend", help="inputs that fed it (checks nothing was lost)")
    parser.add_argument("--config", help="enhance config (for storage options)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def main(args: argparse.Namespace) -> int:
    try:
        config, _ = load_enhance_config(args.config, args.overrides)
        report = audit(args.output, config.storage.options, args.input)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"error: {storage.redact(str(exc))}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    print(f"audit: {'invariant holds' if report.ok else 'INVARIANT VIOLATED'} ({report.rows} rows)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

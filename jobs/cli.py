"""The `imgenhance` console script: one subcommand per job (`run` is the enhance job)."""

from __future__ import annotations

import argparse
import sys

from jobs import audit, benchmark, compare, degrade, enhance, train

# Subcommand -> job module; each module has add_arguments(parser) and main(args).
COMMANDS = {"run": enhance, "benchmark": benchmark, "compare": compare, "degrade": degrade, "audit": audit,
            "train": train}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imgenhance", description="Batch image enhancement on Ray")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        job = sub.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__)
        module.add_arguments(job)
    args = parser.parse_args(argv)
    return COMMANDS[args.command].main(args)


if __name__ == "__main__":
    sys.exit(main())

"""Make a degraded archive, its clean reference and labels from clean images.

    python -m jobs.degrade --input clean_photos/ --output out/noise --label noise
    python -m jobs.degrade --input 's3://bucket/clean/*.tar' --output s3://bucket/degraded/all \\
        --label all --seed 1 --max-side 512
    python -m jobs.degrade --input photos.zip --output out/night --mixed low_light_noisy --limit 100

Inputs are what the enhance job reads (folders, globs, tar/zip, images; local or any fsspec
URL). Writes under the output prefix: degraded.tar, clean.tar (same member names: pass it
as the enhance job's --reference), labels.parquet (member, label, steps with their concrete
params, seed) and manifest.json last (the options and counts: the run is complete).
`--label all` cycles through every label of pipeline.labels.DEGRADATIONS, clean included.

Exit status: 0 when the archives were written, 2 when the job cannot run (bad options,
no input, unreachable storage).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipeline.degrade import archive
from pipeline.io import storage
from pipeline.io.sources import InputError

log = logging.getLogger("imgenhance.degrade")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", action="extend", required=True, help="folder, glob, archive or image URLs (any fsspec URL)")
    parser.add_argument("--output", required=True, help="output prefix: <output>/degraded.tar, clean.tar, labels.parquet")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--label", nargs="+", default=None, help="label(s) from the single-degradation recipes, or 'all' (default: all)")
    which.add_argument("--mixed", help="a recipe name from conf/degrade/mixed.yaml (or from --recipe)")
    parser.add_argument("--recipe", help="recipe file (default conf/degrade/single.yaml, or mixed.yaml with --mixed)")
    parser.add_argument("--seed", type=int, default=0, help="run seed; member i gets a seed derived from (seed, i)")
    parser.add_argument("--max-side", type=int, help="shrink images whose longer side is over N px (both tars)")
    parser.add_argument("--limit", type=int, help="stop after N images")


def _recipes(args: argparse.Namespace) -> list[archive.NamedRecipe]:
    if args.mixed:
        return archive.mixed_recipe(args.mixed, args.recipe or archive.MIXED_RECIPES)
    return archive.label_recipes(args.label or ["all"], args.recipe or archive.SINGLE_RECIPES)


def _settings(args: argparse.Namespace) -> dict:
    """The frozen options recorded in manifest.json."""
    keys = ("input", "output", "label", "mixed", "recipe", "seed", "max_side", "limit")
    return {k: getattr(args, k) for k in keys}


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if (args.max_side is not None and args.max_side < 1) or (args.limit is not None and args.limit < 0):
            raise ValueError("--max-side must be >= 1 and --limit >= 0")
        recipes = _recipes(args)
        summary = archive.write_archives(args.input, args.output, recipes, args.seed, args.max_side, args.limit)
        archive.write_manifest(args.output, None, _settings(args), summary)
    except (InputError, ValueError, OSError) as exc:
        print(f"error: {storage.redact(str(exc))}", file=sys.stderr)
        return 2
    labels = ", ".join(f"{k}={v}" for k, v in sorted(summary.by_label.items()))
    print(f"{summary.written} images -> {summary.output}/{{degraded,clean}}.tar ({summary.skipped} skipped)")
    print(f"  by label: {labels or '-'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

"""How well the statistics detector names synthetic degradations of held-out clean images.

Measure:   ``.venv/bin/python -m pipeline.bench.detector --out /tmp/detector.parquet`` (data: IMGENHANCE_DATA)
Calibrate: ``.venv/bin/python -m pipeline.bench.detector --calibrate --per-label 2 --out /tmp/calib.parquet``

Every clean image gets each label `per_label` times (clean once), drawn by
`pipeline.degrade.recipe.make_labelled` with a seed derived from (seed, image, label, draw),
so runs are reproducible and independent of order. Prints the overall and per-label
accuracy and the confusion matrix (markdown); writes one row per example with pyarrow.
`--calibrate` runs on the CALIBRATION folders instead and prints RULES with thresholds
tuned there (paste them into pipeline/enhance/detector.py); HELD_OUT shares no folder with
them. `run`/`summarize` are the entry points for a jobs.benchmark suite.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import datasets
from pipeline.bench import common
from pipeline.bench.common import load_image
from pipeline.datasets import IMAGE_SUFFIXES, data_root
from pipeline.enhance.detector import RULES, Rules, Term, decide, detect, score
from pipeline.imageops import split_alpha, to_float
from pipeline.labels import DEGRADATIONS

# Folder -> stride taken through it (a spread of scenes at a bounded cost). Calibration:
# DnCNN's training crops and a few colour scenes. Held out: the grey and colour test sets
# and folders of every domain that calibration never saw.
CALIBRATION = {"Train400": 4, "traffic_dashcam": 1, "satellite_aid": 5}
HELD_OUT = {"Set12": 1, "CBSD68": 2, "traffic_more": 8, "satellite_more/levir_changeformer": 1,
            "satellite_more/dsifn_changeformer": 1, "medical_clean/retina_drive": 2,
            "medical_more": 12}
# Weight of clean recall in the calibration objective (other labels weigh 1).
CLEAN_WEIGHT = 3.0


def held_out_paths(data: Path, folders: dict[str, int] = HELD_OUT) -> list[str]:
    """Clean image files of `folders` under `data`, every `stride`-th of each, sorted."""
    paths: list[str] = []
    for folder, stride in folders.items():
        files = sorted(p for p in (data / folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += [str(p) for p in files[::stride]]
    return paths


def load_float(path: str) -> np.ndarray:
    """Image file -> float32 (H, W, C) in [0, 1], alpha dropped, through the project codec."""
    colour, _ = split_alpha(load_image(Path(path)))
    return to_float(colour)


def example_seed(seed: int, path: str, label: str, draw: int) -> int:
    """Stable per-example seed: the same example gets the same degradation in every run."""
    return zlib.crc32(f"{seed}:{Path(path).name}:{label}:{draw}".encode())


def evaluate(clean_paths: list[str], labels: tuple[str, ...], seed: int, per_label: int) -> list[dict]:
    """Degrade each clean image with each label `per_label` times; detect; one dict each."""
    from pipeline.degrade.recipe import make_labelled  # the degradation library's recipes

    rows = []
    for path in clean_paths:
        clean = load_float(path)
        for label in labels:
            for draw in range(1 if label == "clean" else per_label):  # clean has nothing to draw
                degraded, steps = make_labelled(clean, label, example_seed(seed, path, label, draw))
                rows.append(_row(path, label, to_float(degraded), steps))
    return rows


def _row(path: str, label: str, image: np.ndarray, steps: object) -> dict:
    started = time.perf_counter()
    detection = detect(image)
    return {
        "image": path, "label": label, "predicted": detection.degradation,
        "score": detection.score, "scores": detection.scores, "stats": detection.stats,
        "steps": json.dumps(steps, default=str), "height": image.shape[0], "width": image.shape[1],
        "ms": 1000.0 * (time.perf_counter() - started),
    }


def accuracy(rows: Sequence[dict]) -> float:
    """Share of examples whose predicted label is the true one."""
    return common.accuracy([r["label"] for r in rows], [r["predicted"] for r in rows])


def markdown(rows: Sequence[dict]) -> str:
    """Per-label table and confusion matrix (rows: true label, columns: predicted)."""
    true, predicted = [r["label"] for r in rows], [r["predicted"] for r in rows]
    return "\n".join([f"overall accuracy: {accuracy(rows):.3f} ({len(rows)} examples)", "",
                      *common.label_tables(true, predicted, DEGRADATIONS)])


def write_rows(rows: Sequence[dict], out: str) -> None:
    """Rows -> parquet; scores and stats become struct columns (one field per name)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows)), out)


def _objective(rows: Sequence[dict], rules: Rules) -> float:
    """Mean per-label recall over the labels the rules can name, clean's counted
    `CLEAN_WEIGHT` times: in an archive most images are clean, and a false alarm sends
    one through an enhancer it did not need."""
    hits: dict[str, list[bool]] = {}
    for r in rows:
        hits.setdefault(r["label"], []).append(decide(score(r["stats"], rules)) == r["label"])
    recalls = {label: float(np.mean(h)) for label, h in hits.items() if label == "clean" or rules[label]}
    weights = [CLEAN_WEIGHT if label == "clean" else 1.0 for label in recalls]
    return float(np.average(list(recalls.values()), weights=weights))


def calibrate(rows: Sequence[dict], rules: Rules = RULES, rounds: int = 2) -> Rules:
    """Coordinate descent on every term's threshold, keeping each step that raises
    `_objective` on `rows` (as from `evaluate`); widths, structure and order stay."""
    best = _objective(rows, rules)
    places = [(label, a, t) for label, alts in rules.items() for a, conj in enumerate(alts) for t in range(len(conj))]
    for _ in range(rounds):
        for label, a, t in places:
            for step in (0.7, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.4):
                trial = _replace_term(rules, label, a, t, _moved(rules[label][a][t], step))
                value = _objective(rows, trial)
                if value > best + 1e-4:
                    best, rules = value, trial
    return rules


def _moved(term: Term, step: float) -> Term:
    """Threshold scaled by `step` (log terms) or shifted by (step - 1) * 10 widths."""
    moved = term.threshold * step if term.log else term.threshold + (step - 1) * 10 * abs(term.width)
    return replace(term, threshold=float(f"{moved:.4g}"))


def _replace_term(rules: Rules, label: str, a: int, t: int, term: Term) -> Rules:
    conj = rules[label][a][:t] + (term,) + rules[label][a][t + 1 :]
    return {**rules, label: rules[label][:a] + (conj,) + rules[label][a + 1 :]}


def run(conf: dict, seed: int) -> list[dict]:
    """Suite entry for jobs.benchmark: conf names `per_label` and optionally `datasets`
    (default: the HELD_OUT folders, none of which was used for calibration)."""
    if "datasets" in conf:
        paths = [str(p) for name in conf["datasets"] for p in datasets.images(name)]
    else:
        paths = held_out_paths(datasets.data_root())
        if not paths:
            raise FileNotFoundError(f"no held-out images under {datasets.data_root()}")
    rows = evaluate(paths, DEGRADATIONS, seed, int(conf.get("per_label", 1)))
    return [{**r, "image": Path(r["image"]).name} for r in rows]


def summarize(table: pa.Table) -> str:
    """Markdown summary of a suite's table (see `markdown`)."""
    return markdown(table.select(["label", "predicted"]).to_pylist())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=data_root(), help="folder of the shared datasets")
    parser.add_argument("--out", default="/tmp/detector.parquet", help="parquet file for the rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-label", type=int, default=1, help="draws per label and image")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    parser.add_argument("--calibrate", action="store_true",
                        help="tune RULES thresholds on the calibration folders and print them")
    args = parser.parse_args(argv)
    paths = held_out_paths(args.data, CALIBRATION if args.calibrate else HELD_OUT)
    paths = paths[: args.limit] if args.limit else paths
    rows = evaluate(paths, DEGRADATIONS, args.seed, args.per_label)
    write_rows(rows, args.out)
    print(markdown(rows))
    print(f"\n{len(paths)} clean images, rows written to {args.out}")
    if args.calibrate:
        tuned = calibrate(rows)
        print(f"\nobjective {_objective(rows, RULES):.3f} -> {_objective(rows, tuned):.3f}; RULES = {{")
        print("\n".join(f"    {label!r}: {alts!r}," for label, alts in tuned.items()) + "\n}")


if __name__ == "__main__":
    main()

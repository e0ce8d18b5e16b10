"""The classify stage on labelled held-out pictures: domain and degradation accuracy.

Every held-out picture of a domain classifier's training config (`data.domains.<d>.val`:
folders and slices its training never saw) is classified as it is and `degraded` more times,
each with one degradation label drawn at random and made by the single-degradation recipes
(`recipe.make_labelled`, seeded per picture and draw). Each example goes through exactly
what the enhance job's classify stage runs: the domain model on the squeezed whole picture
(`classify.DomainModel`) and the statistics detector on full-resolution crops. One row per
(model, example); the summary gives per-class recall and precision and both confusion matrices.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.bench.common import accuracy, label_tables, load_image
from pipeline.degrade import pairs
from pipeline.degrade.recipe import make_labelled
from pipeline.enhance.classify import DegradationModel, DomainModel, decide
from pipeline.enhance.detector import detect
from pipeline.imageops import split_alpha, to_float
from pipeline.labels import DEGRADATIONS, DOMAINS
from pipeline.train.config import load_train_config
from pipeline.train.data import resolve


THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def held_out(train_config: str) -> dict[str, list[str]]:
    """Domain -> image paths of the config's validation sources."""
    data = load_train_config(train_config).data
    out = {}
    for domain, conf in (data.domains or {}).items():
        urls = resolve(conf.val)
        if urls is None:
            raise FileNotFoundError(f"held-out data of domain {domain} ({conf.val}) is missing (set IMGENHANCE_DATA)")
        out[domain] = pairs.expand(urls)
    return out


def examples(pictures: dict[str, list[str]], degraded: int, seed: int, limit: int | None = None):
    """Yield (path, domain, true degradation, float image): each picture clean and `degraded`
    times with a label drawn uniformly among the 11 degradations."""
    labels = DEGRADATIONS[1:]
    for domain, paths in pictures.items():
        for path in paths[:limit]:
            colour, _ = split_alpha(load_image(Path(path)))
            clean = to_float(colour)
            yield path, domain, "clean", clean
            for draw in range(degraded):
                rng = np.random.default_rng(zlib.crc32(f"{seed}:{path}:{draw}".encode()))
                label = labels[int(rng.integers(len(labels)))]
                image, _ = make_labelled(clean, label, int(rng.integers(2**31)))
                yield path, domain, label, to_float(image)


def load_models(ref: str, side: int, views: list[int]) -> list[DomainModel | DegradationModel]:
    """A domain model (whole picture -> domain), once per count of `views` it votes over, or
    a learned degradation decision (the detector's statistics -> label), by the architecture
    its weights name."""
    from pipeline.enhance.learned import resolve
    from pipeline.models.weights import read_meta

    path, _ = resolve(ref)
    if read_meta(path)["name"] in ("stats_mlp", "stats_cnn"):
        return [DegradationModel(ref, threads=2)]
    return [DomainModel(ref, side, threads=2, views=n) for n in views]


def model_name(model: DomainModel | DegradationModel) -> str:
    """The model's name in rows and tables: its reference, and its views when it votes."""
    views = getattr(model, "views", 1)
    return model.ref if views == 1 else f"{model.ref} ({views} views)"


def run(conf: dict, seed: int) -> list[dict]:
    """Suite entry: conf names `train_config` (whose held-out split is used), `models` (domain
    models and learned degradation decisions), `degraded` draws per picture and an optional
    `limit` per domain; `domain_views` (default [1]) the view counts each domain model is run
    with (`classify.domain_views`). A domain model's rows carry the detector's label as `predicted_degradation`;
    a degradation model's rows carry its own (and the detector's as `detector_degradation`)."""
    pictures = held_out(conf["train_config"])
    views = [int(n) for n in conf.get("domain_views", [1])]
    models = [m for ref in conf["models"] for m in load_models(ref, int(conf.get("side", 128)), views)]
    rows = []
    for path, domain, label, image in examples(pictures, int(conf.get("degraded", 2)), seed, conf.get("limit")):
        started = time.perf_counter()
        detection = detect(image)
        detect_ms = (time.perf_counter() - started) * 1e3
        common = {"image": "/".join(path.split("/")[-2:]), "domain": domain, "degradation": label,
                  "detector_degradation": detection.degradation, "height": image.shape[0], "width": image.shape[1],
                  "detect_ms": detect_ms}
        for model in models:
            started = time.perf_counter()
            if isinstance(model, DegradationModel):
                said, scores, by = decide(detection, model, image)  # as the classify stage decides
                rows.append({"model": model_name(model), **common, "sees_picture": bool(model.side),
                             "predicted_degradation": said, "decided_by": by,
                             "degradation_score": scores[said], "degradation_correct": float(said == label),
                             "degradation_ms": (time.perf_counter() - started) * 1e3})
                continue
            predicted, score = model.predict(image)
            rows.append({"model": model_name(model), **common, "predicted_domain": predicted, "domain_score": score,
                         "domain_correct": float(predicted == domain), "predicted_degradation": detection.degradation,
                         "domain_ms": (time.perf_counter() - started) * 1e3})
    keys = {k: None for row in rows for k in row}  # one schema: Arrow takes the first row's keys
    return [{**keys, **row} for row in rows]


def summarize(table: pa.Table) -> str:
    rows = table.to_pylist()
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        if mine[0].get("predicted_domain") is None:
            lines += _learned_degradation(model, mine)
            continue
        clean = [r for r in mine if r["degradation"] == "clean"]
        true, said = [r["domain"] for r in mine], [r["predicted_domain"] for r in mine]
        pictures = len({r["image"] for r in mine})
        lines += [f"**Domain, `{model}`**: accuracy {accuracy(true, said):.3f} on {len(mine)} examples "
                  f"({pictures} held-out pictures); clean {accuracy([r['domain'] for r in clean], [r['predicted_domain'] for r in clean]):.3f}, "
                  f"degraded {accuracy([r['domain'] for r in mine if r['degradation'] != 'clean'], [r['predicted_domain'] for r in mine if r['degradation'] != 'clean']):.3f}. "
                  f"Median {np.median([r['domain_ms'] for r in mine]):.1f} ms per picture.", ""]
        lines += label_tables(true, said, DOMAINS) + [""]
        lines += ["Abstaining below a probability (`classify.domain_min_score`; below it the domain is 'unknown'):", "",
                  "| min score | coverage | accuracy of the named |", "|---|---|---|"]
        for threshold in THRESHOLDS:
            named = [r for r in mine if r["domain_score"] >= threshold]
            lines.append(f"| {threshold:g} | {len(named) / len(mine):.3f} | "
                         f"{accuracy([r['domain'] for r in named], [r['predicted_domain'] for r in named]):.3f} |")
        lines.append("")
    first = [r for r in rows if r["model"] == rows[0]["model"]] if rows else []
    true, said = [r["degradation"] for r in first], [r["detector_degradation"] for r in first]
    lines += [f"**Degradation, statistics detector** (the classify stage's): accuracy {accuracy(true, said):.3f} "
              f"on the same {len(first)} examples. Median {np.median([r['detect_ms'] for r in first]) if first else 0:.1f} ms per picture.", ""]
    lines += label_tables(true, said, DEGRADATIONS)
    return "\n".join(lines)


def _learned_degradation(model: str, rows: list[dict]) -> list[str]:
    true, said = [r["degradation"] for r in rows], [r["predicted_degradation"] for r in rows]
    rules = accuracy(true, [r["detector_degradation"] for r in rows])
    deferred = sum(r["decided_by"] == "rules" for r in rows)
    inputs = "statistics, rule scores and the picture" if rows[0].get("sees_picture") else "statistics and rule scores"
    lines = [f"**Degradation, learned decision `{model}`** (on the detector's {inputs}): "
             f"accuracy {accuracy(true, said):.3f} on {len(rows)} examples (the detector's rules: {rules:.3f} on the "
             f"same); {deferred} examples lay outside its training data and went to the rules. "
             f"Median {np.median([r['degradation_ms'] for r in rows]):.2f} ms per picture after the detector.", ""]
    lines += label_tables(true, said, DEGRADATIONS) + [""]
    lines += ["Leaving pictures alone below a probability (a route's `min_score`; below it the picture "
              "passes through):", "", "| min score | coverage | accuracy of the named |", "|---|---|---|"]
    for threshold in THRESHOLDS:
        named = [r for r in rows if r["degradation_score"] >= threshold]
        lines.append(f"| {threshold:g} | {len(named) / len(rows):.3f} | "
                     f"{accuracy([r['degradation'] for r in named], [r['predicted_degradation'] for r in named]):.3f} |")
    return lines + [""]

"""Classify stage: domain and degradation of every image, with scores and measurements.

Until the learned classifier lands, the statistics-based detector
(`pipeline.enhance.detector`) decides the degradation and the domain is 'unknown' (never a
guess). The detector's measurements travel on as `detector_stats`, the enhancers' hints.
"""

from __future__ import annotations

import json

import pyarrow as pa

from pipeline.enhance.detector import detect
from pipeline.enhance.rows import map_rows, pixels_of
from pipeline.imageops import split_alpha, to_float
from pipeline.labels import UNKNOWN_DOMAIN


def classify_batch(table: pa.Table, max_side: int) -> pa.Table:
    def one(row: dict) -> None:
        colour, _ = split_alpha(pixels_of(row))
        detection = detect(to_float(colour), max_side=max_side)
        row.update(
            domain=UNKNOWN_DOMAIN,
            domain_score=None,
            degradation=detection.degradation,
            degradation_score=float(detection.score),
            detector_scores=json.dumps({k: round(float(v), 4) for k, v in detection.scores.items()}),
            detector_stats=json.dumps({k: float(v) for k, v in detection.stats.items()}),
        )

    return map_rows(table, one, "classify", timing="t_classify_ms")

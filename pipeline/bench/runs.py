"""One MLflow run per (model, suite) of a benchmark: aggregate metrics, the suite's Parquet attached.

A suite's rows name what they measure in a `model` column (denoisers), else an `enhancer`
column (classical cases); suites with neither (detector, pairs, realism) give one run for the
whole suite. Metrics are the means of the rows' float columns (non-finite means dropped:
PSNR of identical images is +inf), so runs of the same (model, suite) line up in the MLflow UI.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipeline.io.storage import redact

EXPERIMENT = "imgenhance-benchmark"


def groups(df: pd.DataFrame, suite: str) -> dict[str, pd.DataFrame]:
    """Rows per model (or enhancer); the whole table under the suite's name otherwise."""
    for column in ("model", "enhancer"):
        if column in df.columns:
            return {str(name): part for name, part in df.groupby(column, sort=True)}
    return {suite: df}


def aggregate(df: pd.DataFrame) -> dict[str, float]:
    """Mean of every float column, finite values only."""
    means = df.select_dtypes("float").mean()
    return {str(k): float(v) for k, v in means.items() if math.isfinite(v)}


def log_suite(table: pa.Table, suite: str, command: str, parquet: Path, uri: str | None = None) -> dict[str, str]:
    """Log one run per (model, suite); returns {model: run id}."""
    import mlflow

    from pipeline import tracking

    tracking.setup(EXPERIMENT, uri)
    out = {}
    for model, part in groups(table.to_pandas(), suite).items():
        with mlflow.start_run(run_name=f"{suite}:{model}") as run:
            mlflow.log_params({"suite": suite, "model": redact(model)[:500], "rows": len(part),
                               "command": redact(command)[:500]})
            mlflow.set_tags({"imgenhance.suite": suite, "imgenhance.model": redact(model)[:5000]})
            mlflow.log_metrics(aggregate(part))
            mlflow.log_artifact(str(parquet))
            out[model] = run.info.run_id
    return out

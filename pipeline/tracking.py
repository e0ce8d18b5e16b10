"""MLflow: where runs go, what is logged, how model versions are registered and resolved.

Tracking URI from MLFLOW_TRACKING_URI, default a local sqlite store `./mlflow.db` with
artifacts in `./mlruns` (both made absolute, because Ray workers run in other folders).
Models are logged as their state_dict plus a JSON of the architecture (see
`pipeline.models.weights`), registered with `create_model_version` on the run's artifact
folder, and loaded back with `torch.load(weights_only=True)`: no pickled code crosses the
registry. Param values are flattened config with secrets removed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.io.storage import redact

DEFAULT_EXPERIMENT = "imgenhance"
_SECRET_KEY = re.compile(r"secret|token|password|(^|_)key$", re.IGNORECASE)


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri or "sqlite:///" + str(Path("mlflow.db").resolve())


def setup(experiment: str = DEFAULT_EXPERIMENT, uri: str | None = None) -> str:
    """Point mlflow at the store and the experiment (created with an absolute artifact root)."""
    import mlflow

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None if "://" in uri and not uri.startswith("sqlite") else Path("mlruns").resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    return uri


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {'a.b': 'value'}; secret-looking keys dropped, values redacted, 500 chars max."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if _SECRET_KEY.search(str(key)):
            continue
        if isinstance(value, Mapping):
            out.update(flat_params(value, name + "."))
        else:
            out[name] = redact(str(value))[:500]
    return out


def register(name: str, run_id: str, artifact_path: str, tags: Mapping[str, str] | None = None) -> str:
    """A new version of registered model `name` pointing at the run's artifact folder; returns the version."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # it exists already
    source = f"{mlflow.get_run(run_id).info.artifact_uri}/{artifact_path}"
    version = client.create_model_version(name, source=source, run_id=run_id, tags=dict(tags or {}))
    return str(version.version)


def set_alias(name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, version)


def resolve_version(ref: str) -> tuple[str, str]:
    """'models:/name@alias' or 'models:/name/3' -> (name, version number)."""
    from mlflow import MlflowClient

    body = ref[len("models:/"):]
    if "@" in body:
        name, alias = body.split("@", 1)
        return name, str(MlflowClient().get_model_version_by_alias(name, alias).version)
    name, version = body.rsplit("/", 1)
    return name, version


def download(ref: str, dest: str | None = None) -> Path:
    """Local folder holding the artifacts of a registered model version."""
    import mlflow

    name, version = resolve_version(ref)
    return Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=dest))

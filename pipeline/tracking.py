"""MLflow: where runs go, what is logged, how model versions are registered and resolved.

Tracking URI from MLFLOW_TRACKING_URI, default a local sqlite store `./mlflow.db` with
artifacts in `./mlruns` (both made absolute, because Ray workers run in other folders).
Models are logged as their state_dict plus a JSON of the architecture (see
`pipeline.models.weights`), registered with `create_model_version` on the run's artifact
folder, and loaded back with `torch.load(weights_only=True)`: no pickled code crosses the
registry. Param values are flattened config with secrets removed.

Training runs are found again by a tag holding the train job's run name, so a resumed job
(or a Ray Train worker group restarted after a failure) logs into the same MLflow run;
workers log through `log_metrics` with an explicit run id and URI (no global active run).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.io.storage import redact

DEFAULT_EXPERIMENT = "imgenhance"
RUN_NAME_TAG = "imgenhance.run_name"
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


def find_run(experiment: str, run_name: str) -> str | None:
    """Id of the newest run of `experiment` tagged with train run name `run_name`, or None."""
    from mlflow import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{RUN_NAME_TAG}` = '{run_name}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def start_or_resume(experiment: str, run_name: str, run_id: str | None = None,
                    tags: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """(run id, resumed): the given run, else the run tagged `run_name`, else a new run.

    A resumed run is marked RUNNING again; end it with `end_run`.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    run_id = run_id or find_run(experiment, run_name)
    if run_id is not None:
        client.update_run(run_id, status="RUNNING")
        return run_id, True
    exp = client.get_experiment_by_name(experiment)
    run = client.create_run(exp.experiment_id, run_name=run_name, tags={RUN_NAME_TAG: run_name, **dict(tags or {})})
    return run.info.run_id, False


def log_params_once(run_id: str, params: Mapping[str, str]) -> dict[str, str]:
    """Log params not yet on the run; MLflow params are immutable, so values that changed
    (e.g. train.epochs raised on resume) are recorded as tags `changed.<key>` = 'old -> new'.
    Returns the changed keys."""
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    client = MlflowClient()
    existing = client.get_run(run_id).data.params
    new = [Param(k, v) for k, v in params.items() if k not in existing]
    changed = {k: f"{existing[k]} -> {v}"[:5000] for k, v in params.items() if k in existing and existing[k] != v}
    for start in range(0, len(new), 100):  # log_batch takes at most 100 params per call
        client.log_batch(run_id, params=new[start : start + 100])
    if changed:
        client.log_batch(run_id, tags=[RunTag(f"changed.{k}", v) for k, v in changed.items()])
    return changed


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int, uri: str | None = None) -> None:
    """Log numeric metrics at `step` to a run by id (from any process, e.g. a Ray Train worker)."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    values = [Metric(k, float(v), stamp, step) for k, v in metrics.items() if isinstance(v, (int, float))]
    MlflowClient(tracking_uri=uri or tracking_uri()).log_batch(run_id, metrics=values)


def metric_steps(run_id: str, key: str, uri: str | None = None) -> set[int]:
    """Steps at which metric `key` of the run is already logged."""
    from mlflow import MlflowClient

    return {m.step for m in MlflowClient(tracking_uri=uri or tracking_uri()).get_metric_history(run_id, key)}


def end_run(run_id: str, status: str = "FINISHED") -> None:
    from mlflow import MlflowClient

    MlflowClient().set_terminated(run_id, status=status)


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


def versions(name: str) -> list[str]:
    """Registered versions of model `name`, oldest first; LookupError when there are none."""
    from mlflow import MlflowClient

    found = MlflowClient().search_model_versions(f"name = '{name}'")
    if not found:
        raise LookupError(f"no registered model {name!r} (or it has no versions) in {redact(mlflow_uri())}")
    return sorted({str(v.version) for v in found}, key=int)


def alias_version(name: str, alias: str) -> str | None:
    """The version alias `alias` of model `name` points at, or None when the alias is not set."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def mlflow_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def reachable(uri: str, timeout: float = 3.0) -> bool:
    """Whether a tracking store is there to ask: an HTTP server answering /health within
    `timeout` (MLflow's own client would retry for minutes), or an existing sqlite file.
    Other schemes are assumed reachable."""
    import urllib.request

    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
                return response.status == 200
        except OSError:
            return False
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).is_file()
    return True


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


def log_enhance_run(summary: Mapping[str, Any], params: Mapping[str, Any], experiment: str,
                    report_html: str | None = None) -> str:
    """One MLflow run per enhance run: frozen config, inputs and the model reference each route
    ran (`model.<route>`) as params; counts, rates and the mean after - before change of every
    metric per route (`gain.<route>.<metric>`) as metrics; the summary JSON and the HTML report
    as artifacts. Returns the MLflow run id."""
    import mlflow

    setup(experiment)
    with mlflow.start_run(run_name=str(summary["run_id"])) as run:
        mlflow.log_params(flat_params({**params, "model": dict(summary.get("models", {}))}))
        metrics = {"rows": summary["rows"], "images_per_s": summary["images_per_s"],
                   "megapixels_per_s": summary["megapixels_per_s"], "seconds": summary["seconds"]}
        metrics.update({f"status.{k}": v for k, v in summary["by_status"].items()})
        metrics.update({f"route.{k}": v for k, v in summary["by_route"].items() if k})
        metrics.update({f"gain.{route}.{m}": v for route, means in summary.get("mean_gain", {}).items()
                        for m, v in means.items()})
        mlflow.log_metrics({k.replace("-", "none"): float(v) for k, v in metrics.items()})
        mlflow.log_dict(dict(summary), "summary.json")
        if report_html is not None:
            mlflow.log_text(report_html, "report.html")
        return run.info.run_id

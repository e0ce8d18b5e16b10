"""The train job's driver: plan (fresh or resumed), run Ray Train, then log and register.

Resume: Ray Train v2 restores a run from its folder `<storage_path>/<name>`; the driver
reads the same checkpoint snapshot first, so the data stream starts at the next epoch's
pairs and the MLflow run id stored in the checkpoint is reopened (falling back to the run
tagged with the name). Without `resume`, an existing run folder is an error, never a
silent continuation.

At the end the driver, not a worker, logs the final weights (state_dict + JSON via
`save_weights`, under `weights/epoch_NNNNN` so each registered version keeps its own
files), the task's figures (a before/after grid, or confusion matrices) and the learning
curves, and registers a model version.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline import tracking
from pipeline.config import ConfigError
from pipeline.datasets import REPO_ROOT
from pipeline.provenance import git_state
from pipeline.train import checkpoints, figures, tasks
from pipeline.train.config import TrainJobConfig

log = logging.getLogger(__name__)


def git_tags(repo: Path = REPO_ROOT) -> dict[str, str]:
    """MLflow tags for the code a run trained with: the full commit, and `git_dirty` "true"
    when tracked files differed from it (the run's params still hold its whole config)."""
    state = git_state(repo)
    if state is None:
        return {"git_commit": "unknown"}
    return {"git_commit": state[0], "git_dirty": str(state[1]).lower()}


def plan(config: TrainJobConfig, resume: bool) -> tuple[str, dict[str, Any] | None]:
    """(run name, latest checkpoint meta or None); refuses to clobber or to redo a finished run."""
    if config.name is None and resume:
        raise ConfigError("--resume needs the run name: --set name=<run>")
    name = config.name or f"{config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    previous = checkpoints.latest(config.storage_path, name)
    if previous and not resume:
        raise ConfigError(f"run {name!r} already has checkpoints (epoch {previous['epoch']}) in "
                          f"{checkpoints.run_folder(config.storage_path, name)}: pass --resume or another name")
    if previous and previous["epoch"] >= config.train.epochs:
        raise ConfigError(f"run {name!r} already has {previous['epoch']} epochs: raise train.epochs to continue")
    if resume and previous is None:
        log.warning("nothing to resume for run %r: starting it", name)
    return name, previous


def initial_weights(config: TrainJobConfig, tracking_uri: str | None,
                    clean: list[str] | None = None) -> tuple[dict | None, str | None]:
    """(state_dict, pinned reference) of `train.init_from`, checked against the configured model.

    Weights of the same plain trunk with fewer layers are grown to the configured depth,
    computing the same function (`pipeline.models.denoise.deepen_state`), calibrated on a batch
    of training crops cut from `clean`."""
    ref = config.train.init_from
    if not ref:
        return None, None
    from pipeline.enhance.learned import resolve
    from pipeline.models.weights import load_weights, read_meta

    path, pinned = resolve(ref, tracking_uri)
    meta = read_meta(path)
    state = load_weights(path).state_dict()
    if meta["name"] != config.model.name or meta["config"] != config.model.params:
        if meta["name"] == config.model.name and clean:
            from pipeline.models.denoise import deepen_state

            grown = deepen_state(meta["name"], meta["config"], state, config.model.params,
                                 inputs=lambda: _calibration_inputs(config, clean))
            if grown is not None:
                log.info("train.init_from %s: grown from %s to %s", ref, meta["config"], config.model.params)
                return grown, pinned
        # Another architecture is fine when its weights fit this one exactly (a gray FFDNet's
        # weights start ffdnet_opponent); anything else is a config mistake.
        from pipeline.models import build

        try:
            build(config.model.name, **config.model.params).load_state_dict(state)
        except RuntimeError as err:
            raise ConfigError(f"train.init_from {ref}: holds {meta['name']} {meta['config']}, whose weights "
                              f"do not fit {config.model.name} {config.model.params}: {err}") from None
    return state, pinned


def _calibration_inputs(config: TrainJobConfig, clean: list[str]) -> tuple:
    """Model inputs of `data.val_count` crops of training pictures, made as training makes them."""
    import torch

    task = tasks.of(config.model_dump())
    made = task.validation_set(config.data.model_dump(), clean)
    return task.inputs({k: torch.from_numpy(v) for k, v in made.items()})


def loop_config(config: TrainJobConfig, *, val: list[str], start_epoch: int, run_id: str, uri: str,
                init_state: dict | None = None) -> dict[str, Any]:
    """Everything a worker needs, as plain values (pickled to every worker)."""
    return {"init_state": init_state,
        "model": config.model.model_dump(), "data": config.data.model_dump(), "train": config.train.model_dump(),
        "val": val, "threads": config.scaling.threads_per_worker,
        "steps_per_epoch": config.data.per_epoch // config.train.batch_size,
        "batch_size": config.train.batch_size, "worker_batch": config.train.batch_size // config.scaling.num_workers,
        "data_start_epoch": start_epoch, "run_id": run_id, "tracking_uri": uri,
    }


def make_trainer(config: TrainJobConfig, name: str, loop: dict[str, Any], dataset):
    import ray.train
    from ray.train.torch import TorchTrainer

    from pipeline.io.storage import normalize_url
    from pipeline.train.loop import train_loop

    s = config.scaling
    # Every worker reads the whole ordered stream and keeps its slice of each global batch
    # (as a DistributedSampler would): batches are then identical on every run and resume.
    # streaming_split hands blocks to whichever worker asks first, so a resumed DDP run
    # diverged (max weight difference 0.04 after 2 smoke epochs; 0.0 this way).
    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = True
    return TorchTrainer(
        train_loop, train_loop_config=loop, datasets={"train": dataset},
        dataset_config=ray.train.DataConfig(datasets_to_split=[], execution_options=options),
        scaling_config=ray.train.ScalingConfig(num_workers=s.num_workers, use_gpu=s.use_gpu,
                                               resources_per_worker={"CPU": s.cpus_per_worker}),
        run_config=ray.train.RunConfig(
            name=name, storage_path=normalize_url(config.storage_path),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            failure_config=ray.train.FailureConfig(max_failures=s.max_failures),
            worker_runtime_env={"env_vars": {"MLFLOW_TRACKING_URI": loop["tracking_uri"]}},
        ),
    )


def train(config: TrainJobConfig, *, resume: bool = False, tracking_uri: str | None = None) -> dict[str, Any]:
    """Run (or continue) training; returns run name and id, model version and final metrics."""
    name, previous = plan(config, resume)
    start_epoch = previous["epoch"] if previous else 0
    task = tasks.of(config.model_dump())
    clean, val = task.sources(config.data)
    uri = tracking.setup(config.tracking.experiment, tracking_uri)
    run_id, resumed = tracking.start_or_resume(config.tracking.experiment, name,
                                               run_id=previous and previous.get("mlflow_run_id"),
                                               tags={"model": config.model.name, **git_tags()})
    tracking.log_params_once(run_id, tracking.flat_params(config.model_dump(mode="json") | {"name": name}))
    init_state, init_ref = initial_weights(config, uri, clean) if previous is None else (None, None)
    if init_ref:
        tracking.log_params_once(run_id, {"train.init_from_pinned": init_ref})
    dataset = task.train_dataset(config.data, clean, start_epoch=start_epoch, epochs=config.train.epochs)
    loop = loop_config(config, val=val, start_epoch=start_epoch, run_id=run_id, uri=uri, init_state=init_state)
    try:
        result = make_trainer(config, name, loop, dataset).fit()
        version = finish(config, result.checkpoint, run_id=run_id, val=val, clean=clean)
    except BaseException:
        tracking.end_run(run_id, "FAILED")
        raise
    tracking.end_run(run_id)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return {"name": name, "run_id": run_id, "resumed": resumed, "start_epoch": start_epoch,
            "version": version, "metrics": metrics, "checkpoint": result.checkpoint.path}


def _history(run_id: str, names: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    from mlflow import MlflowClient

    client = MlflowClient()
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in names}


def finish(config: TrainJobConfig, checkpoint, *, run_id: str, val, clean) -> str | None:
    """Log final weights and figures from the last checkpoint; register a version. Returns it."""
    from mlflow import MlflowClient

    from pipeline.models import build
    from pipeline.models.weights import save_weights

    with checkpoint.as_directory() as folder:
        state, meta = checkpoints.read(folder)
    model = build(config.model.name, **config.model.params)
    model.load_state_dict(state["model"])
    model.eval()
    epoch = state["epoch"]
    artifact_path = f"weights/{checkpoints.dir_name(epoch)}"
    steps = json.dumps([s.model_dump() for s in config.data.steps])
    task = tasks.of(config.model_dump())
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        extra = {"run_id": run_id, "epoch": epoch, "metrics": meta.get("metrics", {}),
                 "data": task.data_list(clean), "steps": steps}
        save_weights(model, Path(tmp) / "weights.pt", name=config.model.name, config=config.model.params, extra=extra)
        client.log_artifacts(run_id, tmp, artifact_path)
    with tempfile.TemporaryDirectory() as tmp:
        task.figures(Path(tmp), model, config.data, val)
        figures.curves(Path(tmp) / "curves.png", _history(run_id, task.curves))
        client.log_artifacts(run_id, tmp, f"figures/{checkpoints.dir_name(epoch)}")
    if not config.tracking.register_as:
        return None
    tags = {**git_tags(), "steps": steps[:5000], "epoch": str(epoch),
            **task.tags(config.data, meta.get("metrics", {}))}
    version = tracking.register(config.tracking.register_as, run_id, artifact_path, tags)
    if config.tracking.alias:
        tracking.set_alias(config.tracking.register_as, config.tracking.alias, version)
    return version

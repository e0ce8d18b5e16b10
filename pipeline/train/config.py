"""The train job's config: `conf/train/<model>.yaml`, then `--set` overrides, then frozen.

Sections mirror the job: what to build (model), what to learn from (data), how to step
(train), where to run (scaling), where results go (tracking, storage_path, name). Unknown
keys fail at start-up with the valid ones listed (pipeline.config).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import CONF_DIR, Strict, apply_overrides, load_yaml, validate
from pipeline.degrade import DEGRADE, RETURNS_MASK
from pipeline.models import MODELS, spec

TRAIN_CONF_DIR = CONF_DIR / "train"
# Benchmarks report on these: never train or validate on them.
TEST_SETS = ("BSD68", "Set12", "CBSD68", "Set5", "Set14")
DEFAULT_STORAGE = "~/.cache/imgenhance/train"


class ModelConf(Strict):
    name: str
    """A `pipeline.models.MODELS` entry."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Builder keyword overrides (features, depth, ...): saved with the weights."""

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; known: {sorted(MODELS)}")
        return value


class StepConf(Strict):
    kind: str
    """A `pipeline.degrade.DEGRADE` kind."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Each a value, a [lo, hi] range drawn per pair, {choice: [...]} or {value: literal}."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability the step is applied to a pair."""

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in DEGRADE:
            raise ValueError(f"unknown degradation {value!r}; known: {sorted(DEGRADE)}")
        return value


class SourcesConf(Strict):
    clean: list[str] = Field(min_length=1)
    val: list[str] = Field(min_length=1)


class DataConf(Strict):
    clean: list[str] = Field(min_length=1)
    """Dataset folders under data_root() (e.g. `Train400[:360]`, a slice of the sorted files),
    local paths, fsspec URLs or `skimage:` pictures."""
    val: list[str] = Field(min_length=1)
    """Validation images: disjoint from `clean` and from the test sets."""
    fallback: SourcesConf | None = None
    """Used instead when a named dataset folder is missing (machines without the shared data)."""
    channels: Literal[1, 3] = 1
    crop: int = Field(64, ge=8)
    """Side of the clean (target) crop."""
    scale: int = Field(1, ge=1)
    """Target / input size: the factor of a `downscale` step for super-resolution."""
    steps: list[StepConf] = Field(min_length=1)
    per_epoch: int = Field(gt=0)
    """Training pairs per epoch (pair index = epoch * per_epoch + i)."""
    val_count: int = Field(64, gt=0)
    seed: int = Field(0, ge=0)
    num_cpus: float = Field(0.25, gt=0)
    """Logical CPUs of the pair-making actor: fractional so it never starves the trainers."""

    @field_validator("clean", "val")
    @classmethod
    def _no_test_sets(cls, values: list[str]) -> list[str]:
        for value in values:
            parts = {p.lower() for p in re.split(r"[/\\\[]", value)}
            hit = [t for t in TEST_SETS if t.lower() in parts]
            if hit:
                raise ValueError(f"{value!r} is the test set {hit[0]}: never train or validate on "
                                 f"{', '.join(TEST_SETS)}")
        return values


class TrainConf(Strict):
    epochs: int = Field(gt=0)
    """Total epochs of the run (a resumed run continues up to this)."""
    batch_size: int = Field(32, gt=0)
    """Global batch: split evenly across workers."""
    lr: float = Field(1e-3, gt=0)
    lr_min: float | None = Field(None, ge=0)
    """With a value: cosine decay from lr (epoch 0) to lr_min (last epoch); None = constant lr."""
    loss: Literal["l1", "mse", "charbonnier"] = "l1"
    bf16: bool = False
    """bfloat16 autocast for forward passes (loss and weights stay fp32): ~2x on avx512_bf16 CPUs."""
    channels_last: bool = False
    grad_clip: float | None = Field(None, gt=0)
    """Max gradient norm; None = no clipping."""
    init_from: str | None = None
    """Weights that start a fresh run (`bundled:NAME`, `models:/NAME/VERSION|@ALIAS`, a path):
    fine-tuning, or training on where an earlier machine left off. Same architecture required."""


class ScalingConf(Strict):
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(0.5, gt=0)
    """Fractional on 2-CPU nodes: whole CPUs per worker starve the data actor (deadlock)."""
    threads_per_worker: int | None = Field(None, ge=1)
    """torch intra-op threads per worker; None = Ray's default (from cpus_per_worker)."""
    max_failures: int = Field(2, ge=0)
    """Worker-group restarts (from the latest checkpoint) before the run fails."""


class TrackingConf(Strict):
    experiment: str = "imgenhance-train"
    register_as: str | None = None
    """Registered model that gets a new version at the end of each run (None = do not register)."""
    alias: str | None = None
    """Alias moved to that version (e.g. candidate); needs register_as. MLflow reserves
    `latest` and `v<number>`."""

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and (value.lower() == "latest" or re.fullmatch(r"v\d+", value.lower())):
            raise ValueError(f"alias {value!r} is reserved by MLflow (latest, v<number>): use e.g. candidate")
        return value


class TrainJobConfig(Strict):
    model: ModelConf
    data: DataConf
    train: TrainConf
    scaling: ScalingConf = ScalingConf()
    tracking: TrackingConf = TrackingConf()
    storage_path: str = DEFAULT_STORAGE
    """Ray Train checkpoints: a local path or s3:// URL."""
    name: str | None = None
    """Run name (checkpoint folder and MLflow run); None = `<model>-<time>`. Resuming needs it."""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError(f"run name {value!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainJobConfig:
        s, batch, workers = spec(self.model.name), self.train.batch_size, self.scaling.num_workers
        if batch % workers:
            raise ValueError(f"train.batch_size {batch} must be a multiple of scaling.num_workers {workers}")
        if self.data.per_epoch % batch:
            raise ValueError(f"data.per_epoch {self.data.per_epoch} must be a multiple of train.batch_size "
                             f"{batch} (e.g. {max(batch, round(self.data.per_epoch / batch) * batch)})")
        channels = self.model.params.get("channels", s.channels)
        if channels != self.data.channels:
            raise ValueError(f"model {self.model.name} takes {channels} channels, data.channels is {self.data.channels}")
        scale = self.model.params.get("scale", s.scale)
        if scale != self.data.scale or self.data.crop % self.data.scale:
            raise ValueError(f"data.scale {self.data.scale} must equal the model's scale {scale} and divide data.crop")
        if s.needs_mask and not any(step.kind in RETURNS_MASK for step in self.data.steps):
            raise ValueError(f"model {self.model.name} needs hole masks: add a step of {sorted(RETURNS_MASK)}")
        if self.tracking.alias and not self.tracking.register_as:
            raise ValueError("tracking.alias needs tracking.register_as")
        return self


def load_train_config(path: str | Path, overrides: list[str] = ()) -> TrainJobConfig:
    """A train config file (a bare name is looked up in conf/train/), overridden and validated."""
    path = Path(path)
    if not path.exists() and (TRAIN_CONF_DIR / path.with_suffix(".yaml").name).exists():
        path = TRAIN_CONF_DIR / path.with_suffix(".yaml").name
    data = apply_overrides(load_yaml(path), list(overrides))
    return validate(TrainJobConfig, data, str(path))

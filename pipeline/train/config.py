"""The train job's config: `conf/train/<model>.yaml`, then `--set` overrides, then frozen.

Sections mirror the job: what to build (model), what to learn from (data), how to step
(train), where to run (scaling), where results go (tracking, storage_path, name). Unknown
keys fail at start-up with the valid ones listed (pipeline.config).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import CONF_DIR, Strict, apply_overrides, load_yaml, validate
from pipeline.degrade import RETURNS_MASK
from pipeline.degrade.recipe import Step
from pipeline.labels import DEGRADATIONS, DOMAINS
from pipeline.models import MODELS, spec
from pipeline.models.classifier import StatsImageClassifier

TRAIN_CONF_DIR = CONF_DIR / "train"
# Benchmarks report on these: never train or validate on them.
TEST_SETS = ("BSD68", "Set12", "CBSD68", "Set5", "Set14")
DEFAULT_STORAGE = "~/.cache/imgenhance/train"
# Learned degradation decisions on the statistics detector's measurements (data.view stats).
STATS_MODELS = ("stats_mlp", "stats_cnn")


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


def refuse_test_sets(values: list[str] | None) -> list[str] | None:
    for value in values or ():
        parts = {p.lower() for p in re.split(r"[/\\\[]", value)}
        hit = [t for t in TEST_SETS if t.lower() in parts]
        if hit:
            raise ValueError(f"{value!r} is the test set {hit[0]}: never train or validate on "
                             f"{', '.join(TEST_SETS)}")
    return values


class SourcesConf(Strict):
    clean: list[str] = Field(min_length=1)
    val: list[str] = Field(min_length=1)

    _no_test_sets = field_validator("clean", "val")(refuse_test_sets)


class DataConf(Strict):
    clean: list[str] | None = Field(None, min_length=1)
    """Dataset folders under data_root() (e.g. `Train400[:360]`, a slice of the sorted files),
    local paths, fsspec URLs or `skimage:` pictures. Restoration models only."""
    val: list[str] | None = Field(None, min_length=1)
    """Validation images: disjoint from `clean` and from the test sets."""
    real_pairs: list[str] | None = Field(None, min_length=1)
    """Restoration models: clean targets of real degraded/clean pairs, written as `clean`
    (`rain100L_streaks/target[0:4]`); each one's input is the file of the same name in the
    sibling `input/` folder. A share `p_real` of the training crops comes from them."""
    p_real: float = Field(0.0, ge=0, le=1)
    """Share of training crops cut from `real_pairs` (the rest: `clean` + `steps`)."""
    fallback: SourcesConf | None = None
    """Used instead when a named dataset folder is missing (machines without the shared data)."""
    domains: dict[str, SourcesConf] | None = None
    """Classifiers only, instead of clean/val: per domain of pipeline.labels.DOMAINS its
    training (`clean`) and validation sources, written as `clean` above."""
    p_clean: float = Field(0.25, ge=0, le=1)
    """Classifiers: share of crops left clean; the others get one step of `steps`."""
    target: Literal["domain", "degradation"] | None = None
    """Single-head classifiers (resnet_single): the label their head predicts."""
    view: Literal["crop", "whole", "stats"] = "crop"
    """Classifiers: native-resolution `crop`s (what a degradation head needs), the `whole`
    picture squeezed to crop x crop (what a domain head needs, and what the enhance job's
    classify stage gives it) or the statistics detector's measurements of the picture
    (`stats`: for `stats_mlp`, degraded by the single-degradation recipes instead of
    `steps`); pipeline/train/classify_data.py. Restoration models: `crop` or `whole`, the
    picture squeezed to crop x crop and degraded there (`pairs.whole_view`): haze's depth runs
    over the whole scene, which a native crop only samples."""
    image_side: int | None = Field(None, ge=16)
    """`stats` view for `stats_cnn`: side of the picture input beside the statistics
    (`detector.decision_image`); must equal the model's `side`."""
    channels: Literal[1, 3] = 1
    crop: int = Field(64, ge=8)
    """Side of the clean (target) crop."""
    scale: int = Field(1, ge=1)
    """Target / input size: the factor of a `downscale` step for super-resolution."""
    augment: bool = True
    """Random flips and 90-degree rotations of every crop; false where orientation carries
    meaning (digits, text)."""
    steps: list[Step] = Field(default_factory=list)
    """Degradation steps, the recipe step format (pipeline.degrade.recipe.Step): kind, p and
    params, each param a value, [lo, hi], {choice: [...]} or {value: literal}. Required
    except for the classifiers' `stats` view."""
    per_epoch: int = Field(gt=0)
    """Training pairs per epoch (pair index = epoch * per_epoch + i)."""
    val_count: int = Field(64, gt=0)
    seed: int = Field(0, ge=0)
    num_cpus: float = Field(0.25, gt=0)
    """Logical CPUs of the pair-making actor: fractional so it never starves the trainers."""

    _no_test_sets = field_validator("clean", "val", "real_pairs")(refuse_test_sets)

    @model_validator(mode="after")
    def _steps_given(self) -> DataConf:
        if not self.steps and self.view != "stats":
            raise ValueError("data.steps: at least one degradation step is needed")
        if (self.p_real > 0) != bool(self.real_pairs):
            raise ValueError("data.p_real and data.real_pairs go together: a share of crops needs "
                             f"pairs to cut them from (p_real {self.p_real}, real_pairs {self.real_pairs})")
        return self

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: dict[str, SourcesConf] | None) -> dict[str, SourcesConf] | None:
        if value is not None and (len(value) < 2 or set(value) - set(DOMAINS)):
            raise ValueError(f"data.domains needs at least two of {list(DOMAINS)}, got {sorted(value)}")
        return value


class AdversarialConf(Strict):
    """GAN training (pipeline.train.adversarial): a discriminator trained against the model."""

    discriminator: str
    """A `pipeline.models.MODELS` entry of kind gan: srgan_d or attentive_d."""
    params: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(1e-3, gt=0)
    """Weight of the adversarial term in the generator's loss (SRGAN: 1e-3)."""
    lr: float = Field(1e-4, gt=0)
    """Discriminator learning rate (Adam, constant)."""
    map_weight: float = Field(0.05, ge=0)
    """attentive_d only: weight of its map loss (towards the generator's attention for fakes,
    zero for real images)."""

    @field_validator("discriminator")
    @classmethod
    def _a_discriminator(cls, value: str) -> str:
        gans = sorted(n for n, s in MODELS.items() if s.kind == "gan")
        if value not in gans:
            raise ValueError(f"unknown discriminator {value!r}; known: {gans}")
        return value


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
    """bfloat16 autocast for forward passes (loss and weights stay fp32): ~2x on avx512_bf16 CPUs.
    Ignored (fp32, with a warning) where the device has no fast bf16 (`loop.bf16_fast`)."""
    channels_last: bool = False
    grad_clip: float | None = Field(None, gt=0)
    """Max gradient norm; None = no clipping."""
    adversarial: AdversarialConf | None = None
    """GAN training: the model is the generator; None = the pixel loss alone."""
    init_from: str | None = None
    """Weights that start a fresh run (`bundled:NAME`, `models:/NAME/VERSION|@ALIAS`, a path):
    fine-tuning, or training on where an earlier machine left off. Same architecture required,
    except a plain trunk (FFDNet, DnCNN) with fewer layers: it is grown to `model.params.depth`
    computing the same function (`pipeline.models.denoise.deepen_state`)."""


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
        adversarial = self.train.adversarial
        if adversarial is not None:
            d_channels = adversarial.params.get("channels", spec(adversarial.discriminator).channels)
            if s.kind == "classifier" or d_channels != channels:
                raise ValueError(f"train.adversarial: {adversarial.discriminator} must judge the {channels}-channel "
                                 f"images model {self.model.name} restores (set adversarial.params.channels)")
        if self.data.real_pairs and self.data.scale != 1:
            raise ValueError("data.real_pairs are same-size pairs: they need data.scale 1")
        if s.needs_mask and not any(step.kind in RETURNS_MASK for step in self.data.steps):
            raise ValueError(f"model {self.model.name} needs hole masks: add a step of {sorted(RETURNS_MASK)}")
        if self.tracking.alias and not self.tracking.register_as:
            raise ValueError("tracking.alias needs tracking.register_as")
        if s.kind == "classifier":
            self._classifier_data()
        elif self.data.domains or self.data.target or not (self.data.clean and self.data.val):
            raise ValueError(f"model {self.model.name} learns from data.clean and data.val "
                             "(data.domains and data.target are for classifiers)")
        elif self.data.view == "stats":
            raise ValueError(f"model {self.model.name} restores pictures: data.view is crop or whole "
                             "(stats, the detector's statistics, is for stats_mlp and stats_cnn)")
        return self

    def _classifier_data(self) -> None:
        """Classifiers learn labelled domain crops: domains instead of clean/val, same-size steps,
        and a single head says which label it predicts, with as many classes."""
        data = self.data
        if not data.domains or data.clean or data.val or data.fallback or data.real_pairs:
            raise ValueError(f"model {self.model.name} learns from data.domains (not clean/val/fallback/real_pairs)")
        if any(step.kind == "downscale" for step in data.steps):
            raise ValueError("classifier crops keep their size: use upscale_back, not downscale")
        single = self.model.name in ("resnet_single", *STATS_MODELS)
        if single != (data.target is not None):
            raise ValueError("data.target (domain or degradation) is required by resnet_single, "
                             "stats_mlp and stats_cnn, and only by them")
        if (self.model.name in STATS_MODELS) != (data.view == "stats"):
            raise ValueError("data.view stats (the detector's statistics) is for stats_mlp and stats_cnn, "
                             "and they need it")
        if data.view == "stats" and data.target != "degradation":
            raise ValueError(f"{self.model.name} learns data.target degradation (statistics do not tell domains)")
        if self.model.name == "stats_cnn":
            side = self.model.params.get("side", inspect.signature(StatsImageClassifier).parameters["side"].default)
            if data.image_side != side:
                raise ValueError(f"stats_cnn: data.image_side ({data.image_side}) must equal model.params.side ({side})")
        elif data.image_side is not None:
            raise ValueError("data.image_side is the picture input of stats_cnn only")
        if single:
            labels = DOMAINS if data.target == "domain" else DEGRADATIONS
            classes = self.model.params.get("classes", len(DEGRADATIONS))
            if classes != len(labels):
                raise ValueError(f"data.target {data.target} has {len(labels)} classes: set "
                                 f"model.params.classes to {len(labels)}, not {classes}")


def _merged(base: dict, over: dict) -> dict:
    """`base` with `over`'s values: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merged(base[key], value) if both else value
    return out


def _load(path: Path) -> dict:
    """A config file; `base: <file>` (next to it) makes it that file's values plus its own, so
    variants (the single-task classifiers) share every setting they do not change. A variant
    naming another model does not inherit the base's model params."""
    data = load_yaml(path)
    base = data.pop("base", None)
    if not base:
        return data
    inherited = _load(path.parent / base)
    name = data.get("model", {}).get("name")
    if name and name != inherited.get("model", {}).get("name"):
        inherited.pop("model", None)  # another architecture: the base's model params mean nothing to it
    return _merged(inherited, data)


def load_train_config(path: str | Path, overrides: list[str] = ()) -> TrainJobConfig:
    """A train config file (a bare name is looked up in conf/train/), overridden and validated."""
    path = Path(path)
    if not path.exists() and (TRAIN_CONF_DIR / path.with_suffix(".yaml").name).exists():
        path = TRAIN_CONF_DIR / path.with_suffix(".yaml").name
    data = apply_overrides(_load(path), list(overrides))
    return validate(TrainJobConfig, data, str(path))

"""Typed configuration: loaded once from YAML, overridden by `--set key=value`, then frozen.

Every section is a pydantic model that forbids unknown keys, so a typo fails at start-up
with the list of valid keys instead of being ignored. Constructors elsewhere take explicit
arguments; jobs turn these models into those arguments in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.labels import DEGRADATIONS, DOMAINS, PASSTHROUGH, UNKNOWN_DOMAIN

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says what to fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConf(Strict):
    options: dict[str, Any] = Field(default_factory=dict)
    """fsspec options for s3:// URLs (endpoint_url, key, secret, ...); prefer AWS_* variables."""


class LimitsConf(Strict):
    max_pixels: int = Field(64_000_000, gt=0)
    """Images declaring more pixels are skipped with the reason, before any decoding."""
    max_member_bytes: int = Field(256 << 20, gt=0)
    """Archive members larger than this are skipped unread."""


class ReadConf(Strict):
    rows_per_block: int = Field(16, gt=0)
    bytes_per_block: int = Field(64 << 20, gt=0)
    files_per_task: int = Field(64, gt=0)
    """Loose files are read in chunks of this many per read task."""
    num_cpus: float = Field(0.25, gt=0)
    """Logical CPUs per read task: fractional so reads never starve the actor pools (2-CPU nodes)."""


class ClassifyConf(Strict):
    max_side: int = Field(512, gt=16)
    """The detector measures full-resolution crops of at most this side."""
    degradation_model: str | None = None
    """Model reference of the learned degradation decision (a `stats_mlp` on the detector's
    statistics, or a `stats_cnn` on them and the picture); null: the detector's hand-set rules
    decide. Pinned on the driver."""
    degradation_fallback: str | None = None
    """Used when the registry cannot answer `degradation_model`'s alias (no tracking store)."""
    degradation_max_z: float = Field(10.0, gt=0)
    """The rules decide instead for an image whose features lie further than this many
    standard deviations of the model's training data from their mean in any feature: an MLP
    does not extrapolate (the sample's fine-pitched interference read as noise of sigma 100)."""
    domain_model: str | None = None
    """Model reference of the whole-image domain classifier (`bundled:`, `models:/`, path);
    null: domain 'unknown'. Aliases are pinned on the driver, as for enhancers."""
    domain_fallback: str | None = None
    """Used when the registry cannot answer `domain_model`'s alias (no tracking store)."""
    domain_side: int = Field(128, ge=16)
    """Side of the squeezed copy the domain model sees (its training `crop`)."""
    domain_views: int = Field(1, ge=1, le=6)
    """Views of the picture whose probabilities the domain model averages: the whole picture,
    its mirror image, then 85 % windows at the corners (`pipeline.enhance.classify.domain_views`)."""
    domain_min_score: float = Field(0.0, ge=0, le=1)
    """Below this probability the domain is 'unknown' (the `classifier` benchmark suite
    tables accuracy and coverage against it)."""
    batch_size: int = Field(8, gt=0)
    num_cpus: float = Field(0.25, gt=0)
    max_actors: int = Field(2, ge=1)
    """Classify actors (each holds the models) when a domain or degradation model is set."""


class EnhancerConf(Strict):
    kind: str | None = None
    """Class to build, a name in pipeline.enhance.enhance.ENHANCERS (default: the enhancer's
    own name); e.g. `learned` with params {model: bundled:ffdnet_gray}."""
    num_cpus: float = Field(0.125, gt=0)
    """Logical CPUs per actor (fractional on small nodes: see STACK-NOTES, deadlock trap)."""
    num_gpus: float = Field(0.0, ge=0)
    min_actors: int = Field(1, ge=1)
    max_actors: int = Field(1, ge=1)
    batch_size: int = Field(4, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the enhancer's constructor."""


class OutputConf(Strict):
    rows_per_file: int = Field(5000, gt=0)
    """Result rows per Parquet part file; a part is also flushed every `flush_seconds`."""
    flush_seconds: float = Field(30.0, gt=0)
    jpeg_quality: int = Field(95, ge=1, le=100)
    num_cpus: float = Field(0.25, gt=0)


class TrackingConf(Strict):
    enabled: bool = True
    """Log every enhance run to MLflow (MLFLOW_TRACKING_URI, default ./mlflow.db)."""
    experiment: str = "imgenhance-enhance"


class RayConf(Strict):
    address: str | None = None
    """Existing cluster to join (also RAY_ADDRESS / --address); None starts a local one."""
    dashboard: bool = False
    """Start Ray's dashboard (http://127.0.0.1:8265) with a local cluster; ignored when joining
    one. Off, Ray keeps only the state API's minimal head. Off by default: the dashboard's module
    processes took ~1 % of a 2-core node's CPU in a 400-image throughput run, CPU the enhancers
    would use; the job logs its own progress."""


class EnhanceConfig(Strict):
    storage: StorageConf = StorageConf()
    limits: LimitsConf = LimitsConf()
    read: ReadConf = ReadConf()
    classify: ClassifyConf = ClassifyConf()
    routes: str = "routes.yaml"
    """Route table, relative to this config file's folder."""
    enhancers: dict[str, EnhancerConf] = Field(default_factory=dict)
    """Per-enhancer resources and constructor params; enhancers not listed get defaults."""
    output: OutputConf = OutputConf()
    tracking: TrackingConf = TrackingConf()
    ray: RayConf = RayConf()

    def enhancer(self, name: str) -> EnhancerConf:
        return self.enhancers.get(name, EnhancerConf())


class RouteRule(Strict):
    degradation: list[str]
    domain: list[str] | None = None
    """None matches any domain (including 'unknown')."""
    min_score: float = Field(0.0, ge=0, le=1)
    channels: Literal[1, 3] | None = None
    """1 matches gray images, 3 colour ones (an alpha channel aside); None matches both."""
    enhancer: str

    @field_validator("degradation", "domain", mode="before")
    @classmethod
    def _listify(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("degradation")
    @classmethod
    def _known_degradation(cls, value):
        return _check_known(value, DEGRADATIONS, "degradation")

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, value):
        return None if value is None else _check_known(value, DOMAINS + (UNKNOWN_DOMAIN,), "domain")


class RoutesConf(Strict):
    rules: list[RouteRule]
    default: str = PASSTHROUGH
    """Enhancer for images no rule matches."""


def _check_known(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid: {list(known)}")
    return values


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b.c=value' -> (['a', 'b', 'c'], YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.problem}); quote it") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def _explain(exc: ValidationError, model: type[BaseModel], origin: str) -> ConfigError:
    lines = [f"invalid config {origin}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key; valid keys here: {_valid_keys(model, err['loc'][:-1])}"
        lines.append(f"  {where}: {message}")
    return ConfigError("\n".join(lines))


def _valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for the unknown-key message."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif annotation is not None and getattr(annotation, "__args__", None):
            inner = [a for a in annotation.__args__ if isinstance(a, type) and issubclass(a, BaseModel)]
            model = inner[0] if inner else model
    return sorted(model.model_fields)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def validate(model: type[Strict], data: dict, origin: str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, model, origin) from None


def load_enhance_config(path: str | Path | None = None, overrides: list[str] = ()) -> tuple[EnhanceConfig, RoutesConf]:
    """The enhance job's config and its route table, validated and frozen."""
    path = Path(path) if path else CONF_DIR / "enhance.yaml"
    data = apply_overrides(load_yaml(path), list(overrides))
    config = validate(EnhanceConfig, data, str(path))
    routes_path = (path.parent / config.routes).resolve()
    routes = validate(RoutesConf, load_yaml(routes_path), str(routes_path))
    return config, routes

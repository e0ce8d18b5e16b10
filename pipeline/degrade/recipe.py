"""Recipes: validated, seeded random compositions of degradations, with their labels.

A recipe is a YAML list of steps. A step is
``{kind: <name in DEGRADE>, p: probability (default 1), params: {name: spec}}`` where a spec
is a fixed value, ``[lo, hi]`` (uniform; integers if both bounds are integers),
``{choice: [a, b, ...]}`` (one of the list), or ``{value: x}`` (x as is, for list-valued
parameters such as ``radius: {value: [4, 16]}``). A step may instead be
``{one_of: [step, ...], weights: [...], p: ...}`` to pick one alternative, e.g. one of the
three noise models for the "noise" label. A recipe file maps recipe names to recipes;
``conf/degrade/single.yaml`` names one recipe per label and backs `make_labelled`.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool, StrictFloat, StrictInt, field_validator, model_validator

from pipeline.degrade import DEGRADE, LABEL_OF, RETURNS_MASK
from pipeline.degrade.common import Seed, rng_of
from pipeline.labels import DEGRADATIONS

SINGLE_RECIPES = Path(__file__).resolve().parents[2] / "conf" / "degrade" / "single.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    """Pick one of the listed values uniformly."""

    choice: list[Any] = Field(min_length=1)


class Fixed(_Strict):
    """Use `value` as is (needed when the value itself is a two-element list)."""

    value: Any


Number = Union[StrictInt, StrictFloat]
Range = list[Number]  # [lo, hi]; its length and order are checked in Step
ParamSpec = Union[StrictBool, StrictInt, StrictFloat, str, Range, Choice, Fixed]


def _params_of(kind: str) -> list[str]:
    """Keyword parameters a degradation function accepts, besides `seed`."""
    sig = inspect.signature(DEGRADE[kind])
    return [n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY and n != "seed"]


class Step(_Strict):
    """One degradation with its probability and parameter specs."""

    kind: str
    p: float = Field(1.0, ge=0.0, le=1.0)
    params: dict[str, ParamSpec] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in DEGRADE:
            raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(DEGRADE)}")
        return kind

    @model_validator(mode="after")
    def _known_params(self) -> "Step":
        valid = _params_of(self.kind)
        for name, spec in self.params.items():
            if name not in valid:
                raise ValueError(f"{self.kind}: unknown param {name!r}; valid params: {', '.join(valid)}")
            if isinstance(spec, list) and (len(spec) != 2 or spec[0] > spec[1]):
                raise ValueError(f"{self.kind}.{name}: a range is [lo, hi] with lo <= hi, got {spec}")
        return self


class OneOf(_Strict):
    """Pick one of several steps (weighted), then apply it with its own probability."""

    one_of: list[Step] = Field(min_length=1)
    weights: list[float] | None = None
    p: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _weights_match(self) -> "OneOf":
        w = self.weights
        if w is not None and (len(w) != len(self.one_of) or min(w) < 0 or sum(w) <= 0):
            raise ValueError(f"weights must be {len(self.one_of)} non-negative numbers with a positive sum")
        return self


class Recipe(RootModel[list[Union[Step, OneOf]]]):
    """An ordered list of steps; validated on construction."""


def _plain(value: Any) -> Any:
    """numpy scalars and tuples -> plain JSON-friendly Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def sample_param(spec: Any, rng: np.random.Generator) -> Any:
    """Draw one concrete value from a parameter spec."""
    if isinstance(spec, Choice):
        return _plain(spec.choice[int(rng.integers(len(spec.choice)))])
    if isinstance(spec, Fixed):
        return _plain(spec.value)
    if isinstance(spec, list):
        lo, hi = spec
        if all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
            return int(rng.integers(lo, hi + 1))
        return float(rng.uniform(lo, hi))
    return spec


def _sample_step(step: Step, rng: np.random.Generator) -> dict[str, Any] | None:
    if rng.random() >= step.p:
        return None
    params = {name: sample_param(spec, rng) for name, spec in step.params.items()}
    return {"kind": step.kind, "label": LABEL_OF[step.kind], "params": params}


def sample_recipe(recipe: Recipe | list, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Draw which steps run and their concrete params: ``[{kind, label, params}, ...]``."""
    recipe = recipe if isinstance(recipe, Recipe) else Recipe.model_validate(recipe)
    drawn = []
    for item in recipe.root:
        if isinstance(item, OneOf):
            if rng.random() >= item.p:
                continue
            w = np.asarray(item.weights or [1.0] * len(item.one_of), float)
            item = item.one_of[int(rng.choice(len(w), p=w / w.sum()))]
        step = _sample_step(item, rng)
        if step is not None:
            drawn.append(step)
    return drawn


def apply_recipe(image: np.ndarray, recipe: Recipe | list, seed: Seed) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Degrade `image` by a recipe; returns the result and the steps applied, in order.

    One Generator drives both the draws and every step, so the seed fixes the bytes.
    Damage masks are dropped here; call the damage function directly to keep one.
    """
    rng = rng_of(seed)
    steps = sample_recipe(recipe, rng)
    for step in steps:
        out = DEGRADE[step["kind"]](image, seed=rng, **step["params"])
        image = out[0] if step["kind"] in RETURNS_MASK else out
    return image, steps


def load_recipes(path: str | Path) -> dict[str, Recipe]:
    """Read and validate a recipe file (a mapping of recipe name -> list of steps)."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of recipe name -> list of steps")
    recipes = {}
    for name, steps in raw.items():
        try:
            recipes[str(name)] = Recipe.model_validate(steps)
        except ValueError as err:
            raise ValueError(f"{path}: recipe {name!r}: {err}") from err
    return recipes


@functools.lru_cache(maxsize=4)
def _cached(path: str) -> dict[str, Recipe]:
    return load_recipes(path)


def make_labelled(
    image: np.ndarray, label: str, seed: Seed, path: str | Path = SINGLE_RECIPES
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One example of degradation class `label` from the single-degradation recipes.

    "clean" returns an unchanged copy and no steps.
    """
    if label not in DEGRADATIONS:
        raise ValueError(f"unknown label {label!r}; valid labels: {', '.join(DEGRADATIONS)}")
    if label == "clean":
        return image.copy(), []
    recipes = _cached(str(path))
    if label not in recipes:
        raise ValueError(f"{path} has no recipe for label {label!r}")
    return apply_recipe(image, recipes[label], seed)

"""Degradation recipes: validation, sampling, application, shipped conf/degrade files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.degrade import recipe as rc
from pipeline.labels import DEGRADATIONS

CONF = Path(__file__).resolve().parents[1] / "conf" / "degrade"
YAMLS = sorted(CONF.glob("*.yaml"))


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:48]
    base = 0.5 + 0.25 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    return np.rint(np.stack([base, base * 0.8, 1 - base], axis=2) * 255).astype(np.uint8)


def test_conf_dir_has_the_shipped_files():
    assert {p.name for p in YAMLS} >= {"single.yaml", "mixed.yaml"}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.name)
def test_every_recipe_file_loads_and_applies(path):
    recipes = rc.load_recipes(path)
    assert recipes
    for name, recipe in recipes.items():
        out, steps = rc.apply_recipe(_image(), recipe, seed=0)
        assert out.shape == (48, 48, 3) and out.dtype == np.uint8, name
        assert json.loads(json.dumps(steps)) == steps, name


def test_single_has_one_recipe_per_label_producing_only_that_label():
    recipes = rc.load_recipes(CONF / "single.yaml")
    assert set(recipes) == set(DEGRADATIONS) - {"clean"}
    for label in recipes:
        for seed in range(4):
            out, steps = rc.make_labelled(_image(), label, seed)
            assert steps and {s["label"] for s in steps} == {label}
            assert out.shape == _image().shape


def test_make_labelled_clean_and_unknown_label():
    image = _image()
    out, steps = rc.make_labelled(image, "clean", 0)
    assert steps == [] and np.array_equal(out, image) and out is not image
    with pytest.raises(ValueError, match="valid labels"):
        rc.make_labelled(image, "fog", 0)


def test_apply_recipe_is_deterministic_per_seed():
    recipe = rc.load_recipes(CONF / "mixed.yaml")["low_light_noisy"]
    a, la = rc.apply_recipe(_image(), recipe, seed=11)
    b, lb = rc.apply_recipe(_image(), recipe, seed=11)
    c, _ = rc.apply_recipe(_image(), recipe, seed=12)
    assert a.tobytes() == b.tobytes() and la == lb
    assert a.tobytes() != c.tobytes()
    assert [s["kind"] for s in la][:2] == ["low_light", "gaussian_noise"]


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValidationError, match="unknown degradation .fog.; known: .*gaussian_noise"):
        rc.Recipe.model_validate([{"kind": "fog"}])


@pytest.mark.parametrize(
    "step, message",
    [
        ({"kind": "jpeg", "prob": 0.5}, "prob"),
        ({"kind": "jpeg", "params": {"qualty": 10}}, "valid params: quality"),
        ({"kind": "jpeg", "params": {"quality": [50, 10]}}, "lo <= hi"),
        ({"kind": "jpeg", "params": {"quality": [10, 20, 30]}}, "range"),
        ({"kind": "jpeg", "params": {"quality": {"pick": [1]}}}, "quality"),
        ({"kind": "jpeg", "p": 1.5}, "less than or equal"),
        ({"one_of": [{"kind": "jpeg"}], "weights": [1, 2]}, "weights"),
    ],
)
def test_bad_steps_rejected(step, message):
    with pytest.raises(ValidationError, match=message):
        rc.Recipe.model_validate([step])


def test_load_recipes_names_the_bad_recipe(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("good:\n  - kind: jpeg\nbroken:\n  - kind: nope\n")
    with pytest.raises(ValueError, match="recipe 'broken'"):
        rc.load_recipes(path)


def test_param_specs_sample_plain_values():
    rng = np.random.default_rng(0)
    ints = {rc.sample_param([2, 4], rng) for _ in range(200)}
    assert ints == {2, 3, 4}
    floats = [rc.sample_param([0.5, 1.5], rng) for _ in range(50)]
    assert all(type(v) is float and 0.5 <= v <= 1.5 for v in floats)
    assert rc.sample_param(rc.Choice(choice=["rows", "columns"]), rng) in ("rows", "columns")
    assert rc.sample_param(rc.Fixed(value=[4, 16]), rng) == [4, 16]
    assert rc.sample_param(7.5, rng) == 7.5


def test_probability_and_one_of_weights():
    recipe = rc.Recipe.model_validate(
        [
            {"kind": "jpeg", "p": 0.0},
            {"one_of": [{"kind": "gaussian_noise"}, {"kind": "haze"}], "weights": [0, 1]},
            {"kind": "holes", "p": 1.0, "params": {"size": {"value": [0.1, 0.2]}}},
        ]
    )
    for seed in range(5):
        steps = rc.sample_recipe(recipe, np.random.default_rng(seed))
        assert [s["kind"] for s in steps] == ["haze", "holes"]
        assert steps[1] == {"kind": "holes", "label": "damage", "params": {"size": [0.1, 0.2]}}


def test_apply_recipe_accepts_plain_list():
    out, steps = rc.apply_recipe(_image(), [{"kind": "downscale", "params": {"factor": 2}}], seed=0)
    assert out.shape == (24, 24, 3)
    assert steps == [{"kind": "downscale", "label": "low_resolution", "params": {"factor": 2}}]

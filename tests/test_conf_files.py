"""Every YAML file under conf/ is validated by the model of the code that reads it.

A file under conf/ that no entry of VALIDATORS covers fails here: when you add a config
file (or a folder of them), add the function that loads it for real to VALIDATORS.
"""

import fnmatch
import shutil
from pathlib import Path

import pytest
import yaml

from jobs.benchmark import SUITES, load_config
from pipeline.config import CONF_DIR, RoutesConf, load_enhance_config, load_yaml, validate
from pipeline.degrade.recipe import load_recipes
from pipeline.train.config import load_train_config


def _benchmarks(path: Path) -> None:
    suites = load_config(path)["suites"]
    assert set(suites) == set(SUITES), f"{path}: every suite of jobs.benchmark.SUITES needs an entry (--suite standard)"


# conf-relative glob -> the loader the jobs use (each raises on an invalid file)
VALIDATORS = {
    "enhance.yaml": load_enhance_config,  # also loads the routes file it names
    "routes.yaml": lambda path: validate(RoutesConf, load_yaml(path), str(path)),
    "benchmarks.yaml": _benchmarks,
    "train/*.yaml": load_train_config,
    "degrade/*.yaml": load_recipes,
}

FILES = sorted(p.relative_to(CONF_DIR).as_posix() for p in CONF_DIR.rglob("*") if p.suffix in (".yaml", ".yml"))


def _validator(rel: str):
    return next((fn for pattern, fn in VALIDATORS.items() if fnmatch.fnmatchcase(rel, pattern)), None)


@pytest.mark.parametrize("rel", FILES)
def test_conf_file_is_valid(rel):
    validator = _validator(rel)
    assert validator is not None, f"conf/{rel} has no validator: add the loader that reads it to VALIDATORS"
    validator(CONF_DIR / rel)


@pytest.mark.parametrize("rel", FILES)
def test_validator_rejects_a_stray_key(rel, tmp_path):
    """The validators are strict: the same file with one unknown top-level key fails."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    data = yaml.safe_load((conf / rel).read_text())
    (conf / rel).write_text(yaml.safe_dump({**data, "no_such_key": 1}))
    with pytest.raises((ValueError, AssertionError), match="no_such_key"):
        _validator(rel)(conf / rel)


def test_every_conf_file_is_found():
    assert {"enhance.yaml", "routes.yaml", "benchmarks.yaml"} <= set(FILES)
    assert any(f.startswith("train/") for f in FILES) and any(f.startswith("degrade/") for f in FILES)


def test_derain_scores_only_the_rain100l_pairs_no_model_trains_on():
    """The derain suite's held-out Rain100L stems and the weather fine-tune's real pairs split
    the set: none shared, and none of the pairs whose backgrounds are CBSD68 pictures trained on."""
    from pipeline.degrade import pairs
    from pipeline.train.data import real_sources
    from tests.conftest import require_dataset

    require_dataset("rain100L_streaks")
    (case,) = [c for c in load_config(CONF_DIR / "benchmarks.yaml")["suites"]["derain"]["cases"] if c["name"] == "rain100L"]
    held = {str(s) for s in case["stems"]}
    trained = {Path(p).stem for p in pairs.expand(real_sources(load_train_config("attentive_gan_rain100l").data))}
    assert trained and not held & trained
    assert {"4", "19", "22", "34", "40", "67", "79"} <= held  # CBSD68 scenes (rain100L_streaks/SOURCE.md)


def test_no_dehazer_trains_on_the_real_haze_the_benchmark_scores():
    """The weather-synthetic suite scores dehazers on O-HAZE's pairs: no model made to remove
    haze may see them (other models may train on their clean targets)."""
    from pipeline.models import spec

    (case,) = [c for c in load_config(CONF_DIR / "benchmarks.yaml")["suites"]["weather-synthetic"]["cases"]
               if c["name"] == "o-haze"]
    dehazers = [load_train_config(p) for p in sorted((CONF_DIR / "train").glob("*.yaml"))]
    dehazers = [c for c in dehazers if "haze" in spec(c.model.name).consumes]
    assert {c.model.name for c in dehazers} >= {"dehaze_net", "transmission_dehazer"}
    for config in dehazers:
        sources = (config.data.clean or []) + (config.data.val or []) + (config.data.real_pairs or [])
        assert not [s for s in sources if s.split("[")[0].split("/")[0] == case["pairs"]], config.model.name

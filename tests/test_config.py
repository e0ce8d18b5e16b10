from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_enhance_config, validate, RoutesConf
from pipeline.enhance.route import choose, enhancers_in


def test_shipped_enhance_config_and_routes_load():
    config, routes = load_enhance_config()
    assert config.limits.max_pixels > 0 and routes.rules
    from pipeline.enhance.enhance import ENHANCERS
    from pipeline.labels import PASSTHROUGH

    for name in enhancers_in(routes):  # a built-in enhancer, or a pool conf/enhance.yaml configures
        assert name == PASSTHROUGH or name in ENHANCERS or name in config.enhancers, name
    for name, pool in config.enhancers.items():
        assert (pool.kind or name) in ENHANCERS, f"conf/enhance.yaml: pool {name} has unknown kind {pool.kind or name}"
    # the learned routes follow the registry's champion and fall back to shipped weights
    for name in ("denoise", "upscale"):
        assert config.enhancers[name].kind == "learned" and config.enhancers[name].params["fallback"].startswith("bundled:")


def test_shipped_pools_fit_a_two_cpu_node():
    """Every routed pool keeps its first actor for the whole run; on the 2-CPU machines the job
    targets, those plus one read/decode task must fit, or the run waits forever."""
    from pipeline.enhance.flow import min_cpus

    config, routes = load_enhance_config()
    assert min_cpus(config, routes) <= 2.0
    heavier = load_enhance_config(None, ["enhancers.denoise.num_cpus=1", "enhancers.upscale.num_cpus=1"])
    assert min_cpus(*heavier) == pytest.approx(min_cpus(config, routes) + 1.5)



def test_run_warns_when_the_cluster_cannot_hold_the_pools(caplog):
    from pipeline.enhance.flow import min_cpus, warn_if_short

    config, routes = load_enhance_config()
    assert not warn_if_short(config, routes, 2.0) and not caplog.records
    assert warn_if_short(config, routes, 1.0)
    assert f"hold {min_cpus(config, routes):.3g} CPUs" in caplog.text and "cluster has 1" in caplog.text


def test_unknown_key_is_rejected_with_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_enhance_config(None, ["limits.max_pixelz=5"])
    assert "max_pixels" in str(err.value) and "limits.max_pixelz" in str(err.value)


def test_override_changes_value_and_bad_type_fails():
    config, _ = load_enhance_config(None, ["limits.max_pixels=1000", "enhancers.nlmeans.max_actors=3"])
    assert config.limits.max_pixels == 1000 and config.enhancer("nlmeans").max_actors == 3
    with pytest.raises(ConfigError, match="max_pixels"):
        load_enhance_config(None, ["limits.max_pixels=lots"])
    with pytest.raises(ConfigError, match="key=value"):
        load_enhance_config(None, ["limits"])


def test_missing_config_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_enhance_config(tmp_path / "nope.yaml")


def test_routes_reject_unknown_labels():
    with pytest.raises(ConfigError, match="unknown degradation"):
        validate(RoutesConf, {"rules": [{"degradation": "fog", "enhancer": "dehaze"}]}, "test")


def test_first_matching_rule_wins_and_threshold_applies():
    routes = validate(
        RoutesConf,
        {"rules": [
            {"degradation": "noise", "domain": "satellite", "enhancer": "bilateral"},
            {"degradation": ["noise", "salt_pepper"], "min_score": 0.6, "enhancer": "nlmeans"},
        ]},
        "test",
    )
    assert choose(routes, "satellite", "noise", 0.1)[0] == "bilateral"
    assert choose(routes, "unknown", "noise", 0.7)[0] == "nlmeans"
    enhancer, reason = choose(routes, "unknown", "noise", 0.5)
    assert enhancer == "passthrough" and "default" in reason


def test_route_rule_on_gray_or_colour():
    routes = RoutesConf.model_validate({"rules": [
        {"degradation": "noise", "channels": 1, "enhancer": "denoise"},
        {"degradation": "noise", "enhancer": "nlmeans"}]})
    assert choose(routes, "unknown", "noise", 0.9, channels=1)[0] == "denoise"
    assert choose(routes, "unknown", "noise", 0.9, channels=2)[0] == "denoise"  # gray + alpha
    assert choose(routes, "unknown", "noise", 0.9, channels=3)[0] == "nlmeans"
    enhancer, reason = choose(routes, "unknown", "noise", 0.9, channels=4)
    assert enhancer == "nlmeans" and "rule 2" in reason
    assert "gray" in choose(routes, "unknown", "noise", 0.9, channels=1)[1]
    with pytest.raises(ValueError):
        RoutesConf.model_validate({"rules": [{"degradation": "noise", "channels": 2, "enhancer": "x"}]})

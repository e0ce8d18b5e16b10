"""Compare job: the promotion rule alone, then against a real `mlflow server` and real Ray.

Integration: two versions of one registered model (an untrained and the shipped gray
FFDNet, logged as the train job logs its weights); the compare job measures both on a
2-image suite, promotes the measured best, refuses a worse one and a gain within the margin,
and the enhance job then runs `models:/<name>@champion` and records the promoted version in
its rows.
"""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from pipeline.compare import CompareConf, CompareRule, decide
from pipeline.config import CONF_DIR, load_yaml, validate
from tests.conftest import _free_port, noisy, png_bytes, small

NAME = "cmp-denoiser"
RULE = CompareRule(suite="denoise-gray", primary="psnr", secondary="ssim", margin=0.25, tolerance=0.01)


def _table(scores: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(scores, orient="index", columns=["psnr", "ssim"])


def test_without_champion_the_best_is_promoted():
    decision = decide(_table({"1": (28.0, 0.80), "2": (29.0, 0.70), "3": (28.5, 0.90)}), None, RULE)
    assert decision.promote and decision.version == "2" and "no champion yet" in decision.reason


@pytest.mark.parametrize("candidate, promote, reason", [
    ((30.0, 0.80), False, "already has the best"),     # a tie: the champion stays
    ((29.0, 0.90), False, "already has the best"),     # worse on the primary metric
    ((30.25, 0.80), False, "not more than the margin"),  # gains exactly the margin
    ((30.5, 0.785), False, "more than the tolerance"),    # gains, but loses 0.015 SSIM
    ((30.5, 0.795), True, "beats champion v1"),           # gains, loses 0.005 SSIM: allowed
])
def test_champion_moves_only_past_the_margin_and_within_the_tolerance(candidate, promote, reason):
    decision = decide(_table({"1": (30.0, 0.80), "2": candidate}), "1", RULE)
    assert decision.promote is promote and reason in decision.reason
    assert decision.version == ("2" if promote else "1")


def test_lower_is_better_metric():
    rule = CompareRule(suite="mnist-noise", primary={"name": "mse", "higher_is_better": False}, margin=0.001)
    table = pd.DataFrame({"mse": [0.020, 0.010]}, index=["1", "2"])
    assert decide(table, "1", rule).promote and decide(table, "1", rule).version == "2"
    assert not decide(table.iloc[::-1].set_axis(["1", "2"]), "1", rule).promote


def test_compare_rules_in_config_name_suites_that_evaluate_models():
    from jobs.benchmark import SUITES

    config = load_yaml(CONF_DIR / "benchmarks.yaml")
    rules = validate(CompareConf, config["compare"], "compare")
    for rule in [*rules.models.values(), *rules.kinds.values()]:
        assert rule.suite in SUITES and "models" in config["suites"][rule.suite]
    assert rules.rule("any-gray-denoiser", lambda: ("denoise", 1)).suite == "denoise-gray"
    assert rules.rule("a-luma-sr", lambda: ("sr", 1)).suite == "sr-x4"
    with pytest.raises(LookupError, match="no compare rule"):
        rules.rule("a-classifier", lambda: ("classifier", 3))


def test_a_suite_s_own_baseline_rows_are_not_versions():
    from pipeline.compare import evaluate

    def suite(conf, seed):
        return [{"model": "bicubic (MATLAB imresize)", "psnr": 28.4}] + [{"model": m, "psnr": 30.0} for m in conf["models"]]

    rows = evaluate(suite, {}, "sr", ["1", "2"], "sqlite:///x.db", 0)
    assert list(rows["version"]) == ["1", "2"]
    with pytest.raises(ValueError, match="no rows"):
        evaluate(lambda conf, seed: [{"model": "bicubic", "psnr": 1.0}], {}, "sr", ["1"], "sqlite:///x.db", 0)


def test_unreachable_registry_falls_back_to_the_bundled_weights():
    from pipeline.enhance.enhance import resolved_params

    params = {"model": "models:/absent@champion", "fallback": "bundled:ffdnet_gray",
              "tracking_uri": f"http://127.0.0.1:{_free_port()}"}
    assert resolved_params("learned", params, 1)["model"] == "bundled:ffdnet_gray"


def _tiny_suite(root):
    """IMGENHANCE_DATA root with a 2-image gray dataset `Tiny` (not among the smoke training images)."""
    (root / "Tiny").mkdir(parents=True)
    for name in ("cell", "astronaut"):
        image = small(name, 96)
        (root / "Tiny" / f"{name}.png").write_bytes(png_bytes(image if image.ndim == 2 else image[:, :, 1]))
    return root


def _log_version(model, name: str, config: dict, uri: str, tmp) -> str:
    """One registered version, logged as the train job logs one: `weights.pt` + JSON under
    `weights/epoch_00001` of its own MLflow run, registered under NAME."""
    import mlflow

    from pipeline import tracking
    from pipeline.models.weights import save_weights

    tracking.setup("test-compare", uri)
    with mlflow.start_run() as run:
        save_weights(model, tmp / "weights.pt", name=name, config=config)
        mlflow.log_artifacts(str(tmp), "weights/epoch_00001")
    return tracking.register(NAME, run.info.run_id, "weights/epoch_00001")


@pytest.fixture(scope="module")
def two_versions(mlflow_server, ray_cluster, tmp_path_factory):
    """Version 1: an untrained smoke-sized FFDNet; version 2: the shipped gray FFDNet. (The
    train job's own registration is tested in test_train; here only the versions matter.)"""
    import torch

    from pipeline.enhance.learned import resolve
    from pipeline.models import build
    from pipeline.models.weights import load_weights, read_meta

    torch.manual_seed(0)
    untrained = build("ffdnet", features=16, depth=4)
    path, _ = resolve("bundled:ffdnet_gray")
    shipped, meta = load_weights(path), read_meta(path)
    versions = [_log_version(untrained, "ffdnet", {"features": 16, "depth": 4}, mlflow_server,
                             tmp_path_factory.mktemp("v1")),
                _log_version(shipped, meta["name"], meta["config"], mlflow_server, tmp_path_factory.mktemp("v2"))]
    assert versions == ["1", "2"]
    return mlflow_server


def _compare(uri: str, output, *extra: str) -> int:
    from jobs import compare

    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args(["--model", NAME, "--tracking-uri", uri, "--output", str(output),
                              "--set", "settings.datasets=[Tiny]", "--set", "settings.sigmas=[25]", *extra])
    return compare.main(args)


def _champion(client) -> str:
    return client.get_model_version_by_alias(NAME, "champion").version


@pytest.mark.integration
def test_compare_promotes_the_measured_best_and_guards_the_champion(two_versions, tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from jobs import cli

    uri, client = two_versions, MlflowClient(two_versions)
    monkeypatch.setenv("IMGENHANCE_DATA", str(_tiny_suite(tmp_path / "data")))
    assert _compare(uri, tmp_path / "c1", "--promote") == 0
    table = pd.read_parquet(tmp_path / "c1" / "compare.parquet").set_index("version")
    assert list(table.index) == ["1", "2"] and (table["rows"] == 2).all()
    best, worse = table["psnr"].idxmax(), table["psnr"].idxmin()
    assert best != worse and _champion(client) == best
    assert "no champion yet" in capsys.readouterr().out
    exp = client.get_experiment_by_name("imgenhance-compare")
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert run.data.params["versions"] == "1,2" and run.data.params["suite"] == "denoise-gray"
    assert run.data.tags["promoted"] == best and run.data.metrics[f"psnr.v{best}"] == pytest.approx(table.psnr[best])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"compare.parquet", "compare.md", "compare.png"}

    # Only the worse version named: the champion is measured too, and stays.
    assert _compare(uri, tmp_path / "c2", "--promote", "--version", worse) == 0
    assert _champion(client) == best and "already has the best" in capsys.readouterr().out
    # The worse one as champion: a gain within the margin is refused, past it (SSIM allowed) promoted.
    client.set_registered_model_alias(NAME, "champion", worse)
    gain = table["psnr"][best] - table["psnr"][worse]
    assert _compare(uri, tmp_path / "c3", "--promote", "--set", f"margin={gain + 0.01}") == 0
    assert _champion(client) == worse and "not more than the margin" in capsys.readouterr().out
    assert _compare(uri, tmp_path / "c4", "--promote", "--set", "margin=0", "--set", "tolerance=1") == 0
    assert _champion(client) == best

    # The enhance job routes to the champion and its rows name the promoted version.
    (tmp_path / "routes.yaml").write_text("rules:\n  - {degradation: noise, enhancer: denoise_net}\n")
    (tmp_path / "enhance.yaml").write_text(
        "routes: routes.yaml\nenhancers:\n  denoise_net: {kind: learned, params: "
        f"{{model: 'models:/{NAME}@champion', fallback: 'bundled:ffdnet_gray'}}}}\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cam.png").write_bytes(png_bytes(noisy(small("camera", 64), 30)))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert cli.main(["run", "--config", str(tmp_path / "enhance.yaml"), "--input", str(tmp_path / "in"),
                     "--output", str(tmp_path / "out")]) == 0
    from pipeline.io import results

    row = results.read_results(str(tmp_path / "out"), None).to_pylist()[0]
    assert row["status"] == "ok" and row["enhancer"] == "denoise_net", row
    assert row["model"] == f"models:/{NAME}/{best}"


@pytest.mark.integration
def test_compare_errors_exit_2(two_versions, tmp_path, capsys):
    from jobs import compare

    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    assert compare.main(parser.parse_args(["--model", "no-such-model", "--tracking-uri", two_versions])) == 2
    assert "no registered model 'no-such-model'" in capsys.readouterr().err
    assert _compare(two_versions, tmp_path, "--version", "9") == 2
    assert "has no version ['9']" in capsys.readouterr().err
    assert _compare(two_versions, tmp_path, "--suite", "pairs") == 2
    assert "cannot evaluate model versions" in capsys.readouterr().err


@pytest.mark.integration
def test_missing_alias_falls_back_and_benchmark_logs_a_run_per_model(two_versions, tmp_path, monkeypatch):
    import yaml
    from mlflow import MlflowClient

    from jobs import benchmark
    from pipeline.enhance.enhance import resolved_params

    params = {"model": f"models:/{NAME}@no-such-alias", "fallback": "bundled:ffdnet_gray", "tracking_uri": two_versions}
    assert resolved_params("learned", params, 1)["model"] == "bundled:ffdnet_gray"

    monkeypatch.setenv("IMGENHANCE_DATA", str(_tiny_suite(tmp_path / "data")))
    # Only --tracking-uri leads to the server: the versions must resolve there, not here.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    suite = {"seed": 0, "datasets": ["Tiny"], "sigmas": [25], "protocols": ["8bit"], "models": ["nlmeans"]}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"output": str(tmp_path / "bench"), "suites": {"denoise-gray": suite}}))
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    args = parser.parse_args(["--suite", "denoise-gray", "--config", str(tmp_path / "b.yaml"), "--report",
                              str(tmp_path / "B.md"), "--model", f"models:/{NAME}/1", "--model", "bilateral",
                              "--tracking-uri", two_versions])
    assert benchmark.main(args) == 0
    rows = pd.read_parquet(tmp_path / "bench" / "denoise-gray.parquet")
    client = MlflowClient(two_versions)
    exp = client.get_experiment_by_name("imgenhance-benchmark")
    runs = {r.data.params["model"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {f"models:/{NAME}/1", "classical:bilateral"} == set(rows["model"])
    for model, run in runs.items():
        assert run.data.metrics["psnr"] == pytest.approx(rows[rows.model == model].psnr.mean())
        assert "--model bilateral" in run.data.params["command"]
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["denoise-gray.parquet"]

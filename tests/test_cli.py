import json

import pytest

from jobs import cli
from pipeline.io import results


def test_bad_config_key_exits_2_with_valid_keys(tmp_path, capsys):
    code = cli.main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--set", "limits.nope=1"])
    err = capsys.readouterr().err
    assert code == 2 and "max_pixels" in err and "limits.nope" in err


def test_missing_input_exits_2(tmp_path, capsys):
    code = cli.main(["run", "--input", str(tmp_path / "absent"), "--output", str(tmp_path / "o")])
    assert code == 2 and "input not found" in capsys.readouterr().err


def test_unknown_enhancer_in_routes_exits_2(tmp_path, capsys):
    (tmp_path / "routes.yaml").write_text("rules:\n  - {degradation: noise, enhancer: magic}\n")
    (tmp_path / "enhance.yaml").write_text("routes: routes.yaml\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    code = cli.main(["run", "--config", str(tmp_path / "enhance.yaml"), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")])
    assert code == 2 and "magic" in capsys.readouterr().err


@pytest.mark.integration
def test_run_without_arguments_enhances_the_sample(ray_cluster, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGENHANCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 0
    summary = json.loads((tmp_path / "out" / "_results" / "summary.json").read_text())
    routes = {r for r in summary["by_route"] if r not in ("-", "passthrough")}
    assert len(routes) >= 3, summary
    rows = results.read_results(str(tmp_path / "out"), None).to_pylist()
    assert summary["rows"] == len(rows) == 12
    assert any(r["psnr_after"] is not None and r["psnr_after"] > r["psnr_before"] for r in rows)
    assert "by status" in capsys.readouterr().out
    import mlflow  # the run is also an MLflow run in ./mlflow.db (cwd is tmp_path here)

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = mlflow.search_runs(experiment_names=["imgenhance-enhance"])
    assert len(logged) == 1 and logged["metrics.rows"].iloc[0] == 12
    assert logged["params.routes.default"].iloc[0] == "passthrough"
    # the pinned model of each route as params, mean metric gains per route as metrics, the report as artifact
    # noise goes to the learned denoiser; no registry has a champion here, so the bundled weights run
    assert logged["params.model.denoise"].iloc[0].startswith("bundled:ffdnet_gray@sha256:")
    assert logged["metrics.gain.denoise.psnr"].iloc[0] > 0 and logged["metrics.gain.denoise.noise"].iloc[0] < 0
    report = (tmp_path / "out" / "_results" / "report.html").read_text()
    run_id = logged["run_id"].iloc[0]
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/report.html") == report
    assert "Before / after" in report and summary["models"]["denoise"] == logged["params.model.denoise"].iloc[0]


def test_unreachable_storage_exits_2_quickly(tmp_path, capsys, monkeypatch):
    port = __import__("tests.conftest", fromlist=["_free_port"])._free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unreachable-secret")
    code = cli.main(["run", "--input", "s3://nobucket/x.tar", "--output", str(tmp_path / "o"),
                     "--set", "storage.options.config_kwargs={connect_timeout: 1, retries: {max_attempts: 1}}"])
    err = capsys.readouterr().err
    assert code == 2 and "Could not connect" in err and "unreachable-secret" not in err

"""Train job: config checks, and real training on Ray Train against a real `mlflow server`.

The integration tests share one MLflow server (conftest's, for the whole session) and
one run: the smoke config trains 1 epoch with 2 DDP workers from a train.init_from weights
file and registers a version, then `--resume` with 2 epochs continues the same checkpoints and
the same MLflow run.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import ConfigError
from pipeline.train.config import TRAIN_CONF_DIR, load_train_config

SMOKE = TRAIN_CONF_DIR / "smoke.yaml"


def test_every_train_config_validates():
    paths = sorted(TRAIN_CONF_DIR.glob("*.yaml"))
    assert SMOKE in paths
    for path in paths:
        load_train_config(path)


@pytest.mark.parametrize("override, message", [
    ("data.val=[BSD68]", "test set BSD68"),
    ("data.clean=['/data/Set12[:5]']", "test set Set12"),
    ("train.epochz=3", "valid keys here"),
    ("tracking.alias=latest", "reserved"),
    ("data.per_epoch=50", "multiple of train.batch_size"),
    ("model.name=srresnet", "channels"),
    ("data.steps=[{kind: gaussian_blurr}]", "unknown degradation"),
    ("name=my run", "run name"),
    ("model.name=inpaint;data.channels=3", "needs hole masks"),
    ("data.p_real=0.5", "go together"),
    ("data.real_pairs=[rain100L_streaks/target]", "go together"),
    ("data.real_pairs=[CBSD68/target];data.p_real=0.5", "test set CBSD68"),
    ("data.view=stats", "restores pictures"),
])
def test_bad_configs_fail_with_the_reason(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(SMOKE, override.split(";"))


def test_real_pairs_need_same_size_pairs():
    with pytest.raises(ConfigError, match="same-size pairs"):
        load_train_config(TRAIN_CONF_DIR / "srresnet_x4.yaml", ["data.real_pairs=[rain100L_streaks/target]",
                                                               "data.p_real=0.5"])


def test_missing_shared_data_falls_back_and_overlap_is_refused(monkeypatch, tmp_path):
    from pipeline.train.data import sources
    from tests.conftest import png_bytes, small

    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path / "absent"))
    clean, val = sources(load_train_config(SMOKE).data)
    assert clean[0].startswith("skimage:") and val[0].startswith("skimage:")
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png_bytes(small("camera", 32)))
    config = load_train_config(SMOKE, [f"data.clean=['{tmp_path}']", f"data.val=['{tmp_path}[2:]']"])
    with pytest.raises(ValueError, match="also training images"):
        sources(config.data)
    (tmp_path / "Rain" / "target").mkdir(parents=True)  # real pairs count as training images too
    (tmp_path / "Rain" / "target" / "0.png").write_bytes(png_bytes(small("camera", 32)))
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path))
    config = load_train_config(SMOKE, ["data.clean=['0.png']", "data.val=['Rain/target']",
                                       "data.real_pairs=['Rain/target']", "data.p_real=0.5"])
    with pytest.raises(ValueError, match="also training images"):
        sources(config.data)


def test_cosine_schedule_runs_from_lr_to_lr_min():
    from pipeline.train.loop import lr_at

    train = {"lr": 1e-3, "lr_min": 1e-5, "epochs": 5}
    assert lr_at(0, train) == pytest.approx(1e-3) and lr_at(4, train) == pytest.approx(1e-5)
    assert type(lr_at(2, train)) is float  # numpy scalars would not reload with weights_only
    assert lr_at(3, {**train, "lr_min": None}) == 1e-3


@pytest.fixture(scope="module")
def tracked(mlflow_server, ray_cluster, tmp_path_factory):
    """The driver's MLflow URI (workers get it through the loop config and runtime env)."""
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server
    yield {"uri": mlflow_server, "storage": str(tmp_path_factory.mktemp("checkpoints"))}
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


def _job(tracked, *extra: str) -> argparse.Namespace:
    from jobs import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return parser.parse_args(["--config", str(SMOKE), "--storage", tracked["storage"], *extra])


START_SEED = 123  # the start weights' initialisation; the loop's own is data.seed (0)


def _smoke_model(seed: int):
    from pipeline.models import build

    torch.manual_seed(seed)
    return build("ffdnet", features=16, depth=4)


@pytest.fixture(scope="module")
def first_run(tracked):
    """Smoke config, 1 epoch, 2 DDP workers, registered and aliased; it starts from a weights
    file (train.init_from) holding another initialisation than the loop's own."""
    from pipeline.models.weights import save_weights
    from pipeline.train.job import train

    start = Path(tracked["storage"]) / "start.pt"
    save_weights(_smoke_model(START_SEED), start, name="ffdnet", config={"features": 16, "depth": 4})
    config = load_train_config(SMOKE, ["name=smoke-resume", f"storage_path={tracked['storage']}",
                                       "tracking.experiment=test-train", f"train.init_from={start}"])
    return config, train(config)


@pytest.mark.integration
def test_smoke_run_registers_a_loadable_model_trained_from_init_from(first_run, tracked, tmp_path):
    from mlflow import MlflowClient

    from pipeline import tracking
    from pipeline.models import model_inputs
    from pipeline.models.weights import load_weights

    config, summary = first_run
    assert summary["version"] == "1" and not summary["resumed"]
    assert summary["metrics"]["epoch"] == 1 and summary["metrics"]["val_psnr"] > 5
    folder = tracking.download(f"models:/{config.tracking.register_as}@{config.tracking.alias}", str(tmp_path))
    model = load_weights(folder / "weights.pt")
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        y = model(*model_inputs(x, needs_sigma=True))
    assert y.shape == x.shape and torch.isfinite(y).all()
    # It trained from the init_from weights: 4 Adam steps of lr 1e-3 move a weight by at most
    # a few 1e-3, while the loop's own initialisation lies ~0.1 away from them.
    start, own, end = _smoke_model(START_SEED).state_dict(), _smoke_model(0).state_dict(), model.state_dict()
    convs = [k for k, v in start.items() if k.endswith("weight") and v.ndim == 4]
    steps = config.data.per_epoch // config.train.batch_size
    bound = 4 * steps * config.train.lr
    assert convs and max(float((end[k] - start[k]).abs().max()) for k in convs) < bound
    assert max(float((own[k] - start[k]).abs().max()) for k in convs) > 5 * bound
    params = MlflowClient(tracked["uri"]).get_run(summary["run_id"]).data.params
    assert params["train.init_from_pinned"] == str(Path(config.train.init_from).resolve())
    # A registered version as init_from: the driver hands the workers exactly its weights.
    from pipeline.train.job import initial_weights

    ref = f"models:/{config.tracking.register_as}/{summary['version']}"
    state, pinned = initial_weights(load_train_config(SMOKE, [f"train.init_from={ref}"]), tracked["uri"])
    assert pinned == ref and state.keys() == end.keys()
    assert all(torch.equal(state[k], end[k]) for k in state)


def test_worker_starts_from_init_state_unless_a_checkpoint_says_otherwise(tmp_path):
    """The loop's model holds train.init_from's weights exactly; the run's own checkpoint (a
    restarted worker group, a resume) wins over them."""
    import ray.train

    from pipeline.train import checkpoints
    from pipeline.train.loop import _setup

    config = load_train_config(SMOKE).model_dump()
    init = _smoke_model(START_SEED).state_dict()
    model, _, epoch, _ = _setup({**config, "init_state": init})
    assert epoch == 0 and all(torch.equal(model.state_dict()[k], init[k]) for k in init)
    fresh, _, _, _ = _setup({**config, "init_state": None})
    assert not torch.equal(fresh.state_dict()["body.0.weight"], init["body.0.weight"])

    later = _smoke_model(7)
    checkpoints.write(tmp_path, model=later, optimizer=torch.optim.Adam(later.parameters()), epoch=3, meta={})
    model, _, epoch, _ = _setup({**config, "init_state": init}, ray.train.Checkpoint.from_directory(str(tmp_path)))
    assert epoch == 3 and all(torch.equal(model.state_dict()[k], later.state_dict()[k]) for k in init)


@pytest.mark.integration
def test_taken_name_needs_resume_then_resume_continues_the_same_run(first_run, tracked, capsys):
    from mlflow import MlflowClient

    from jobs import train

    config, first = first_run
    common = ["--set", "name=smoke-resume", "--set", "tracking.experiment=test-train",
              "--set", f"train.init_from={config.train.init_from}"]
    assert train.main(_job(tracked, *common)) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert train.main(_job(tracked, *common, "--set", "train.epochs=2", "--resume")) == 0
    client = MlflowClient(tracked["uri"])
    history = client.get_metric_history(first["run_id"], "val_psnr")
    assert sorted(m.step for m in history) == [0, 1]
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["changed.train.epochs"] == "1 -> 2"
    version = client.get_model_version_by_alias(config.tracking.register_as, config.tracking.alias)
    assert version.version == "2" and version.run_id == first["run_id"] and version.tags["epoch"] == "2"
    artifacts = {a.path for a in client.list_artifacts(first["run_id"], "figures/epoch_00002")}
    assert {"figures/epoch_00002/before_after.png", "figures/epoch_00002/curves.png"} <= artifacts


@pytest.mark.integration
def test_enhance_job_uses_the_registered_model_by_alias(first_run, tracked, tmp_path):
    """A route to `models:/<name>@<alias>`: rows record the pinned version it resolved to."""
    from pipeline.config import load_enhance_config
    from pipeline.enhance import flow
    from pipeline.io import results
    from tests.conftest import noisy, png_bytes, small

    config, summary = first_run
    ref = f"models:/{config.tracking.register_as}@{config.tracking.alias}"
    (tmp_path / "routes.yaml").write_text("rules:\n  - {degradation: noise, enhancer: denoise_net}\n")
    (tmp_path / "enhance.yaml").write_text(
        "routes: routes.yaml\nenhancers:\n  denoise_net: {kind: learned, params: {model: '" + ref + "'}}\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cam.png").write_bytes(png_bytes(noisy(small("camera", 64), 30)))
    enhance_config, routes = load_enhance_config(tmp_path / "enhance.yaml")
    params = flow.check(enhance_config, routes)
    flow.run(flow.plan([str(tmp_path / "in")], str(tmp_path / "out"), enhance_config), enhance_config, routes,
             params=params)
    row = results.read_results(str(tmp_path / "out"), None).to_pylist()[0]
    from mlflow import MlflowClient

    current = MlflowClient(tracked["uri"]).get_model_version_by_alias(config.tracking.register_as, config.tracking.alias)
    assert row["status"] == "ok" and row["enhancer"] == "denoise_net", row
    assert row["model"] == f"models:/{config.tracking.register_as}/{current.version}"


def test_init_from_must_hold_the_configured_architecture():
    from pipeline.train.job import initial_weights

    config = load_train_config(SMOKE, ["train.init_from=bundled:ffdnet_gray"])  # 12 x 64, smoke is 4 x 16
    with pytest.raises(ConfigError, match="init_from bundled:ffdnet_gray"):
        initial_weights(config, None)
    config = load_train_config(SMOKE, ["train.init_from=bundled:ffdnet_gray", "model.params={features: 64, depth: 12}"])
    state, pinned = initial_weights(config, None)
    assert pinned.startswith("bundled:ffdnet_gray@sha256:") and state["body.0.weight"].shape[0] == 64
    # Another architecture whose weights fit exactly: the gray FFDNet starts the opponent model.
    config = load_train_config(SMOKE, ["train.init_from=bundled:ffdnet_gray", "model.name=ffdnet_opponent",
                                       "model.params={features: 64, depth: 12}", "data.channels=3"])
    state, _ = initial_weights(config, None)
    assert state["body.0.weight"].shape[1] == 5
    config = load_train_config(SMOKE, ["train.init_from=bundled:ffdnet_gray", "model.name=ffdnet_opponent",
                                       "data.channels=3"])
    with pytest.raises(ConfigError, match="do not fit ffdnet_opponent"):
        initial_weights(config, None)


def test_bf16_only_where_the_device_has_it():
    from pipeline.train.loop import bf16_fast

    assert bf16_fast("cuda") and not bf16_fast("mps")
    # On the CPU it follows oneDNN's bf16 support: AVX-512 machines yes, AVX2-only machines no
    # (where autocast would emulate bf16 at ~15x the cost of fp32).
    assert bf16_fast("cpu") == torch.ops.mkldnn._is_mkldnn_bf16_supported()


def test_init_from_a_shallower_trunk_grows_it_into_the_configured_depth(tmp_path):
    """train.init_from with the same FFDNet at fewer layers: the driver grows the weights to the
    configured depth (identity blocks calibrated on training crops), so the deeper model starts
    as exactly the shallower one; another width is still a config error."""
    from pipeline.config import ConfigError
    from pipeline.models import build
    from pipeline.models.weights import save_weights
    from pipeline.train import tasks
    from pipeline.train.job import initial_weights

    start = tmp_path / "start.pt"
    small = _smoke_model(START_SEED).eval()
    save_weights(small, start, name="ffdnet", config={"features": 16, "depth": 4})
    config = load_train_config(SMOKE, [f"train.init_from={start}", "model.params.depth=6"])
    clean, _ = tasks.of(config.model_dump()).sources(config.data)
    state, pinned = initial_weights(config, None, clean)
    deep = build("ffdnet", features=16, depth=6)
    deep.load_state_dict(state)
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(deep.eval()(x, 0.1), small(x, 0.1), atol=1e-5, rtol=1e-5)
    assert pinned == str(start.resolve())
    with pytest.raises(ConfigError, match="do not fit"):
        initial_weights(load_train_config(SMOKE, [f"train.init_from={start}", "model.params.features=8"]), None, clean)


def test_validation_psnr_stays_finite_when_a_crop_comes_out_exact():
    """A saturated crop the model returns exactly (PSNR +inf) must not make the mean infinite:
    it counts as PSNR_CAP, and the other crops still move the mean."""
    from pipeline.train.restoration import PSNR_CAP, evaluate

    class Passthrough(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x

    target = np.ones((2, 3, 16, 16), np.float32)
    target[1] = 0.5
    noisy = target.copy()
    noisy[1] += 0.01  # PSNR 40 dB
    metrics = evaluate(Passthrough(), {"input": noisy, "target": target}, needs={"needs_sigma": False, "needs_mask": False})
    assert metrics["val_psnr"] == pytest.approx((PSNR_CAP + 40.0) / 2, abs=0.01)

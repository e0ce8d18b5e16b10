"""The learned degradation decision in the classify stage: the detector's statistics -> a label."""

import json

import numpy as np
import pytest
import torch

from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.enhance.classify import DegradationModel, classify_batch
from pipeline.enhance.decode import decode_batch
from pipeline.io.schema import to_table
from pipeline.labels import DEGRADATIONS
from pipeline.models import build
from pipeline.models.weights import save_weights
from tests.conftest import png_bytes, small


def _saved(tmp_path, bias_to: str) -> str:
    """A small stats_mlp whose last layer always answers `bias_to`; its 'training data' spread
    so wide (feature variance 1e6) that every real picture lies inside it."""
    torch.manual_seed(0)
    model = build("stats_mlp", hidden=8)
    head = model.net[-1]
    with torch.no_grad():
        model.norm.running_var.fill_(1e6)
        head.weight.zero_()
        head.bias.fill_(-4.0)
        head.bias[DEGRADATIONS.index(bias_to)] = 4.0
    path = tmp_path / f"degradation_{bias_to}.pt"
    save_weights(model, path, name="stats_mlp", config={"hidden": 8})
    return str(path)


def _table():
    rows = [{"key": f"{i}.png", "member": f"{i}.png", "source": "s", "data": png_bytes(small(name, 64)), "run_id": "r"}
            for i, name in enumerate(("camera", "coffee"))]
    return decode_batch(to_table(rows), 10**8)


def test_the_learned_decision_names_the_degradation_and_its_probabilities(tmp_path):
    table = _table()
    rules = classify_batch(table, 512).to_pylist()
    learned = classify_batch(table, 512, degradations=DegradationModel(_saved(tmp_path, "haze"))).to_pylist()
    for r, l in zip(rules, learned):
        scores = json.loads(l["detector_scores"])
        assert l["degradation"] == "haze" and set(scores) == set(DEGRADATIONS)
        assert abs(sum(scores.values()) - 1) < 1e-3 and l["degradation_score"] == pytest.approx(scores["haze"], abs=1e-4)
        assert 0.99 < l["degradation_score"] < 1
        assert l["detector_stats"] == r["detector_stats"]  # the enhancers' hints do not change


def test_a_model_of_pixels_is_refused_as_a_degradation_model(tmp_path):
    model = build("resnet_single", depth=18, width=4, classes=12)
    path = tmp_path / "pixels.pt"
    save_weights(model, path, name="resnet_single", config={"depth": 18, "width": 4, "classes": 12})
    with pytest.raises(ValueError, match="not a model of the detector's"):
        DegradationModel(str(path))


def test_the_job_pins_checks_and_previews_with_the_degradation_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    path = _saved(tmp_path, "jpeg")
    config, routes = load_enhance_config(None, ["classify.degradation_model=models:/degradation-classifier@champion",
                                                f"classify.degradation_fallback={path}"])
    assert flow.pin_classify(config).classify.degradation_model == path
    flow.check(config, routes)
    plain = load_enhance_config(None, ["classify.domain_model=null", "classify.degradation_model=null"])[0]
    learned = load_enhance_config(None, ["classify.domain_model=null", f"classify.degradation_model={path}"])[0]
    assert flow.min_cpus(learned, routes) == pytest.approx(flow.min_cpus(plain, routes) + learned.classify.num_cpus)
    config, routes = load_enhance_config(None, [f"classify.degradation_model={tmp_path / 'missing.pt'}"])
    with pytest.raises(ValueError, match="classify.degradation_model"):
        flow.check(config, routes)  # the job's driver-side check, before Ray starts


def test_classify_config_refuses_the_old_detector_key():
    with pytest.raises(Exception, match="detector"):
        load_enhance_config(None, ["classify.detector=learned"])


def test_pictures_outside_the_training_data_go_to_the_rules(tmp_path):
    from pipeline.enhance.detector import detect

    model = DegradationModel(_saved(tmp_path, "haze"), max_z=10.0)
    image = small("camera", 64)[:, :, None].astype(np.float32) / 255
    stats = detect(image).stats
    assert model.predict(stats) is not None
    far = {**stats, "noise_sigma": 1e9}  # 1e6 standard deviations out
    assert model.predict(far) is None
    table = _table()
    rules = classify_batch(table, 512).to_pylist()
    strict = classify_batch(table, 512, degradations=DegradationModel(_saved(tmp_path, "haze"), max_z=1e-6)).to_pylist()
    assert [r["degradation"] for r in strict] == [r["degradation"] for r in rules]  # everything deferred
    assert [r["detector_scores"] for r in strict] == [r["detector_scores"] for r in rules]


def test_a_decision_that_looks_at_pixels_gets_the_picture_in_the_classify_stage(tmp_path):
    """A stats_cnn whose answer depends only on the picture's brightness: the classify stage
    must hand it the decoded image (detector.decision_image of it), not only the statistics."""
    torch.manual_seed(0)
    model = build("stats_cnn", hidden=8, width=4, side=32)
    with torch.no_grad():
        model.stats.norm.running_var.fill_(1e6)
        for p in model.head.parameters():
            p.zero_()
        model.trunk.stem[0].weight.fill_(0.05)  # the (eval-mode, bias-free) trunk's features scale with the brightness
        mid = model.eval().trunk(torch.full((1, 3, 32, 32), 0.5)).sum()
        model.head[2].weight[0, 8:] = 2.0 / mid  # hidden unit 0: 4 x the brightness
        model.head[4].bias[DEGRADATIONS.index("low_light")] = 2.0
        model.head[4].weight[DEGRADATIONS.index("haze"), 0] = 1.0
    path = tmp_path / "stats_cnn.pt"
    save_weights(model, path, name="stats_cnn", config={"hidden": 8, "width": 4, "side": 32})
    decision = DegradationModel(str(path))
    assert decision.side == 32
    dark = np.full((64, 64, 3), 0.05, np.float32)
    light = np.full((64, 64, 3), 0.95, np.float32)
    from pipeline.enhance.detector import detect

    said = {name: max(p, key=p.get) for name, p in
            (("dark", decision.predict(detect(dark).stats, image=dark)),
             ("light", decision.predict(detect(light).stats, image=light)))}
    assert said == {"dark": "low_light", "light": "haze"}
    with pytest.raises(ValueError, match="pass the image"):
        decision.predict(detect(dark).stats)
    rows = classify_batch(_table(), 512, degradations=decision).to_pylist()
    assert all(r["degradation"] in ("low_light", "haze") for r in rows)  # it ran on the pictures

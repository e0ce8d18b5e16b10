"""The domain classifier in the classify stage: whole-picture thumbnail -> one of DOMAINS."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.enhance.classify import DomainModel, classify_batch
from pipeline.enhance.decode import decode_batch
from pipeline.io.schema import to_table
from pipeline.labels import DOMAINS, UNKNOWN_DOMAIN
from pipeline.models import build
from pipeline.models.weights import save_weights
from tests.conftest import png_bytes, small


def _saved(tmp_path, classes=4, bias_to=None):
    """A small resnet_single; with `bias_to` its head always answers that domain."""
    torch.manual_seed(0)
    model = build("resnet_single", depth=18, width=4, classes=classes)
    if bias_to is not None:
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(-5.0)
            head.bias[DOMAINS.index(bias_to)] = 5.0
    path = tmp_path / "domain.pt"
    save_weights(model, path, name="resnet_single", config={"depth": 18, "width": 4, "classes": classes})
    return str(path)


def test_the_domain_model_sees_any_picture_as_a_thumbnail(tmp_path):
    domains = DomainModel(_saved(tmp_path, bias_to="satellite"), side=64)
    for image in (np.random.default_rng(0).random((300, 500, 3), dtype=np.float32),  # colour
                  np.random.default_rng(1).random((40, 30, 1), dtype=np.float32),     # tiny gray
                  np.zeros((2000, 64, 1), np.float32)):                                # odd shape
        domain, score = domains.predict(image)
        assert domain == "satellite" and 0.99 < score <= 1.0


def test_a_model_that_is_not_four_way_is_refused(tmp_path):
    with pytest.raises(ValueError, match="4 outputs"):
        DomainModel(_saved(tmp_path, classes=12))


def test_rows_carry_the_domain_or_unknown_without_a_model(tmp_path):
    rows = [{"key": f"{i}.png", "member": f"{i}.png", "source": "s", "data": png_bytes(small(name, 64)), "run_id": "r"}
            for i, name in enumerate(("camera", "coffee"))]
    table = decode_batch(to_table(rows), 10**8)
    without = classify_batch(table, 512).to_pylist()
    assert {r["domain"] for r in without} == {UNKNOWN_DOMAIN} and {r["domain_score"] for r in without} == {None}
    with_model = classify_batch(table, 512, DomainModel(_saved(tmp_path, bias_to="medical"))).to_pylist()
    assert {r["domain"] for r in with_model} == {"medical"}
    assert all(r["degradation"] == w["degradation"] for r, w in zip(with_model, without))  # detector unchanged
    unsure = DomainModel(_saved(tmp_path, bias_to="medical"), min_score=1.0)  # p = 0.99986
    abstained = classify_batch(table, 512, unsure).to_pylist()
    assert {r["domain"] for r in abstained} == {UNKNOWN_DOMAIN} and all(0.999 < r["domain_score"] < 1 for r in abstained)


def test_pinning_falls_back_and_refuses_what_cannot_load(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    path = _saved(tmp_path)
    config, _ = load_enhance_config(None, ["classify.domain_model=models:/domain-classifier@champion",
                                           f"classify.domain_fallback={path}"])
    assert flow.pin_classify(config).classify.domain_model == path
    config, routes = load_enhance_config(None, [f"classify.domain_model={tmp_path / 'missing.pt'}"])
    with pytest.raises(ValueError, match="classify.domain_model"):
        flow.check(config, routes)  # the job's driver-side check, before Ray starts


def test_voting_averages_the_whole_picture_its_mirror_and_corner_windows(tmp_path):
    from pipeline.enhance.classify import domain_views
    from pipeline.imageops import thumbnail

    image = np.random.default_rng(2).random((500, 900, 3), dtype=np.float32) * 0.1 + 0.9
    image[:60, :110] = 0.0  # a black patch that only the top-left window holds (the others start at 15 %)
    views = domain_views(image, 32, 6)
    assert views.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(views[0], thumbnail(image, 32))
    np.testing.assert_array_equal(views[1], views[0][:, ::-1])
    dark = [float(v.mean()) for v in views[2:]]
    assert dark[0] < 0.94 < min(dark[1:])  # corners in order: top-left first
    assert domain_views(image[:, :, :1], 32, 3).shape == (3, 32, 32, 1)
    torch.manual_seed(1)
    path = _saved(tmp_path)  # random weights: the views disagree
    one, six = DomainModel(path, side=32), DomainModel(path, side=32, views=6)
    with torch.inference_mode():
        p = torch.softmax(one.net(torch.from_numpy(views.transpose(0, 3, 1, 2).copy())), dim=1)
    best = int(p.mean(0).argmax())
    assert six.predict(image) == (DOMAINS[best], round(float(p.mean(0)[best]), 4))
    assert one.predict(image)[1] == round(float(p[0].max()), 4)
    with pytest.raises(ValueError, match="1 to 6"):
        DomainModel(path, views=7)
    config, _ = load_enhance_config(None, ["classify.domain_views=4"])
    assert flow.classify_kwargs(config.classify)["views"] == 4

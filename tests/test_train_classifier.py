"""Classifier training: labelled crops, the classification task, and a real 2-worker run.

The crops are checked against what made them (each domain's images carry their own grey
level, a single step's label is known in advance); the integration test trains the smoke
classifier on Ray Train against the real `mlflow server` of tests/test_train.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import ConfigError
from pipeline.degrade import LABEL_OF
from pipeline.imageops import thumbnail
from pipeline.labels import DEGRADATIONS, DOMAINS
from pipeline.train import classify_data as cd
from pipeline.train.config import TRAIN_CONF_DIR, load_train_config
from tests.conftest import png_bytes
from tests.test_train import tracked  # noqa: F401  (a fixture, reused)

SMOKE = TRAIN_CONF_DIR / "classifier_smoke.yaml"
LEVEL = {"traffic": 40, "satellite": 100, "medical": 160, "other": 220}
ONE_PER_LABEL = [
    {"kind": "gaussian_noise", "params": {"sigma": [20.0, 40.0]}},
    {"kind": "salt_pepper", "params": {"amount": 0.1}},
    {"kind": "jpeg", "params": {"quality": 10}},
    {"kind": "haze", "params": {"beta": 2.0}},
    {"kind": "holes", "params": {"count": 2}},
    {"kind": "motion_blur", "params": {"length": 9.0}},
]


def _flat_images(shape=(48, 40, 3)) -> cd.Images:
    """One flat image per domain at its own grey level (medical gray, 1 channel), two folders."""
    images: cd.Images = {}
    for domain, level in LEVEL.items():
        s = shape[:2] + ((1,) if domain == "medical" else shape[2:])
        images[domain] = [[np.full(s, level, np.uint8)], [np.full(s, level, np.uint8)]]
    return images


def test_clean_crops_carry_the_domain_of_their_image():
    images = _flat_images()
    for i in range(60):
        s = cd.make_sample(images, crop=32, steps=ONE_PER_LABEL, p_clean=1.0, seed=3, index=i)
        assert s["input"].shape == (3, 32, 32) and s["input"].dtype == np.float32
        level = round(float(s["input"].mean()) * 255)
        assert DOMAINS[s["domain"]] == {v: k for k, v in LEVEL.items()}[level]
        assert DEGRADATIONS[s["degradation"]] == "clean" and s["applied"] == []


def test_degraded_crops_are_labelled_by_the_step_applied():
    images = _flat_images()
    seen = set()
    for i in range(200):
        s = cd.make_sample(images, crop=32, steps=ONE_PER_LABEL, p_clean=0.0, seed=3, index=i)
        (step,) = s["applied"]
        assert DEGRADATIONS[s["degradation"]] == LABEL_OF[step["kind"]]
        seen.add(step["kind"])
    assert seen == {step["kind"] for step in ONE_PER_LABEL}  # every label is drawn
    only_jpeg = [{"kind": "jpeg", "params": {"quality": 5}}]
    labels = {cd.make_sample(images, crop=32, steps=only_jpeg, p_clean=0.0, seed=0, index=i)["degradation"]
              for i in range(20)}
    assert labels == {DEGRADATIONS.index("jpeg")}


def test_a_skipped_step_leaves_the_crop_clean_and_labelled_clean():
    images = _flat_images()
    never = [{"kind": "gaussian_noise", "params": {"sigma": 30.0}, "p": 0.0}]
    for i in range(10):
        s = cd.make_sample(images, crop=32, steps=never, p_clean=0.0, seed=1, index=i)
        assert DEGRADATIONS[s["degradation"]] == "clean"
        assert np.ptp(s["input"]) == 0  # a flat image, untouched


def test_share_of_clean_crops_follows_p_clean():
    images = _flat_images()
    clean = [cd.make_sample(images, crop=16, steps=ONE_PER_LABEL, p_clean=0.4, seed=0, index=i)["degradation"] == 0
             for i in range(400)]
    assert 0.33 < np.mean(clean) < 0.47


def test_crops_are_deterministic_per_seed_and_index_and_the_maker_offsets_by_start(tmp_path):
    images = _flat_images()
    kwargs = dict(crop=32, steps=ONE_PER_LABEL, p_clean=0.25, seed=7)
    a, b = cd.make_sample(images, index=11, **kwargs), cd.make_sample(images, index=11, **kwargs)
    assert np.array_equal(a["input"], b["input"]) and (a["domain"], a["degradation"]) == (b["domain"], b["degradation"])
    different = [cd.make_sample(images, index=i, **kwargs)["input"] for i in range(12, 16)]
    assert not any(np.array_equal(a["input"], d) for d in different)
    urls = {}
    for domain, level in LEVEL.items():
        folder = tmp_path / domain
        folder.mkdir()
        (folder / "a.png").write_bytes(png_bytes(np.full((48, 40, 3), level, np.uint8)))
        urls[domain] = [str(folder)]
    maker = cd.SampleMaker(urls, start=10, **kwargs)
    batch = maker({"id": np.array([0, 1])})
    assert list(batch["index"]) == [10, 11]
    assert np.array_equal(batch["input"][1], cd.make_sample(maker.images, index=11, **kwargs)["input"])


def test_gray_scans_stay_gray_and_small_images_are_upscaled_to_the_crop():
    rgb_gray = np.repeat(np.arange(20 * 30, dtype=np.uint8).reshape(20, 30, 1), 3, axis=2)
    assert cd.native(rgb_gray).shape == (20, 30, 1)
    colour = rgb_gray.copy()
    colour[0, 0, 2] += 1
    assert cd.native(colour).shape == (20, 30, 3)
    assert cd.at_least(cd.native(rgb_gray), 32).shape[:2] == (32, 48)
    # A 20 px gray scan: upscaled to the 32 px crop, noise added on its one channel, then RGB.
    noisy = cd.make_sample({"medical": [[np.full((20, 20, 1), 128, np.uint8)]]}, crop=32, p_clean=0.0,
                           steps=[{"kind": "gaussian_noise", "params": {"sigma": 30.0}}], seed=0, index=0)
    x = noisy["input"]
    assert x.shape == (3, 32, 32) and np.ptp(x) > 0 and np.array_equal(x[0], x[1]) and np.array_equal(x[1], x[2])


def test_sources_refuse_an_image_in_two_domains_or_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path))
    for name in ("roads", "fields"):
        (tmp_path / name).mkdir()
        for i in range(3):
            (tmp_path / name / f"{i}.png").write_bytes(png_bytes(np.full((16, 16, 3), 9 * i, np.uint8)))
    good = ["data.domains={traffic: {clean: ['roads[:2]'], val: ['roads[2:]']}, "
            "satellite: {clean: ['fields[:2]'], val: ['fields[2:]']}}"]
    train, val = cd.sources(load_train_config(SMOKE, good).data)
    assert train["traffic"] == [f"{tmp_path}/roads[:2]"] and val["satellite"] == [f"{tmp_path}/fields[2:]"]
    for traffic, satellite, where in [
        ("['roads[:2]'], val: ['roads[1:]']", "['fields[:2]'], val: ['fields[2:]']", "1.png is in traffic train and in traffic val"),
        ("['roads[:2]'], val: ['roads[2:]']", "['fields[:2]', 'roads[:1]'], val: ['fields[2:]']",
         "0.png is in traffic train and in satellite train"),
    ]:
        config = load_train_config(SMOKE, [f"data.domains={{traffic: {{clean: {traffic}}}, satellite: {{clean: {satellite}}}}}"])
        with pytest.raises(ValueError, match=where):
            cd.sources(config.data)


@pytest.mark.parametrize("overrides, message", [
    (["data.clean=[Train400]"], "learns from data.domains"),
    (["data.steps=[{kind: downscale, params: {factor: 2}}]"], "use upscale_back"),
    (["model.name=resnet_single"], "data.target"),
    (["model.name=resnet_single", "data.target=domain"], "model.params.classes to 4"),
    (["data.domains={traffic: {clean: [a], val: [b]}, city: {clean: [c], val: [d]}}"], "at least two of"),
    (["data.domains={traffic: {clean: [a], val: [CBSD68]}, other: {clean: [c], val: [d]}}"], "test set CBSD68"),
    (["data.channels=1"], "channels"),
    (["data.steps=[]"], "at least one degradation step"),
    (["data.view=stats"], "data.view stats"),
    (["model.name=stats_mlp", "model.params={}", "data.target=degradation"], "data.view stats"),
    (["model.name=stats_mlp", "model.params={}", "data.target=domain", "data.view=stats"], "statistics do not tell"),
    (["model.name=stats_mlp", "model.params={}", "data.target=degradation", "data.view=stats", "data.image_side=64"],
     "picture input of stats_cnn only"),
    (["model.name=stats_cnn", "model.params={side: 64}", "data.target=degradation", "data.view=stats"],
     "data.image_side \\(None\\) must equal model.params.side \\(64\\)"),
    (["data.real_pairs=[rain100L_streaks/target]", "data.p_real=0.5"], "not clean/val/fallback/real_pairs"),
])
def test_bad_classifier_configs_fail_with_the_reason(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(SMOKE, overrides)


def test_restoration_configs_refuse_domains():
    with pytest.raises(ConfigError, match="for classifiers"):
        load_train_config(TRAIN_CONF_DIR / "smoke.yaml", ["data.target=domain"])


def test_accuracies_per_head_and_class_from_the_confusion_matrix():
    from pipeline.train.classification import accuracies, confusion

    matrix = confusion(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    acc = accuracies("domain", matrix)
    assert acc["val_domain_acc"] == pytest.approx(0.6)
    assert acc["val_domain_acc.traffic"] == 0.5 and acc["val_domain_acc.satellite"] == 1.0
    assert "val_domain_acc.other" not in acc  # no validation crops of that class


def test_single_head_loss_is_the_cross_entropy_of_its_target():
    from pipeline.train.classification import Classification

    multi = Classification({"data": {"target": None}})
    single = Classification({"data": {"target": "domain"}})
    logits = {"domain": torch.randn(5, 4), "degradation": torch.randn(5, 12)}
    batch = {"domain": torch.tensor([0, 1, 2, 3, 0]), "degradation": torch.tensor([0, 5, 11, 2, 3])}
    ce = torch.nn.functional.cross_entropy
    assert torch.isclose(single.loss(logits["domain"], batch), ce(logits["domain"], batch["domain"]))
    both = ce(logits["domain"], batch["domain"]) + ce(logits["degradation"], batch["degradation"])
    assert torch.isclose(multi.loss(logits, batch), both)


@pytest.mark.integration
def test_smoke_classifier_trains_and_registers_a_version_with_accuracies(tracked, tmp_path):  # noqa: F811
    """2 DDP workers, 1 epoch: per-head and per-class accuracies in MLflow, confusion matrices
    as figures, a registered version that loads back as a two-head model. (Resume, checkpoints
    and registration are the loop's, shared with restoration: tests/test_train.py.)"""
    from mlflow import MlflowClient

    from pipeline import tracking
    from pipeline.models.weights import load_weights
    from pipeline.train.job import train

    config = load_train_config(SMOKE, ["name=cls-smoke", f"storage_path={tracked['storage']}",
                                       "tracking.experiment=test-train-classifier"])
    summary = train(config)
    assert summary["version"] == "1" and 0 <= summary["metrics"]["val_domain_acc"] <= 1
    client = MlflowClient(tracked["uri"])
    metrics = client.get_run(summary["run_id"]).data.metrics
    assert {"val_domain_acc", "val_degradation_acc", "val_domain_acc.medical", "val_degradation_acc.clean",
            "train_loss"} <= set(metrics)
    version = client.get_model_version_by_alias("classifier-smoke", "smoke")
    assert version.version == "1" and float(version.tags["val_degradation_acc"]) == pytest.approx(
        metrics["val_degradation_acc"], abs=1e-4)
    artifacts = {a.path for a in client.list_artifacts(summary["run_id"], "figures/epoch_00001")}
    assert {f"figures/epoch_00001/{n}" for n in ("confusion_domain.png", "confusion_degradation.png",
                                                  "confusion.json", "curves.png")} <= artifacts
    model = load_weights(tracking.download("models:/classifier-smoke@smoke", str(tmp_path)) / "weights.pt")
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out["domain"].shape == (2, len(DOMAINS)) and out["degradation"].shape == (2, len(DEGRADATIONS))


def test_single_task_configs_differ_from_the_multitask_one_only_in_the_head():
    multi = load_train_config("classifier").model_dump()
    for target, classes in (("degradation", 12), ("domain", 4)):
        single = load_train_config(f"classifier_single_{target}").model_dump()
        assert single["model"] == {"name": "resnet_single", "params": {**multi["model"]["params"], "classes": classes}}
        assert single["data"] == {**multi["data"], "target": target}
        assert (single["train"], single["scaling"]) == (multi["train"], multi["scaling"])


def test_multitask_summary_reports_epochs_and_time_to_target():
    import pyarrow as pa

    from pipeline.bench.multitask import summarize

    def rows(config, model, head, accuracies):
        return [{"config": config, "model": model, "head": head, "epoch": e + 1, "accuracy": a,
                 "train_seconds": 60.0 * (e + 1), "target": 0.8, "run_id": config}
                for e, a in enumerate(accuracies)]

    table = pa.Table.from_pylist(rows("classifier", "resnet_multitask", "domain", [0.5, 0.85, 0.9])
                                 + rows("classifier", "resnet_multitask", "degradation", [0.3, 0.6, 0.7])
                                 + rows("single_domain", "resnet_single", "domain", [0.7, 0.75, 0.82])
                                 + rows("single_degradation", "resnet_single", "degradation", [0.4, 0.81, 0.9]))
    text = summarize(table)
    assert "| domain | resnet_multitask | 0.900 | 3 | 0.80 | 2 | 2.0 |" in text
    assert "| degradation | resnet_multitask | 0.700 | 3 | 0.80 | not reached | - |" in text
    assert "| domain | resnet_single | 0.820 | 3 | 0.80 | 3 | 3.0 |" in text
    assert "multitask 3.0 min (one run) vs single-task 6.0 min (two runs)" in text


def test_whole_view_is_the_thumbnail_the_enhance_job_classifies():
    # A 900 x 1500 picture, left half dark and right half bright: a native crop sees one half,
    # the whole view sees both, squeezed to crop x crop exactly as imageops.thumbnail does.
    picture = np.zeros((900, 1500, 3), np.uint8)
    picture[:, 750:] = 200
    images = {"traffic": [[picture]], "satellite": [[picture]]}
    s = cd.make_sample(images, crop=32, steps=ONE_PER_LABEL, p_clean=1.0, seed=0, index=0, augment=False, view="whole")
    expected = thumbnail(cd.whole(picture, np.random.default_rng(0), augment=False), 32)
    np.testing.assert_allclose(s["input"], expected.transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert s["input"][:, :, :14].max() == 0 and s["input"][:, :, 18:].min() > 0.7
    for i in range(30):  # augmented windows keep >= 70 % of each side: both halves always show
        s = cd.make_sample(images, crop=32, steps=ONE_PER_LABEL, p_clean=1.0, seed=1, index=i, view="whole")
        columns = s["input"].mean(axis=(0, 1))
        assert columns.min() < 0.1 and columns.max() > 0.6
        assert max(cd.whole(picture, np.random.default_rng(i)).shape) <= cd.WORK_SIDE
    for i in range(30):  # every degradation runs at the work size and comes out as the thumbnail
        s = cd.make_sample(images, crop=32, steps=ONE_PER_LABEL, p_clean=0.0, seed=2, index=i, view="whole")
        assert s["input"].shape == (3, 32, 32) and DEGRADATIONS[s["degradation"]] != "clean"


def test_stats_view_is_what_the_classify_stage_measures():
    from pipeline.enhance.detector import FEATURES, decision_input, measure
    from pipeline.imageops import to_float

    picture = (np.random.default_rng(0).random((900, 1300, 3)) * 60 + 100).astype(np.uint8)
    images = {"traffic": [[picture]], "satellite": [[picture[:, :, :1]]]}
    clean = cd.make_sample(images, crop=32, steps=[], p_clean=1.0, seed=0, index=0, augment=False, view="stats")
    assert clean["input"].shape == (len(FEATURES),) and clean["input"].dtype == np.float32
    assert DEGRADATIONS[clean["degradation"]] == "clean"
    window = picture[: cd.STATS_SIDE, : cd.STATS_SIDE] if DOMAINS[clean["domain"]] == "traffic" else picture[: cd.STATS_SIDE, : cd.STATS_SIDE, :1]
    np.testing.assert_allclose(clean["input"], decision_input(measure(to_float(window))), rtol=1e-6)
    labels = set()
    for i in range(24):  # degraded: one of the 11 labels, made by its recipe; windows stay at native resolution
        s = cd.make_sample(images, crop=32, steps=[], p_clean=0.0, seed=3, index=i, view="stats")
        labels.add(DEGRADATIONS[s["degradation"]])
        assert s["applied"] and s["applied"][0]["label"] == DEGRADATIONS[s["degradation"]]
    assert "clean" not in labels and len(labels) >= 6
    config = load_train_config("degradation_classifier")
    assert config.model.name == "stats_mlp" and config.model.params == {"hidden": 64}  # no resnet params inherited


def test_stats_cnn_samples_add_the_picture_the_detector_measured():
    from pipeline.enhance.detector import decision_image
    from pipeline.imageops import to_float

    picture = (np.random.default_rng(1).random((900, 1300, 3)) * 60 + 100).astype(np.uint8)
    images = {"traffic": [[picture]], "satellite": [[picture[:, :, :1]]]}
    for i in range(4):
        plain = cd.make_sample(images, crop=32, steps=[], p_clean=0.5, seed=0, index=i, view="stats")
        seen = cd.make_sample(images, crop=32, steps=[], p_clean=0.5, seed=0, index=i, view="stats", image_side=48)
        np.testing.assert_array_equal(seen["input"], plain["input"])  # the picture draws nothing from the stream
        assert seen["degradation"] == plain["degradation"] and "image" not in plain
        assert seen["image"].shape == (3, 48, 48) and seen["image"].dtype == np.uint8
    clean = cd.make_sample(images, crop=32, steps=[], p_clean=1.0, seed=0, index=0, augment=False, view="stats",
                           image_side=48)
    window = picture[: cd.STATS_SIDE, : cd.STATS_SIDE] if DOMAINS[clean["domain"]] == "traffic" else picture[: cd.STATS_SIDE, : cd.STATS_SIDE, :1]
    np.testing.assert_array_equal(clean["image"], decision_image(to_float(window), 48))
    stacked = cd.stacked([clean, clean])
    assert set(stacked) == {"input", "domain", "degradation", "image"} and stacked["image"].shape == (2, 3, 48, 48)
    config = load_train_config("degradation_cnn")
    assert config.model.params["side"] == config.data.image_side
    assert "pages:[0:60]" in config.data.domains["other"].clean  # documents are clean pictures too
    assert config.data.domains["traffic"].clean == load_train_config("classifier").data.domains["traffic"].clean

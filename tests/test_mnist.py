"""MNIST digits for seed 004: the idx reader, the `mnist:` source of the paired builder, the
`mnist-noise` suite and the `ae-experiment` plan, on tiny idx files the tests write themselves."""

from __future__ import annotations

import argparse
import gzip

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from jobs import benchmark
from pipeline.datasets import MNIST_TEST, idx_images
from pipeline.degrade import pairs


def digits(count: int = 12) -> np.ndarray:
    """MNIST-like 28x28 uint8 digits: black ground, saturated strokes, each its own shape."""
    out = np.zeros((count, 28, 28), np.uint8)
    for i in range(count):
        out[i, 4 + i % 10 : 24, 8 + i % 7 : 11 + i % 7] = 255  # an off-centre bar: not mirror-symmetric
        out[i, 5, 5 : 20 - i % 5] = 200
    return out


def write_idx(path, images: np.ndarray) -> None:
    header = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    path.write_bytes(gzip.compress(header + images.tobytes()))


@pytest.fixture
def mnist_root(tmp_path, monkeypatch):
    """A data root holding a 12-digit MNIST_test file; returns (root, the digits)."""
    images = digits()
    (tmp_path / "data" / MNIST_TEST).parent.mkdir(parents=True)
    write_idx(tmp_path / "data" / MNIST_TEST, images)
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path / "data"))
    return tmp_path / "data", images


def test_idx_images_reads_count_shape_and_pixels_and_refuses_other_files(tmp_path):
    images = digits(5)
    write_idx(tmp_path / "five.gz", images)
    read = idx_images(str(tmp_path / "five.gz"))
    assert read.shape == (5, 28, 28) and read.dtype == np.uint8 and np.array_equal(read, images)
    assert not read.flags.writeable  # cached per process: nobody may alter it
    (tmp_path / "labels.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(5)))
    with pytest.raises(ValueError, match="not an idx3-ubyte image file"):
        idx_images(str(tmp_path / "labels.gz"))
    write_idx(tmp_path / "cut.gz", images)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(gzip.decompress((tmp_path / "cut.gz").read_bytes())[:-10]))
    with pytest.raises(ValueError, match="pixel bytes"):
        idx_images(str(tmp_path / "cut.gz"))


def test_mnist_source_slices_the_digits_under_the_data_root(mnist_root, tmp_path):
    root, images = mnist_root
    train, val = pairs.expand(["mnist:[:8]"]), pairs.expand(["mnist:[8:]"])
    assert len(train) == 8 and len(val) == 4 and not set(train) & set(val)
    assert pairs.expand(train[:2]) == train[:2]  # an entry stays one image
    loaded = pairs.load_clean(["mnist:[8:]"], 1)
    assert [d.shape for d in loaded] == [(28, 28, 1)] * 4 and loaded[0].dtype == np.uint8
    assert np.array_equal(np.stack(loaded)[..., 0], images[8:])
    other = tmp_path / "other.gz"
    write_idx(other, images[::-1].copy())
    assert np.array_equal(pairs.load_clean([f"mnist:{other}[2:5]"], 1)[0][..., 0], images[9])
    with pytest.raises(FileNotFoundError, match="no images"):
        pairs.expand(["mnist:[20:]"])


def test_train_data_pins_the_mnist_file_and_falls_back_when_absent(mnist_root, tmp_path, monkeypatch):
    from pipeline.train.data import resolve

    root, _ = mnist_root
    assert resolve(["mnist:[:8]"]) == [f"mnist:{root / MNIST_TEST}[:8]"]  # workers read what the driver checked
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path / "absent"))
    assert resolve(["mnist:[:8]"]) is None


def test_pairs_without_augmentation_keep_the_digit_upright(mnist_root):
    _, images = mnist_root
    clean = pairs.load_clean(["mnist:"], 1)
    noise = [{"kind": "gaussian_noise", "params": {"sigma": 25.5}}]
    kept = [pairs.make_pair(clean, crop=28, steps=noise, seed=0, index=i, augment=False) for i in range(16)]
    assert all(any(np.array_equal(p["target"][0], d / np.float32(255)) for d in images) for p in kept)
    turned = [pairs.make_pair(clean, crop=28, steps=noise, seed=0, index=i) for i in range(16)]
    assert not all(any(np.array_equal(p["target"][0], d / np.float32(255)) for d in images) for p in turned)


def test_ae_train_configs_degrade_as_the_mnist_noise_suite_measures():
    from pipeline.train.config import load_train_config

    suite = benchmark.load_config(benchmark.CONF_DIR / "benchmarks.yaml")["suites"]["mnist-noise"]
    for noise, step in suite["noises"].items():
        config = load_train_config(f"ae_mnist_{noise}")
        assert [s.model_dump() for s in config.data.steps] == [{**step, "p": 1.0}]
        assert not config.data.augment and config.data.crop == 28 and config.train.loss == "mse"
    clean = load_train_config("ae_mnist_clean")
    assert clean.data.steps[0].p == 0 and clean.model == config.model  # same architecture as the fine-tunes


def tiny_autoencoder(path) -> str:
    from pipeline.models import build
    from pipeline.models.weights import save_weights

    torch.manual_seed(0)
    save_weights(build("dense_ae", hidden=[32, 8]), path, name="dense_ae", config={"hidden": [32, 8]})
    return str(path)


def test_mnist_noise_suite_writes_a_row_per_digit_and_setting(mnist_root, tmp_path):
    suite = benchmark.load_config(benchmark.CONF_DIR / "benchmarks.yaml")["suites"]["mnist-noise"]
    conf = {"output": str(tmp_path / "bench"), "suites": {"mnist-noise": {
        **suite, "source": "mnist:[8:]", "baselines": ["median"]}}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(conf))
    model = tiny_autoencoder(tmp_path / "ae.pt")
    args = argparse.Namespace(suite=["mnist-noise"], config=str(tmp_path / "b.yaml"), report_only=False,
                              report=str(tmp_path / "B.md"), model=[model], tracking_uri=None, no_tracking=True)
    assert benchmark.main(args) == 0
    df = pq.read_table(tmp_path / "bench" / "mnist-noise.parquet").to_pandas()
    assert len(df) == 4 * 3 * 2 and set(df["noise"]) == {"gaussian", "salt_pepper", "periodic"}
    assert (df["mse_input"] > 0).all() and np.isfinite(df["psnr"]).all()
    median = df[(df["model"] == "classical:median") & (df["noise"] == "salt_pepper")]
    assert median["mse"].mean() < 0.75 * median["mse_input"].mean()  # impulses removed
    assert set(df["model"]) == {"classical:median", str((tmp_path / "ae.pt").resolve())}
    report = (tmp_path / "B.md").read_text()
    assert f"--suite mnist-noise --model {model}" in report and "| noisy input |" in report


def test_ae_experiment_trains_every_arm_with_the_same_budget(mnist_root, tmp_path, monkeypatch):
    """The plan, without Ray Train: train_run stands in for the train job (tests/test_train.py
    runs the job itself) and hands back untrained weights, which the suite then measures."""
    import pyarrow as pa

    from pipeline.bench import autoencoder

    calls = []

    def train_run(config_name, overrides):
        calls.append((config_name, dict(o.split("=", 1) for o in overrides)))
        path = tiny_autoencoder(tmp_path / f"run{len(calls)}.pt")
        return {"model_ref": path, "run_id": f"run{len(calls)}", "epochs": int(calls[-1][1]["train.epochs"]),
                "train_s": 1.0}

    monkeypatch.setattr(autoencoder, "train_run", train_run)
    conf = {"source": "mnist:[8:]", "noises": ["gaussian", "salt_pepper"], "baselines": ["median"],
            "storage_path": str(tmp_path / "ckpt"), "architectures": {"dense": {"epochs": 6, "pretrain_epochs": 2}}}
    rows = autoencoder.run(conf, seed=3)
    configs = [c for c, _ in calls]
    assert configs == ["ae_mnist_gaussian", "ae_mnist_salt_pepper", "ae_mnist_clean",
                       "ae_mnist_gaussian", "ae_mnist_salt_pepper"]
    assert [int(o["train.epochs"]) for _, o in calls] == [6, 6, 2, 4, 4]  # 2 clean + 4 noisy = the noisy arm's 6
    assert [o.get("train.init_from") for _, o in calls] == [None] * 3 + [str(tmp_path / "run3.pt")] * 2
    assert len({o["name"] for _, o in calls}) == 5 and all(o["data.seed"] == "3" for _, o in calls)
    arms = {(r["arm"], r["noise"]) for r in rows}
    assert arms == {(a, n) for a in ("baseline", "noisy", "clean", "finetune") for n in ("gaussian", "salt_pepper")}
    assert len(rows) == 4 * 2 * 4
    text = autoencoder.summarize(pa.Table.from_pylist(rows))
    assert "dense AE, the clean one fine-tuned on noisy (+4 epochs)" in text and "| classical:median |" in text

"""Paired-data builder: determinism per (seed, index), shapes, labels, sources, Ray streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.degrade import pairs
from tests.conftest import png_bytes, small

NOISE = [{"kind": "gaussian_noise", "params": {"sigma": [0.0, 75.0]}}]


@pytest.fixture(scope="module")
def images():
    return [small("camera", 96)[:, :, None], small("moon", 80)[:, :, None]]


def test_same_seed_and_index_give_identical_pairs(images):
    a = pairs.make_pair(images, crop=32, steps=NOISE, seed=7, index=11)
    b = pairs.make_pair(images, crop=32, steps=NOISE, seed=7, index=11)
    for key in ("input", "target", "sigma"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["labels"] == b["labels"]


def test_other_index_or_seed_gives_another_crop(images):
    a = pairs.make_pair(images, crop=32, steps=NOISE, seed=7, index=11)
    assert not np.array_equal(a["target"], pairs.make_pair(images, crop=32, steps=NOISE, seed=7, index=12)["target"])
    assert not np.array_equal(a["target"], pairs.make_pair(images, crop=32, steps=NOISE, seed=8, index=11)["target"])


def test_denoise_pair_shapes_labels_and_true_sigma(images):
    pair = pairs.make_pair(images, crop=32, steps=NOISE, seed=0, index=3)
    assert pair["input"].shape == pair["target"].shape == (1, 32, 32)
    assert pair["input"].dtype == pair["target"].dtype == np.float32
    assert 0.0 <= pair["input"].min() and pair["input"].max() <= 1.0
    (step,) = json.loads(pair["labels"])
    assert step["kind"] == "gaussian_noise" and step["label"] == "noise"
    assert 0.0 <= step["params"]["sigma"] <= 75.0
    assert pair["sigma"] == pytest.approx(step["params"]["sigma"] / 255, rel=1e-5)
    assert "mask" not in pair


def test_sr_pair_input_is_crop_over_factor(images):
    steps = [{"kind": "downscale", "params": {"factor": 4}}]
    pair = pairs.make_pair(images, crop=32, steps=steps, seed=0, index=0, scale=4)
    assert pair["target"].shape == (1, 32, 32) and pair["input"].shape == (1, 8, 8)
    assert json.loads(pair["labels"]) == [{"kind": "downscale", "label": "low_resolution", "params": {"factor": 4}}]
    with pytest.raises(ValueError, match="scale"):
        pairs.make_pair(images, crop=32, steps=steps, seed=0, index=0, scale=2)


def test_whole_view_squeezes_the_whole_picture_then_hazes_it_there():
    """`view="whole"`: the target is the whole picture at crop x crop (not a window of it), and
    the haze's depth runs over that whole picture: the top (farthest) is hazier than the bottom."""
    from pipeline.imageops import thumbnail

    picture = small("astronaut", 160)[:, :120]
    haze = [{"kind": "haze", "params": {"beta": 2.0}}]
    pair = pairs.make_pair([picture], crop=64, steps=haze, seed=0, index=0, augment=False, view="whole")
    np.testing.assert_array_equal(pair["target"], pairs.chw(thumbnail(picture, 64)))
    dark = np.full((160, 120, 3), 40, np.uint8)  # flat: the veil shows the depth alone
    hazed = pairs.make_pair([dark], crop=64, steps=haze, seed=0, index=0, augment=False, view="whole")
    veil = (hazed["input"] - hazed["target"]).mean(axis=(0, 2))  # per row
    assert veil[:16].mean() > 1.5 * veil[-16:].mean()
    windows = {pairs.make_pair([picture], crop=64, steps=haze, seed=0, index=i, view="whole")["target"].tobytes()
               for i in range(4)}
    assert len(windows) == 4  # augmented: a random 70-100 % window, flipped half of the time


def test_probability_choice_literal_and_mask(images):
    steps = [{"kind": "jpeg", "params": {"quality": {"choice": [10, 30]}}, "p": 0.0},
             {"kind": "holes", "params": {"count": [1, 3], "size": {"value": [0.1, 0.3]}}}]
    pair = pairs.make_pair(images, crop=32, steps=steps, seed=1, index=5)
    (applied,) = json.loads(pair["labels"])  # jpeg had p = 0
    assert applied["kind"] == "holes" and applied["params"]["size"] == [0.1, 0.3]
    assert applied["params"]["count"] in (1, 2, 3)
    assert pair["mask"].shape == (1, 32, 32) and pair["mask"].max() == 1.0
    assert np.all(pair["input"][pair["mask"] == 1] == 0)


def test_colour_crops_and_small_images_are_padded():
    rgb = [small("astronaut", 20)]
    pair = pairs.make_pair(rgb, crop=32, steps=NOISE, seed=0, index=0)
    assert pair["target"].shape == (3, 32, 32)


def test_check_steps_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown degradation"):
        pairs.check_steps([{"kind": "gaussian_blurr"}])


def test_load_clean_expands_folders_slices_and_converts(tmp_path):
    (tmp_path / "sub").mkdir()
    for i, name in enumerate(["astronaut", "camera", "coffee"]):
        (tmp_path / ("sub" if i else "") / f"{i}.png").write_bytes(png_bytes(small(name, 40)))
    (tmp_path / "notes.txt").write_text("not an image")
    gray = pairs.load_clean([str(tmp_path)], channels=1)
    assert len(gray) == 3 and all(g.shape == (40, 40, 1) and g.dtype == np.uint8 for g in gray)
    assert len(pairs.load_clean([f"{tmp_path}[1:]"], channels=3)) == 2
    assert pairs.load_clean(["skimage:camera"], channels=3)[0].shape == (512, 512, 3)
    with pytest.raises(FileNotFoundError):
        pairs.load_clean([str(tmp_path / "missing")], channels=1)


@pytest.mark.integration
def test_load_clean_from_s3(s3_bucket):
    fs, bucket = s3_bucket
    fs.pipe(f"{bucket}/clean/a.png", png_bytes(small("camera", 32)))
    fs.pipe(f"{bucket}/clean/deep/b.png", png_bytes(small("moon", 32)))
    assert len(pairs.load_clean([f"s3://{bucket}/clean"], channels=1)) == 2


@pytest.mark.integration
def test_paired_dataset_streams_the_same_pairs_as_make_pair(ray_cluster, tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(small("camera", 64)))
    ds = pairs.paired_dataset([str(tmp_path)], channels=1, crop=16, steps=NOISE, seed=3, start=100,
                              count=24, batch_size=8)
    rows = sorted(ds.take_all(), key=lambda r: r["index"])
    assert [r["index"] for r in rows] == list(range(100, 124))
    images = pairs.load_clean([str(tmp_path)], channels=1)
    expected = pairs.make_pair(images, crop=16, steps=NOISE, seed=3, index=105)
    np.testing.assert_array_equal(rows[5]["input"], expected["input"])
    assert rows[5]["labels"] == expected["labels"]


def test_check_steps_rejects_a_misspelt_param_before_any_actor_starts():
    """Train steps share the recipe step format: a typo in a param name fails in the driver."""
    with pytest.raises(ValueError, match="valid params: sigma"):
        pairs.check_steps([{"kind": "gaussian_noise", "params": {"sigmaa": 25}}])


def test_synthetic_pages_are_numbered_documents():
    first = pairs.expand(["pages:[0:3]"])
    assert first == ["pages:#0", "pages:#1", "pages:#2"] and pairs.expand(first) == first
    a, b = pairs.load_clean(["pages:[5:7]"], 3)
    np.testing.assert_array_equal(a, pairs.load_clean(["pages:#5"], 3)[0])  # a function of its number
    assert a.shape != b.shape or not np.array_equal(a, b)
    gray = pairs.to_channels(a, 1)[:, :, 0]
    ink = gray < np.percentile(gray, 99) - 40  # dark strokes on lighter paper
    assert a.dtype == np.uint8 and 0.02 < ink.mean() < 0.4
    rows = ink.mean(axis=1)
    assert (rows < 0.005).mean() > 0.2  # blank space between the lines
    for bad in ("pages:", "pages:[3:]"):
        with pytest.raises(ValueError, match="first:stop"):
            pairs.expand([bad])
    from pipeline.train.data import resolve

    assert resolve(["pages:[0:3]"]) == ["pages:[0:3]"]  # not a dataset name under the data root
    assert pairs.absolute(["pages:#4"]) == ["pages:#4"]  # nor a local path for the actors


def test_real_pairs_cut_one_window_from_input_and_target(tmp_path):
    """A real pair's input is the same-named file of the sibling input/ folder; both halves of a
    crop come from one window with one flip/rotation, a share p_real of the pairs is real, and
    without real pairs the synthetic pairs do not change."""
    clean = small("coffee", 80)
    for folder, image in (("target", clean), ("input", clean // 2)):  # input: a pixelwise map of the target
        (tmp_path / "Rain" / folder).mkdir(parents=True)
        (tmp_path / "Rain" / folder / "1.png").write_bytes(png_bytes(image))
    real = pairs.load_real([str(tmp_path / "Rain" / "target")], channels=3)
    assert len(real) == 1 and real[0].shape == (80, 80, 6)
    colour = [small("astronaut", 96)]
    made = [pairs.make_pair(colour, crop=32, steps=NOISE, seed=1, index=i, real=real, p_real=0.5) for i in range(200)]
    cut = [m for m in made if json.loads(m["labels"]) == [{"kind": "real"}]]
    assert 0.4 < len(cut) / len(made) < 0.6
    for m in cut:  # same window and transform: the input is still half the target, pixel by pixel
        target, degraded = (np.rint(m[k] * 255).astype(np.uint8) for k in ("target", "input"))
        np.testing.assert_array_equal(degraded, target // 2)
    assert len({m["target"].tobytes() for m in cut}) == len(cut)  # and the windows vary
    synthetic = pairs.make_pair(colour, crop=32, steps=NOISE, seed=1, index=7)
    unused = pairs.make_pair(colour, crop=32, steps=NOISE, seed=1, index=7, real=(), p_real=0.5)
    np.testing.assert_array_equal(synthetic["input"], unused["input"])
    (tmp_path / "Odd").mkdir()
    (tmp_path / "Odd" / "1.png").write_bytes(png_bytes(clean))
    with pytest.raises(ValueError, match="target/"):
        pairs.load_real([str(tmp_path / "Odd")], channels=3)

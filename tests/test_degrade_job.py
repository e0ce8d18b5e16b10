"""jobs.degrade: degraded + clean tars and labels from a folder, an archive or S3."""

from __future__ import annotations

import argparse
import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import degrade as job
from pipeline.degrade import archive
from pipeline.degrade.recipe import apply_recipe, load_recipes
from pipeline.io.codecs import decode
from pipeline.io.reference import ReferenceIndex
from pipeline.metrics.fullref import psnr
from tests.conftest import jpeg_bytes, png_bytes, small

NAMES = ("astronaut", "camera", "coffee", "chelsea", "coins")


@pytest.fixture
def clean_dir(tmp_path):
    """Five small images (one JPEG, one in a sub-folder) and one file that is not an image."""
    folder = tmp_path / "clean"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        image = small(name, 48 + 8 * i)
        path = folder / ("sub/" if name == "coins" else "") / (f"{name}.jpg" if name == "coffee" else f"{name}.png")
        path.write_bytes(jpeg_bytes(image, 92) if name == "coffee" else png_bytes(image))
    (folder / "notes.png").write_bytes(b"this is not an image")
    return folder


def _tar(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _make(inputs, out, labels=("all",), **kw) -> archive.Summary:
    return archive.write_archives([str(i) for i in inputs], str(out), archive.label_recipes(list(labels)), **kw)


def _pixels(data: bytes) -> np.ndarray:
    return decode(data, 10**8).pixels


def test_archives_pair_up_with_one_label_row_per_member(clean_dir, tmp_path):
    summary = _make([clean_dir], tmp_path / "out", seed=1)
    degraded, clean = _tar(tmp_path / "out/degraded.tar"), _tar(tmp_path / "out/clean.tar")
    labels = pq.read_table(tmp_path / "out/labels.parquet").to_pylist()
    assert summary.written == 5 and summary.skipped == 1
    assert list(degraded) == list(clean) == [r["member"] for r in labels]
    assert set(degraded) == {"astronaut.png", "camera.png", "coffee.jpg", "chelsea.png", "sub/coins.png"}
    assert [r["label"] for r in labels] == ["clean", "noise", "salt_pepper", "periodic", "rain"]
    assert clean["coffee.jpg"] == (clean_dir / "coffee.jpg").read_bytes()  # clean bytes exactly as read
    assert degraded["coffee.jpg"][:3] == b"\xff\xd8\xff"  # the member keeps its format
    assert all(isinstance(r["seed"], int) and json.loads(r["steps"]) is not None for r in labels)


def test_labels_reproduce_the_degraded_pixels(clean_dir, tmp_path):
    _make([clean_dir], tmp_path / "out", labels=("noise", "jpeg"), seed=4)
    degraded, clean = _tar(tmp_path / "out/degraded.tar"), _tar(tmp_path / "out/clean.tar")
    recipes = load_recipes(archive.SINGLE_RECIPES)
    for row in pq.read_table(tmp_path / "out/labels.parquet").to_pylist():
        if row["format"] == "jpeg" and row["label"] != "jpeg":
            continue  # re-encoded at quality 95: close, not equal
        again, steps = apply_recipe(_pixels(clean[row["member"]]), recipes[row["recipe"]], row["seed"])
        assert steps == json.loads(row["steps"])
        # A jpeg step on a JPEG member is the encoding itself, so even those match exactly.
        np.testing.assert_array_equal(_pixels(degraded[row["member"]]), again)


def test_same_seed_same_bytes_and_other_seed_differs(clean_dir, tmp_path):
    for out, seed in (("a", 7), ("b", 7), ("c", 8)):
        _make([clean_dir], tmp_path / out, seed=seed)
    for name in ("degraded.tar", "clean.tar", "labels.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a/degraded.tar").read_bytes() != (tmp_path / "c/degraded.tar").read_bytes()


def test_noise_label_damages_and_clean_tar_is_a_reference(clean_dir, tmp_path):
    _make([clean_dir], tmp_path / "out", labels=("noise",), seed=0)
    degraded = _tar(tmp_path / "out/degraded.tar")
    index = ReferenceIndex(str(tmp_path / "out/clean.tar"))
    assert len(index) == len(degraded) == 5
    for member, data in degraded.items():
        ref = index.load(member)
        assert isinstance(ref, bytes) and ref
        assert psnr(_pixels(ref), _pixels(data)) < 40.0


def test_archive_input_mixed_recipe_max_side_and_limit(clean_dir, tmp_path):
    source = tmp_path / "in.tar"
    with tarfile.open(source, "w") as tar:
        for path in sorted(clean_dir.rglob("*.png")):
            tar.add(path, arcname=str(path.relative_to(clean_dir)))
    recipes = archive.mixed_recipe("web_thumbnail")
    summary = archive.write_archives([str(source)], str(tmp_path / "out"), recipes, seed=2, max_side=40, limit=3)
    rows = pq.read_table(tmp_path / "out/labels.parquet").to_pylist()
    assert summary.written == 3 and len(_tar(tmp_path / "out/degraded.tar")) == 3
    assert all(r["recipe"] == "web_thumbnail" and r["label"] == "low_resolution+jpeg" for r in rows)
    assert all(max(_pixels(b).shape[:2]) == 40 for b in _tar(tmp_path / "out/clean.tar").values())


def test_cli_main_writes_the_manifest_and_rejects_bad_options(clean_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    job.add_arguments(parser)
    out = tmp_path / "out"
    assert job.main(parser.parse_args(["--input", str(clean_dir), "--output", str(out), "--label", "haze", "--limit", "2"])) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["written"] == 2 and manifest["by_label"] == {"haze": 2}
    assert job.main(parser.parse_args(["--input", str(clean_dir), "--output", str(out), "--label", "fog"])) == 2
    assert job.main(parser.parse_args(["--input", str(tmp_path / "missing"), "--output", str(out)])) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.integration
def test_s3_input_and_output(clean_dir, s3_bucket, tmp_path):
    fs, bucket = s3_bucket
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(clean_dir.glob("*.png")):
            tar.add(path, arcname=path.name)
    fs.pipe(f"{bucket}/in/clean.tar", buf.getvalue())
    summary = _make([f"s3://{bucket}/in/clean.tar"], f"s3://{bucket}/out", labels=("rain",), seed=5)
    assert summary.written == 3
    local_tar = tmp_path / "clean.tar"
    local_tar.write_bytes(buf.getvalue())
    local = tmp_path / "local"
    _make([local_tar], local, labels=("rain",), seed=5)
    assert fs.cat_file(f"{bucket}/out/degraded.tar") == (local / "degraded.tar").read_bytes()
    index = ReferenceIndex(f"s3://{bucket}/out/clean.tar")
    assert sorted(index.entries) == ["astronaut.png", "camera.png", "chelsea.png"]


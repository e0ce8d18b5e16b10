import argparse
import numpy as np

import pytest
import pyarrow.parquet as pq
import yaml

from jobs import benchmark
from pipeline.labels import DEGRADATIONS
from tests.conftest import png_bytes, small


def _args(suite: str, config, report) -> argparse.Namespace:
    """The benchmark job's arguments, never tracking (tests must not write the repo's mlflow.db)."""
    return argparse.Namespace(suite=[suite], config=str(config), report_only=False, report=str(report),
                              model=[], tracking_uri=None, no_tracking=True)



def _dataset(tmp_path, monkeypatch, name: str, pictures: dict[str, tuple[str, int]]) -> None:
    """A dataset folder `name` of PNGs {file stem: (scikit-image picture, side)} under a data
    root that IMGENHANCE_DATA points to."""
    data = tmp_path / "data" / name
    data.mkdir(parents=True)
    for stem, (picture, side) in pictures.items():
        (data / f"{stem}.png").write_bytes(png_bytes(small(picture, side)))
    monkeypatch.setenv("IMGENHANCE_DATA", str(tmp_path / "data"))


def test_classical_suite_writes_parquet_and_report(tmp_path, monkeypatch):
    _dataset(tmp_path, monkeypatch, "Tiny", {"camera": ("camera", 96), "moon": ("moon", 96)})
    conf = {"output": str(tmp_path / "bench"), "suites": {"classical": {
        "dataset": "Tiny", "seed": 0,
        "cases": [{"enhancer": "median", "degrade": "salt_pepper", "params": {"amount": 0.1}}]}}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(conf))
    assert benchmark.main(_args("classical", tmp_path / "b.yaml", tmp_path / "B.md")) == 0
    table = pq.read_table(tmp_path / "bench" / "classical.parquet").to_pandas()
    assert len(table) == 2 and (table.psnr_output > table.psnr_input + 10).all()
    report = (tmp_path / "B.md").read_text()
    assert "| median | salt_pepper |" in report
    # the recorded command reproduces the run: its data setting and its config file
    assert f"IMGENHANCE_DATA={tmp_path / 'data'} python -m jobs.benchmark --suite classical --config {tmp_path / 'b.yaml'}" in report


def test_a_config_with_its_own_output_reports_beside_it(tmp_path):
    """Without --report, a config whose output is not the repository's benchmarks/ writes its
    report into that output folder, never over the repository's BENCHMARKS.md."""
    assert benchmark.report_path(None, benchmark.REPO_ROOT / "benchmarks") == benchmark.REPO_ROOT / "BENCHMARKS.md"
    assert benchmark.report_path(None, tmp_path / "bench") == tmp_path / "bench" / "BENCHMARKS.md"
    assert (tmp_path / "bench").is_dir()
    assert benchmark.report_path(str(tmp_path / "B.md"), tmp_path / "bench") == tmp_path / "B.md"


def test_unknown_suite_exits_2(tmp_path):
    assert benchmark.main(_args("nope", benchmark.CONF_DIR / "benchmarks.yaml", tmp_path / "B.md")) == 2


def test_denoise_suite_protocols_and_published_rows(tmp_path, monkeypatch):
    from pipeline.bench import denoise

    _dataset(tmp_path, monkeypatch, "BSD68", {"camera": ("camera", 64), "moon": ("moon", 64)})
    conf = {"datasets": ["BSD68"], "sigmas": [15, 25, 50], "protocols": ["float", "8bit"],
            "models": ["bilateral", "bm3d"], "restrict": {"bm3d": {"protocols": ["float"], "sigmas": [15, 50]}}}
    rows = denoise.run(conf, 0)
    assert len(rows) == 2 * 3 * 2 + 2 * 2  # BM3D on the float protocol at two sigmas only
    assert {(r["protocol"], r["sigma"]) for r in rows if r["model"] == "classical:bm3d"} == {("float", 15), ("float", 50)}
    assert all(r["psnr"] > r["psnr_input"] for r in rows)
    import pyarrow as pa

    text = denoise.summarize(pa.Table.from_pylist(rows))
    assert "DnCNN (published)" in text and "| classical:bilateral |" in text
    bm3d = next(line for line in text.splitlines() if line.startswith("| classical:bm3d |")).split(" | ")
    assert bm3d[2] == "-" and float(bm3d[1]) > float(bm3d[3]) > 20  # sigma 25 not measured


def test_sr_protocol_reproduces_the_published_bicubic_row():
    """The sr-x4 protocol (MATLAB-style bicubic LR, Y channel, 4 px border) gives the bicubic
    figures every SR paper prints: Set5 28.42 dB, SSIM 0.8104."""
    from tests.conftest import require_dataset

    require_dataset("Set5")
    import pyarrow as pa

    from pipeline.bench import sr

    rows = sr.run({"datasets": ["Set5"], "models": ["lanczos"]}, 0)
    by_model = {m: [r for r in rows if r["model"] == m] for m in {r["model"] for r in rows}}
    bicubic = by_model[sr.BICUBIC]
    assert len(bicubic) == 5
    assert abs(np.mean([r["psnr"] for r in bicubic]) - 28.42) < 0.05
    assert abs(np.mean([r["ssim"] for r in bicubic]) - 0.8104) < 0.002
    # cv2's Lanczos-4 is sharper than MATLAB's bicubic on the same input
    assert np.mean([r["psnr"] for r in by_model["classical:lanczos"]]) > 28.6
    assert "SRCNN (published)" not in sr.summarize(pa.Table.from_pylist(rows))  # only for Set5 + Set14


def test_sr_scores_crop_the_border_and_use_studio_range_y():
    from pipeline.bench import sr

    hr = np.full((32, 32, 3), 153 / 255, np.float32)  # on the 8-bit grid, as outputs are rounded
    out = hr.copy()
    out[:4] = 0.0  # damage inside the cropped border only
    assert sr.scores(hr, out)[0] == float("inf")
    out[10, 10] = 0.0
    value = sr.scores(hr, out)[0]
    # one pixel off by Y (153/255) * 219/255 over 24 x 24 pixels
    expected = 10 * np.log10(1 / ((153 / 255 * 219 / 255) ** 2 / 24**2))
    assert abs(value - expected) < 0.01


def test_jpeg_table_size_and_fidelity_fall_with_quality(tmp_path, monkeypatch):
    import pyarrow as pa

    from pipeline.bench import jpeg

    _dataset(tmp_path, monkeypatch, "Tiny", {"camera": ("camera", 96), "astronaut": ("astronaut", 96)})
    rows = jpeg.run({"datasets": ["Tiny"], "qualities": [90, 50, 10], "models": ["deblock"]}, 0)
    assert len(rows) == 2 * 3 * 2
    for image in ("camera.png", "astronaut.png"):
        plain = sorted((r for r in rows if r["image"] == image and r["model"] == jpeg.JPEG), key=lambda r: -r["quality"])
        assert plain[0]["bytes"] > plain[1]["bytes"] > plain[2]["bytes"]
        assert plain[0]["psnr"] > plain[1]["psnr"] > plain[2]["psnr"]
        assert plain[0]["bpp"] == 8 * plain[0]["bytes"] / (96 * 96)
    text = jpeg.summarize(pa.Table.from_pylist(rows))
    assert "| 10 |" in text and "classical:deblock PSNR (gain)" in text


def test_tiling_suite_tiled_matches_whole_on_a_16_bit_scene(tmp_path, monkeypatch):
    import pyarrow as pa
    import torch

    from pipeline.bench import tiling
    from pipeline.models import build
    from pipeline.models.weights import save_weights

    _dataset(tmp_path, monkeypatch, "Scenes", {"a": ("astronaut", 200)})
    torch.manual_seed(0)
    config = {"channels": 1, "features": 8, "depth": 3}
    save_weights(build("ffdnet", **config), tmp_path / "m.pt", name="ffdnet", config=config)
    clean, noisy = tiling.scene("Scenes", 300, 15, 0)  # bigger than the picture: reflected
    assert clean.dtype == noisy.dtype == np.uint16 and clean.shape == (300, 300, 1)
    rows = tiling.run({"model": str(tmp_path / "m.pt"), "source": "Scenes", "sides": [300], "tile": 128,
                       "overlap": 16, "sigma": 15}, 0)
    whole, tiled = rows
    assert (whole["mode"], tiled["mode"]) == ("whole", "tiled")
    assert abs(tiled["psnr"] - whole["psnr"]) < 0.05 and tiled["psnr_tiled_vs_whole"] > 45
    assert "tiles of 128" in tiling.summarize(pa.Table.from_pylist(rows))


def test_restore_suites_measure_real_and_synthetic_pairs(tmp_path, monkeypatch):
    """Real pairs match by stem (an unpaired input is skipped); synthetic pairs degrade the
    clean images; `only` limits a case's classical enhancers to its route while model references
    run on every case; the input row comes first."""
    import pyarrow as pa

    from pipeline.bench import restore
    from pipeline.degrade import DEGRADE

    root = tmp_path / "data"
    for sub in ("Pairs/input", "Pairs/target", "Clean"):
        (root / sub).mkdir(parents=True)
    for name in ("coffee", "chelsea"):
        clean = small(name, 64)
        (root / "Pairs/target" / f"{name}.png").write_bytes(png_bytes(clean))
        (root / "Pairs/input" / f"{name}.png").write_bytes(png_bytes(DEGRADE["haze"](clean, seed=1)))
        (root / "Clean" / f"{name}.png").write_bytes(png_bytes(clean))
    (root / "Pairs/input" / "alone.png").write_bytes(png_bytes(small("rocket", 64)))
    monkeypatch.setenv("IMGENHANCE_DATA", str(root))
    conf = {"cases": [{"name": "real", "pairs": "Pairs", "only": ["classical:dehaze"]},
                      {"name": "dark", "dataset": "Clean", "count": 1, "degrade": {"kind": "low_light"},
                       "only": ["classical:lowlight"]}],
            "models": ["dehaze", "lowlight", "bundled:mirnet_lowlight"]}
    rows = restore.run(conf, 0)
    real = [r for r in rows if r["case"] == "real"]
    assert sorted({r["image"] for r in real}) == ["chelsea", "coffee"] and len(real) == 6
    by = {(r["case"], r["model"], r["image"]): r for r in rows}
    assert by[("real", "classical:dehaze", "coffee")]["psnr"] > by[("real", restore.INPUT, "coffee")]["psnr"]
    dark = [r for r in rows if r["case"] == "dark"]
    assert [r["model"] for r in dark][:2] == [restore.INPUT, "classical:lowlight"]
    assert len(dark) == 3 and dark[2]["model"].startswith("bundled:mirnet_lowlight")  # pinned by digest
    assert "low_light() on Clean" in restore.summarize(pa.Table.from_pylist(rows))
    held = restore.run({"cases": [{"name": "held", "pairs": "Pairs", "stems": ["chelsea"]}], "models": []}, 0)
    assert [r["image"] for r in held] == ["chelsea"] and held[0]["setting"] == "real pairs: Pairs (1 held out)"
    with pytest.raises(FileNotFoundError, match="alone"):  # an input without target is no pair
        restore.real_pairs("Pairs", ["chelsea", "alone"])


def test_denoise_color_keeps_three_channels_and_prints_the_cbsd68_table(tmp_path, monkeypatch):
    import pyarrow as pa

    from pipeline.bench import denoise

    _dataset(tmp_path, monkeypatch, "CBSD68", {"a": ("coffee", 64)})
    seen = []

    def bilateral(image, hints):
        seen.append(image.shape)
        return image

    monkeypatch.setattr(denoise, "enhancer_of", lambda model, uri=None: bilateral)
    conf = {"datasets": ["CBSD68"], "sigmas": [15, 25, 50], "protocols": ["float"], "models": ["bilateral"], "channels": 3}
    rows = denoise.run(conf, 0)
    assert len(rows) == 3 and set(seen) == {(64, 64, 3)}
    text = denoise.summarize(pa.Table.from_pylist(rows))
    assert "CBM3D (published)" in text and "DnCNN (published)" not in text


def test_classifier_suite_scores_the_classify_stage_per_class(tmp_path, monkeypatch):
    # Two domains of held-out pictures and a domain model that always answers "satellite":
    # satellite recall 1, traffic recall 0, accuracy 0.5, and the detector scored on the same examples.
    from tests.test_domain import _saved

    _dataset(tmp_path, monkeypatch, "Streets", {"coffee": ("coffee", 80), "chelsea": ("chelsea", 72)})
    _dataset(tmp_path, monkeypatch, "Fields", {"astronaut": ("astronaut", 96), "rocket": ("rocket", 64)})
    train = {"model": {"name": "resnet_single", "params": {"classes": 4}},
             "data": {"channels": 3, "target": "domain", "view": "whole", "per_epoch": 8,
                      "steps": [{"kind": "jpeg", "params": {"quality": 10}}],
                      "domains": {"traffic": {"clean": ["Streets[:1]"], "val": ["Streets"]},
                                  "satellite": {"clean": ["Fields[:1]"], "val": ["Fields"]}}},
             "train": {"epochs": 1, "batch_size": 2}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(train))
    from tests.test_degradation_model import _saved as _saved_degradation

    model, learned = _saved(tmp_path, bias_to="satellite"), _saved_degradation(tmp_path, "clean")
    conf = {"output": str(tmp_path / "bench"), "suites": {"classifier": {
        "train_config": str(tmp_path / "t.yaml"), "models": [model, learned], "degraded": 2, "side": 64,
        "domain_views": [1, 3]}}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(conf))
    assert benchmark.main(_args("classifier", tmp_path / "b.yaml", tmp_path / "B.md")) == 0
    everything = pq.read_table(tmp_path / "bench" / "classifier.parquet").to_pandas()
    table, said = everything[everything.model == model], everything[everything.model == learned]
    assert len(table) == 4 * 3 and (table.degradation == "clean").sum() == 4
    voted = everything[everything.model == f"{model} (3 views)"]  # the same model voting over 3 views
    assert list(voted.image) == list(table.image) and set(voted.predicted_domain) == {"satellite"}
    assert set(table.predicted_domain) == {"satellite"} and set(table.predicted_degradation) <= set(DEGRADATIONS)
    # The learned decision that always says clean: right on the 4 clean examples only, on the same examples.
    assert len(said) == 12 and set(said.predicted_degradation) == {"clean"} and said.degradation_correct.sum() == 4
    assert list(said.detector_degradation) == list(table.detector_degradation)
    report = (tmp_path / "B.md").read_text()
    assert "accuracy 0.500 on 12 examples (4 held-out pictures)" in report
    assert "| satellite | 1.000 | 0.500 | 6 |" in report and "| traffic | 0.000 | 0.000 | 6 |" in report
    assert "**Degradation, statistics detector**" in report
    assert "| 0.99 | 1.000 | 0.500 |" in report  # the biased model is sure of everything
    assert f"**Degradation, learned decision `{learned}`**" in report and "accuracy 0.333 on 12 examples" in report


def test_throughput_ratio_line_comes_last(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.benchmark import ratio_lines

    for name, pipeline in (("throughput", 3.0), ("throughput-large", 0.5)):
        rows = [{"way": "pipeline", "images_per_s": pipeline}, {"way": "naive", "images_per_s": 4.0},
                {"way": "model-only", "images_per_s": 4.0}]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"{name}.parquet")
    lines = ratio_lines(["throughput", "throughput-large"], tmp_path)
    assert lines == ["throughput-large: pipeline/model-only=0.12 pipeline/naive=0.12",
                     "throughput: pipeline/model-only=0.75 pipeline/naive=0.75"]
    assert ratio_lines(["classifier"], tmp_path) == []


def test_commit_is_marked_when_tracked_code_differs(tmp_path):
    import subprocess

    from pipeline.bench.report import git_commit
    from pipeline.train.job import git_tags

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                              capture_output=True)

    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "docs").mkdir()
    for name in ("code.py", "BENCHMARKS.md", "benchmarks/s.parquet", "docs/card.md"):
        (tmp_path / name).write_text("v1")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "one")
    full = git("rev-parse", "HEAD").stdout.decode().strip()
    commit = git_commit(tmp_path)
    assert len(commit) >= 7 and " " not in commit
    assert git_tags(tmp_path) == {"git_commit": full, "git_dirty": "false"}
    # The suites' own outputs, Markdown docs and untracked files leave the commit as it is.
    (tmp_path / "BENCHMARKS.md").write_text("v2")
    (tmp_path / "docs" / "card.md").write_text("v2")
    (tmp_path / "benchmarks" / "s.parquet").write_text("v2")
    (tmp_path / "new.py").write_text("v1")
    assert git_commit(tmp_path) == commit
    (tmp_path / "code.py").write_text("v2")
    assert git_commit(tmp_path) == f"{commit} with uncommitted changes"
    # Training runs tag the full hash, and a tree that differs from it (any tracked file).
    assert git_tags(tmp_path) == {"git_commit": full, "git_dirty": "true"}
    assert full.startswith(commit) and len(full) == 40

"""Throughput and memory suites: the three ways run on the same images, the ratio line keeps
its contract, and the memory sampler sees the Ray processes."""

from __future__ import annotations

import re
import tarfile

import pyarrow as pa
import pytest

from pipeline.bench import memory, throughput


def test_tar_holds_distinct_noisy_pngs_of_the_requested_side(tmp_path):
    files = throughput.make_tar(tmp_path / "x.tar", 3, 25.0, seed=0, side=48)
    with tarfile.open(tmp_path / "x.tar") as tar:
        assert [m.name for m in tar] == ["img_00000.png", "img_00001.png", "img_00002.png"]
    from pipeline.io.codecs import decode

    shapes = {decode(f, 10**6).pixels.shape for f in files}
    assert shapes == {(48, 48)} and len(set(files)) == 3


def test_ratio_line_is_the_contract_format():
    rows = [{"way": "pipeline", "images_per_s": 3.0}, {"way": "naive", "images_per_s": 2.0},
            {"way": "model-only", "images_per_s": 4.0}, {"way": "enhancer_cost", "images_per_s": None}]
    line = throughput.ratio_line(pa.Table.from_pylist(rows))
    assert line == "throughput: pipeline/model-only=0.75 pipeline/naive=1.50"


def test_cpu_roles_follow_ray_process_titles():
    assert throughput.cpu_role("ray::MapWorker(MapBatches(EnhanceActor))", False) == "model actors"
    assert throughput.cpu_role("ray::IDLE", False) == "stage tasks"
    assert throughput.cpu_role("ray::_StatsActor", False) == "ray services"
    assert throughput.cpu_role("/venv/lib/ray/core/src/ray/raylet/raylet --raylet_socket_name=x", False) == "ray services"
    assert throughput.cpu_role("python -m jobs.benchmark", True) == "driver"


def test_summary_tables_where_the_cpu_went():
    rows = [{"way": "pipeline", "images": 10, "megapixels": 1.0, "seconds": 5.0, "images_per_s": 2.0,
             "megapixels_per_s": 0.2, "cores": 2, "model": "m"},
            {"way": "naive", "images": 10, "megapixels": 1.0, "seconds": 5.0, "images_per_s": 2.0,
             "megapixels_per_s": 0.2, "cores": 2, "model": "m"},
            {"way": "model-only", "images": 10, "megapixels": 1.0, "seconds": 4.0, "images_per_s": 2.5,
             "megapixels_per_s": 0.25, "cores": 2, "model": "m"},
            {"way": "cpu", "role": "model actors", "cpu_seconds": 6.0, "images": 10, "cores": 2},
            {"way": "cpu", "role": "stage tasks", "cpu_seconds": 2.0, "images": 10, "cores": 2},
            {"way": "cpu", "role": "model-only ceiling (cores x its seconds)", "cpu_seconds": 8.0, "images": 10, "cores": 2}]
    keys = {k: None for row in rows for k in row}
    text = throughput.summarize(pa.Table.from_pylist([{**keys, **r} for r in rows]))
    assert "| model actors | 6.0 | 600 | 75% |" in text and "| stage tasks | 2.0 | 200 | 25% |" in text
    assert "| model-only ceiling (cores x its seconds) | 8.0 | 800 | - |" in text


@pytest.mark.integration
def test_three_ways_enhance_the_same_images(ray_cluster):
    rows = throughput.run({"count": 3, "cost_enhancers": ["bilateral"]}, seed=0)
    ways = {r["way"]: r for r in rows}
    assert set(ways) == {"pipeline", "naive", "model-only", "enhancer_cost", "cpu"}
    cpu = {r["role"]: r["cpu_seconds"] for r in rows if r["way"] == "cpu"}
    assert cpu["model actors"] > 0 and cpu["stage tasks"] > 0 and cpu["driver"] > 0  # the sampler saw the workers
    assert all(ways[w]["images"] == 3 and ways[w]["images_per_s"] > 0 for w in ("pipeline", "naive", "model-only"))
    costs = {r["model"]: r["ms_per_mp"] for r in rows if r["way"] == "enhancer_cost"}
    assert costs["bundled:ffdnet_gray"] > costs["bilateral"] > 0  # a CNN costs more than a bilateral filter
    assert re.fullmatch(r"throughput: pipeline/model-only=\d+\.\d\d pipeline/naive=\d+\.\d\d",
                        throughput.ratio_line(pa.Table.from_pylist(rows)))


@pytest.mark.integration
def test_memory_sampler_counts_the_ray_processes(ray_cluster):
    import psutil

    assert psutil.Process().children(recursive=True), "a local Ray cluster runs under the test process"
    with memory.PeakSampler(interval=0.05) as sampler:
        block = bytearray(200 * 2**20)  # 200 MB touched by this process: the peak must see it
        block[:: 4096] = b"x" * len(block[:: 4096])
        import time

        time.sleep(0.3)
    assert sampler.samples >= 2 and sampler.peak >= sampler.baseline + 150 * 2**20


def test_job_config_hands_the_tile_size_to_the_model(tmp_path):
    from pipeline.config import load_enhance_config

    config, routes = load_enhance_config(throughput.job_config(tmp_path, "bundled:ffdnet_gray", 2, 1, 0.5, tile=1024))
    model = config.enhancers["model"]
    assert model.params == {"model": "bundled:ffdnet_gray", "tile": 1024} and model.max_actors == 2
    config, _ = load_enhance_config(throughput.job_config(tmp_path, "bundled:ffdnet_gray", 2, 1, 0.5))
    assert config.enhancers["model"].params == {"model": "bundled:ffdnet_gray"}  # the enhancer's own default tile

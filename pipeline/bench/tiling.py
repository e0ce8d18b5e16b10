"""Suite `tiling`: tiled enhancement of big 16-bit scenes against whole-image enhancement.

A learned enhancer cuts images larger than its `tile` into overlapping tiles and blends them
with linear ramps (pipeline.enhance.learned). This suite checks the two promises of that:
- no seams: on a noisy 16-bit scene, PSNR (against the clean scene) of the tiled output is
  within 0.05 dB of the whole-image output, and PSNR between the two outputs is high;
- bounded memory: peak RSS of the tiled run hardly grows with the scene, while the
  whole-image run grows with it (activations of every layer for every pixel).
Each (side, mode) runs in a fresh process, so its peak RSS is its own.

The scene is the first clean image of `source` (a dataset folder; O-HAZE's 2202x2556 photos
by default), gray, centre-cropped (or tiled by reflection) to `side`, scaled to 16 bit, with
Gaussian noise of `sigma` (0-255 scale) added in 16 bit.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from pipeline import datasets
from pipeline.bench.common import load_image
from pipeline.imageops import to_float

WHOLE = 1 << 30  # a tile larger than any scene: one pass over the whole image


def scene(source: str, side: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) uint16 (side, side, 1) scenes."""
    import cv2

    image = to_float(load_image(datasets.images(source)[0]))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.shape[2] == 3 else image[:, :, 0]
    reps = (-(-side // gray.shape[0]), -(-side // gray.shape[1]))
    if reps != (1, 1):
        gray = np.pad(gray, [(0, (reps[0] - 1) * gray.shape[0]), (0, (reps[1] - 1) * gray.shape[1])], mode="reflect")
    top, left = (gray.shape[0] - side) // 2, (gray.shape[1] - side) // 2
    clean = gray[top:top + side, left:left + side]
    noise = np.random.default_rng(seed).normal(0, sigma / 255, clean.shape).astype(np.float32)
    as16 = lambda x: np.rint(np.clip(x, 0, 1) * 65535).astype(np.uint16)[:, :, None]  # noqa: E731
    return as16(clean), as16(clean + noise)


def _one(model: str, source: str, side: int, sigma: float, seed: int, tile: int, overlap: int) -> dict:
    """In a fresh process: enhance the scene, return PSNR, seconds, peak RSS and the output."""
    import torch

    from pipeline.enhance.learned import LearnedEnhancer
    from pipeline.metrics.fullref import psnr

    torch.set_num_threads(2)
    clean, noisy = scene(source, side, sigma, seed)
    enhancer = LearnedEnhancer(model, tile=tile, overlap=overlap, threads=2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    out = enhancer(to_float(noisy))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"psnr": psnr(to_float(clean), out), "psnr_input": psnr(to_float(clean), to_float(noisy)),
            "seconds": seconds, "peak_rss_mb": peak / 1024, "rss_before_mb": before / 1024,
            "model_ref": enhancer.model_ref, "output": out}


def run(conf: dict, seed: int) -> list[dict]:
    model, source = conf.get("model", "bundled:ffdnet_gray"), conf.get("source", "haze_ohaze/target")
    tile, overlap, sigma = int(conf.get("tile", 512)), int(conf.get("overlap", 32)), float(conf.get("sigma", 15))
    datasets.images(source)  # FileNotFoundError (suite skipped) before any process starts
    rows = []
    context = multiprocessing.get_context("spawn")
    for side in conf.get("sides", [1024, 2048]):
        outputs = {}
        for mode, size in (("whole", WHOLE), ("tiled", tile)):
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                result = pool.submit(_one, model, source, side, sigma, seed, size, overlap).result()
            outputs[mode] = result.pop("output")
            rows.append({"model": result.pop("model_ref"), "side": side, "megapixels": side * side / 1e6,
                         "mode": mode, "tile": None if mode == "whole" else tile, "overlap": overlap, **result})
        from pipeline.metrics.fullref import psnr

        rows[-1]["psnr_tiled_vs_whole"] = psnr(outputs["whole"], outputs["tiled"])
        rows[-2]["psnr_tiled_vs_whole"] = None
    return rows


def summarize(table) -> str:
    rows = table.to_pylist()
    lines = ["| scene | mode | PSNR in | PSNR out | tiled - whole dB | PSNR tiled vs whole | seconds | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    by_side: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_side.setdefault(r["side"], {})[r["mode"]] = r
    for side, modes in by_side.items():
        for mode in ("whole", "tiled"):
            r = modes[mode]
            diff = f"{r['psnr'] - modes['whole']['psnr']:+.4f}" if mode == "tiled" else "-"
            vs = f"{r['psnr_tiled_vs_whole']:.1f}" if r.get("psnr_tiled_vs_whole") is not None else "-"
            label = mode if mode == "whole" else f"tiles of {r['tile']} (overlap {r['overlap']})"
            lines.append(f"| {side}x{side} 16-bit | {label} | {r['psnr_input']:.2f} | {r['psnr']:.2f} | {diff} | "
                         f"{vs} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", f"Model `{rows[0]['model']}`; target: tiled within 0.05 dB of whole. Peak RSS is the whole "
              "process's (Python, torch and the model included), each run in a fresh process."]
    return "\n".join(lines)

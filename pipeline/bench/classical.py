"""Suite `classical`: each classical enhancer on its own degradation, PSNR/SSIM in vs out.

Images are degraded with the project's degradation library at a fixed seed per image;
enhancers run exactly as in the enhance job (stored pixels in, stored pixels out, via
`enhance_image`), so the figures are what the pipeline delivers on 8-bit files.
"""

from __future__ import annotations

import numpy as np

from pipeline import datasets
from pipeline.bench.common import bicubic_up, load_image, timed
from pipeline.degrade import DEGRADE
from pipeline.enhance.enhance import build_enhancer, enhance_image
from pipeline.imageops import to_float
from pipeline.metrics.fullref import psnr, ssim


def _setting(case: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.get("params", {}).items())


def _case_rows(case: dict, images: list, seed: int) -> list[dict]:
    enhancer = build_enhancer(case["enhancer"], case.get("enhancer_params", {}))
    rows = []
    for index, (name, clean) in enumerate(images):
        degraded = DEGRADE[case["degrade"]](clean, seed=seed + index, **case.get("params", {}))
        baseline = bicubic_up(degraded, enhancer.scale) if enhancer.scale > 1 else degraded
        out, ms = timed(enhance_image, enhancer, degraded, {})
        ref, base, res = to_float(clean), to_float(baseline), to_float(out)
        rows.append({
            "image": name, "enhancer": case["enhancer"], "degradation": case["degrade"], "setting": _setting(case),
            "psnr_input": psnr(ref, base), "psnr_output": psnr(ref, res),
            "ssim_input": ssim(ref, base), "ssim_output": ssim(ref, res),
            "ms": ms, "megapixels": degraded.shape[0] * degraded.shape[1] / 1e6,
        })
    return rows


def run(conf: dict, seed: int) -> list[dict]:
    images = [(p.name, load_image(p)) for p in datasets.images(conf["dataset"])]
    rows = []
    for case in conf["cases"]:
        rows.extend({"dataset": conf["dataset"], **row} for row in _case_rows(case, images, seed))
    return rows


def summarize(table) -> str:
    """Markdown: mean PSNR/SSIM in and out and cost per enhancer and setting."""
    df = table.to_pandas()
    df["ms_per_mp"] = df["ms"] / df["megapixels"]
    agg = df.groupby(["enhancer", "degradation", "setting"], sort=False).agg(
        images=("image", "count"), psnr_in=("psnr_input", "mean"), psnr_out=("psnr_output", "mean"),
        ssim_in=("ssim_input", "mean"), ssim_out=("ssim_output", "mean"), ms_per_mp=("ms_per_mp", "median"),
    ).reset_index()
    agg["gain_db"] = agg["psnr_out"] - agg["psnr_in"]
    lines = ["| enhancer | degradation | setting | images | PSNR in | PSNR out | gain dB | SSIM in | SSIM out | ms/MP |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in agg.itertuples():
        lines.append(f"| {r.enhancer} | {r.degradation} | {r.setting} | {r.images} | {r.psnr_in:.2f} | {r.psnr_out:.2f} | "
                     f"{r.gain_db:+.2f} | {r.ssim_in:.3f} | {r.ssim_out:.3f} | {r.ms_per_mp:.0f} |")
    lines.append("\nInput PSNR for `lanczos` (x4) is bicubic upscaling of the small image, the usual SR baseline. "
                 "Timings are wall-clock on a shared 2-core machine (median per image).")
    return "\n".join(lines)

"""Suites `denoise-gray` and `denoise-color`: denoisers on BSD68/Set12 (gray) and CBSD68
(colour, `channels: 3`) at sigma 15/25/50, as the papers measure.

Two protocols per sigma: `float` adds N(0, sigma/255) to the clean image in float and
feeds it unclipped (the DnCNN/FFDNet/NLRN papers' setting), `8bit` clips and rounds the
noisy image to uint8 first (what the pipeline reads from files). Models are classical
enhancer names or model references (`bundled:ffdnet_gray`, `models:/name@alias`, a path).
"""

from __future__ import annotations

import numpy as np

from pipeline import datasets
from pipeline.bench.common import enhancer_of, load_image, timed
from pipeline.degrade.pairs import to_channels
from pipeline.imageops import to_float
from pipeline.metrics.fullref import psnr, ssim

# Published figures (dB) at sigma 15/25/50 on the float protocol, printed beside ours, marked
# as such: BSD68 gray (the seed 002 table) and CBSD68 colour (CBM3D, CDnCNN-B, FFDNet papers).
PUBLISHED = {
    "BSD68": {"BM3D (published)": (31.07, 28.57, 25.62), "DnCNN (published)": (31.73, 29.23, 26.23),
              "FFDNet (published)": (31.63, 29.19, 26.29), "NLRN (published)": (31.88, 29.41, 26.47)},
    "CBSD68": {"CBM3D (published)": (33.52, 30.71, 27.38), "CDnCNN-B (published)": (33.89, 31.23, 27.92),
               "FFDNet (published)": (33.87, 31.21, 27.96)},
}


def _noisy(clean: np.ndarray, sigma: float, seed: int, protocol: str) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    noisy = clean + noise
    return np.round(np.clip(noisy, 0, 1) * 255) / 255 if protocol == "8bit" else noisy


def _rows(enhancer, model: str, dataset: str, sigmas: list, protocols: list, seed: int, channels: int = 1) -> list[dict]:
    rows = []
    for index, path in enumerate(datasets.images(dataset)):
        clean = to_float(to_channels(load_image(path), channels))
        for sigma in sigmas:
            for protocol in protocols:
                noisy = _noisy(clean, sigma, seed + index, protocol).astype(np.float32)
                out, ms = timed(enhancer, noisy, {})
                rows.append({"model": getattr(enhancer, "model_ref", model) or model, "dataset": dataset,
                             "image": path.name, "sigma": sigma, "protocol": protocol,
                             "psnr_input": psnr(clean, np.clip(noisy, 0, 1)), "psnr": psnr(clean, out),
                             "ssim": ssim(clean, out), "ms": ms, "megapixels": clean.shape[0] * clean.shape[1] / 1e6})
    return rows


def run(conf: dict, seed: int) -> list[dict]:
    """Rows for every model of `conf["models"]` (the compare job sets them, and `tracking_uri`).

    `restrict: {model: {datasets: [...], protocols: [...], sigmas: [...]}}` runs a slow model
    (BM3D, seconds per image) on part of the grid only; its rows then appear in those tables
    and columns alone (every image of a dataset, so its means compare with the others')."""
    rows = []
    for model in conf["models"]:
        only = (conf.get("restrict") or {}).get(model, {})
        enhancer = enhancer_of(model, conf.get("tracking_uri"))  # loaded once, not once per dataset
        for dataset in only.get("datasets", conf["datasets"]):
            protocols = only.get("protocols", conf["protocols"])
            sigmas = only.get("sigmas", conf["sigmas"])
            rows.extend(_rows(enhancer, model, dataset, sigmas, protocols, seed, int(conf.get("channels", 1))))
    return rows


def summarize(table) -> str:
    df = table.to_pandas()
    df["ms_per_mp"] = df["ms"] / df["megapixels"]
    agg = df.groupby(["dataset", "protocol", "model", "sigma"]).agg(psnr=("psnr", "mean"), ms=("ms_per_mp", "median"))
    lines = []
    for (dataset, protocol), part in agg.groupby(level=[0, 1]):
        sigmas = sorted(part.index.get_level_values("sigma").unique())
        lines += [f"\n**{dataset}, {protocol} noise** (mean PSNR dB; ms per megapixel)\n",
                  "| model | " + " | ".join(f"sigma {s:g}" for s in sigmas) + " | ms/MP |",
                  "|---|" + "---|" * (len(sigmas) + 1)]
        for model, rows in part.groupby(level=2):
            measured = rows.droplevel([0, 1, 2])["psnr"]  # by sigma; a restricted model lacks some
            cells = [f"{measured[s]:.2f}" if s in measured.index else "-" for s in sigmas]
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {rows['ms'].median():.0f} |")
        if dataset in PUBLISHED and protocol == "float" and sigmas == [15, 25, 50]:
            lines += [f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " | - |"
                      for name, values in PUBLISHED[dataset].items()]
    return "\n".join(lines)

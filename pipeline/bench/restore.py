"""Suites `derain`, `weather-synthetic` and `lowlight`: restoration on degraded/clean pairs.

A case is either real pairs (`pairs: <dataset>` with `input/` and `target/` files of the same
stem, e.g. Rain100L; `stems: [...]` keeps only the pairs held out from training) or synthetic
ones (`dataset` + `degrade: {kind, params}`: the project's degradation, seeded per image, on
held-out clean images; `count` caps the images). Every
case measures the degraded input itself and each entry of `models` (classical enhancer
names, `passthrough`, or model references) with PSNR and SSIM on RGB and PSNR on Y
(BT.601, the deraining papers' channel). The issue's weather target reads off the table:
a model must beat both the input and the classical route of the case by 5 dB.
"""

from __future__ import annotations

import numpy as np

from pipeline import datasets
from pipeline.bench.common import enhancers_by_label, load_image, timed
from pipeline.bench.sr import y_channel
from pipeline.degrade import DEGRADE
from pipeline.degrade.pairs import to_channels
from pipeline.imageops import to_float
from pipeline.metrics.fullref import psnr, ssim

INPUT = "input (degraded)"


def _rgb(image: np.ndarray) -> np.ndarray:
    return to_float(to_channels(image, 3))


def real_pairs(name: str, stems: list | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(stem, degraded, clean) float RGB of a dataset with input/ and target/ folders; only the
    listed `stems` (file names without extension) when given: the pairs no model trained on."""
    targets = {p.stem: p for p in datasets.images(f"{name}/target")}
    wanted = None if stems is None else {str(s) for s in stems}
    missing = sorted((wanted or set()) - set(targets))
    if missing:
        raise FileNotFoundError(f"{name}: no target for stems {missing}")
    pairs = []
    for path in datasets.images(f"{name}/input"):
        if path.stem in targets and (wanted is None or path.stem in wanted):
            pairs.append((path.stem, _rgb(load_image(path)), _rgb(load_image(targets[path.stem]))))
    if not pairs:
        raise FileNotFoundError(f"{name}: no input/target files with the same stem")
    return pairs


def synthetic_pairs(dataset: str, degrade: dict, count: int | None, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, degraded, clean) float RGB: the degradation on the first `count` images of `dataset`."""
    out = []
    for index, path in enumerate(datasets.images(dataset)[:count]):
        clean = _rgb(load_image(path))
        degraded = DEGRADE[degrade["kind"]](clean, seed=seed + index, **degrade.get("params", {}))
        out.append((path.name, np.clip(degraded, 0, 1).astype(np.float32), clean))
    return out


def _setting(case: dict) -> str:
    if "pairs" in case:
        some = f" ({len(case['stems'])} held out)" if case.get("stems") else ""
        return f"real pairs: {case['pairs']}{some}"
    params = ", ".join(f"{k}={v}" for k, v in case["degrade"].get("params", {}).items())
    return f"{case['degrade']['kind']}({params}) on {case['dataset']}"


def _measures(case: dict, label: str) -> bool:
    """A case's `only` names the classical enhancers it measures (the classical route of that
    degradation); model references run on every case, so compare sees each version on all."""
    return not label.startswith("classical:") or label in case.get("only", [label])


def run(conf: dict, seed: int) -> list[dict]:
    enhancers = enhancers_by_label(conf.get("models", []), conf.get("tracking_uri"))
    rows = []
    for case in conf["cases"]:
        pairs = (real_pairs(case["pairs"], case.get("stems")) if "pairs" in case
                 else synthetic_pairs(case["dataset"], case["degrade"], case.get("count"), seed))
        named = {INPUT: None, **{m: e for m, e in enhancers.items() if _measures(case, m)}}
        for image, degraded, clean in pairs:
            for label, enhancer in named.items():
                out, ms = (degraded, 0.0) if enhancer is None else timed(enhancer, degraded, {})
                rows.append({"case": case["name"], "setting": _setting(case), "image": image, "model": label,
                             "psnr": psnr(clean, out), "ssim": ssim(clean, out),
                             "psnr_y": psnr(y_channel(clean)[:, :, None], y_channel(out)[:, :, None]),
                             "ms": ms, "megapixels": clean.shape[0] * clean.shape[1] / 1e6})
    return rows


def summarize(table) -> str:
    df = table.to_pandas()
    lines = ["| case | setting | images | model | PSNR dB | PSNR-Y dB | SSIM | gain over input dB | ms/MP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for case, part in df.groupby("case", sort=False):
        base = part[part["model"] == INPUT]["psnr"].mean()
        for model, rows in part.groupby("model", sort=False):
            gain = "-" if model == INPUT else f"{rows['psnr'].mean() - base:+.2f}"
            ms = "-" if model == INPUT else f"{(rows['ms'] / rows['megapixels']).median():.0f}"
            lines.append(f"| {case} | {rows['setting'].iloc[0]} | {len(rows)} | {model} | {rows['psnr'].mean():.2f} | "
                         f"{rows['psnr_y'].mean():.2f} | {rows['ssim'].mean():.4f} | {gain} | {ms} |")
    lines += ["", "PSNR and SSIM on RGB in [0, 1]; PSNR-Y on BT.601 luma (16-235), the deraining papers' channel."]
    return "\n".join(lines)

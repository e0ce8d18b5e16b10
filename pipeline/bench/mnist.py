"""Suite `mnist-noise`: seed 004's three noise types on held-out MNIST test digits.

MSE on the [0, 1] scale (what seed 004 reports) and PSNR of the noisy input, of classical
enhancers and of any model reference (`--model`), one row per (model, noise, digit). The
digits come through the paired builder's `mnist:` source; the default slice `[9000:]` is
never trained on (conf/train/ae_mnist_*.yaml train on [:8000], validate on [8000:9000]).
Each digit is degraded by the degradation library at a fixed seed per digit, on its uint8
pixels, so the noisy input is clipped and rounded as a stored file (and a training pair) is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from skimage.metrics import mean_squared_error as mse

from pipeline.bench.common import enhancer_of, timed
from pipeline.degrade import DEGRADE
from pipeline.degrade.pairs import load_clean
from pipeline.enhance.enhance import build_enhancer
from pipeline.imageops import to_float
from pipeline.metrics.fullref import psnr


def noisy_digits(source: str, noise: Mapping[str, Any], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) float32 (28, 28, 1) pairs of every digit of `source`; `noise` is a
    degradation step {kind, params}, applied with seed `seed + digit number`."""
    digits = load_clean([source], 1)
    made = [DEGRADE[noise["kind"]](clean, seed=seed + i, **noise.get("params", {})) for i, clean in enumerate(digits)]
    return [(to_float(clean), to_float(noisy)) for clean, noisy in zip(digits, made)]


def setting(noise: Mapping[str, Any]) -> str:
    return ", ".join([noise["kind"]] + [f"{k}={v}" for k, v in noise.get("params", {}).items()])


def rows(enhancer, noise_name: str, noise: Mapping[str, Any], cases: Sequence[tuple[np.ndarray, np.ndarray]]
         ) -> list[dict]:
    """One row per digit (`digit`: its position in the source slice): MSE and PSNR of the
    noisy input and of the enhancer's output."""
    out = []
    for index, (clean, noisy) in enumerate(cases):
        result, ms = timed(enhancer, noisy, {})
        out.append({"model": enhancer.model_ref, "noise": noise_name, "setting": setting(noise), "digit": index,
                    "mse_input": float(mse(clean, noisy)), "mse": float(mse(clean, result)),
                    "psnr_input": psnr(clean, noisy), "psnr": psnr(clean, result), "ms": ms})
    return out


def baseline(entry: str | Mapping[str, Any]):
    """An enhancer by name (or model reference), or `{enhancer, params}`: a classical one with
    other settings, its params then part of the `model` its rows name."""
    if isinstance(entry, str):
        return enhancer_of(entry)
    params = dict(entry.get("params", {}))
    enhancer = build_enhancer(entry["enhancer"], params)
    enhancer.model_ref = f"{enhancer.model_ref}({', '.join(f'{k}={v}' for k, v in params.items())})"
    return enhancer


def run(conf: dict, seed: int) -> list[dict]:
    """Rows for the suite's baselines and models on each of its noises."""
    enhancers = [baseline(entry) for entry in conf.get("baselines", [])]
    enhancers += [enhancer_of(name, conf.get("tracking_uri")) for name in conf.get("models", [])]
    out = []
    for noise_name, noise in conf["noises"].items():
        cases = noisy_digits(conf["source"], noise, seed)
        for enhancer in enhancers:
            out.extend(rows(enhancer, noise_name, noise, cases))
    return out


def table(df, label: str = "model") -> list[str]:
    """Markdown lines: one row for the noisy input, one per `label` value; MSE and PSNR per noise."""
    noises = list(dict.fromkeys(df["noise"]))
    means = df.groupby([label, "noise"], sort=False)[["mse", "psnr", "mse_input", "psnr_input"]].mean()
    lines = ["| | " + " | ".join(f"{n} MSE | {n} PSNR" for n in noises) + " |",
             "|---|" + "---|---|" * len(noises)]
    first = means.groupby(level="noise").first()
    lines.append("| noisy input | " + " | ".join(f"{first.loc[n, 'mse_input']:.5f} | {first.loc[n, 'psnr_input']:.2f}"
                                                  for n in noises) + " |")
    for name in dict.fromkeys(df[label]):
        cells = [f"{means.loc[(name, n), 'mse']:.5f} | {means.loc[(name, n), 'psnr']:.2f}"
                 if (name, n) in means.index else "- | -" for n in noises]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def notes(df) -> list[str]:
    """What the numbers are: digit count, measures, the noises' exact settings."""
    digits = df.groupby("noise")["digit"].nunique().max()
    settings = "; ".join(f"{n}: `{s}`" for n, s in dict(zip(df["noise"], df["setting"])).items())
    return [f"\nMean over {digits} held-out MNIST test digits per noise; MSE on the [0, 1] scale (seed 004's "
            f"measure), PSNR in dB. Noises: {settings} (sigma on 0-255: 25.5 is variance 0.01 on [0, 1]; "
            "periodic alpha is the default 1.5 pi, the phase random per digit)."]


def summarize(table_) -> str:
    df = table_.to_pandas()
    return "\n".join(table(df) + notes(df))

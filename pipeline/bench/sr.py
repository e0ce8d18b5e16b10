"""Suite `sr-x4`: x4 super-resolution on Set5 and Set14, measured the way the papers do.

Protocol (the one behind the published SRCNN/EDSR tables): each HR image is cropped to a
multiple of 4, downscaled with MATLAB-style bicubic (anti-aliased; pipeline.degrade.capture.
matlab_bicubic) and rounded to 8 bit; the model's output is rounded to 8 bit too; PSNR and
SSIM are computed on Y of ITU-R BT.601 YCbCr (16-235 range, as MATLAB's rgb2ycbcr) after
cropping 4 pixels (the scale) from every border. Our bicubic row reproduces the published
bicubic one within 0.1 dB, which checks the protocol. Models are classical enhancer names
or model references; a gray (luma) model runs on Y, with the chroma upscaled bicubically.
"""

from __future__ import annotations

import numpy as np

from pipeline import datasets
from pipeline.bench.common import enhancer_of, load_image, timed
from pipeline.degrade.capture import matlab_bicubic
from pipeline.metrics.fullref import psnr, ssim

SCALE = 4
BICUBIC = "bicubic (MATLAB imresize)"
# Published x4 figures on Y (dB), Set5 / Set14, printed beside ours and marked as such.
PUBLISHED = {"Bicubic (published)": (28.42, 26.00), "SRCNN (published)": (30.48, 27.50),
             "SRResNet (published)": (32.05, 28.49), "EDSR (published)": (32.46, 28.80)}


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr on the [16/255, 235/255] range (MATLAB rgb2ycbcr), float (H, W)."""
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return (16.0 + 65.481 * rgb[:, :, 0] + 128.553 * rgb[:, :, 1] + 24.966 * rgb[:, :, 2]) / 255.0


def to_8bit(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> the float of its 8-bit rounding (what a saved PNG holds)."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


def low_res(hr: np.ndarray) -> np.ndarray:
    """The benchmark's LR input: MATLAB-style bicubic x1/4, rounded to 8 bit."""
    h, w = hr.shape[:2]
    return to_8bit(matlab_bicubic(hr, (w // SCALE, h // SCALE)))


def scores(hr: np.ndarray, sr: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) on Y with `SCALE` border pixels cropped."""
    b = SCALE
    ref, out = y_channel(hr)[b:-b, b:-b, None], y_channel(to_8bit(sr))[b:-b, b:-b, None]
    return psnr(ref, out), ssim(ref, out)


def hr_images(dataset: str) -> list[tuple[str, np.ndarray]]:
    """(name, float RGB or gray (H, W, C) cropped to a multiple of SCALE) of a dataset."""
    out = []
    for path in datasets.images(dataset):
        image = load_image(path)
        image = image[:, :, None] if image.ndim == 2 else image[:, :, :3]
        h, w = (image.shape[0] // SCALE) * SCALE, (image.shape[1] // SCALE) * SCALE
        out.append((path.name, image[:h, :w].astype(np.float32) / 255.0))
    return out


def run(conf: dict, seed: int) -> list[dict]:
    rows = []
    data = {name: hr_images(name) for name in conf["datasets"]}
    for model in [BICUBIC, *conf["models"]]:
        if model == BICUBIC:
            enhance, label = (lambda lr, hints: matlab_bicubic(lr, (lr.shape[1] * SCALE, lr.shape[0] * SCALE))), model
        else:
            enhance = enhancer_of(model, conf.get("tracking_uri"))
            label = getattr(enhance, "model_ref", model) or model
        for dataset, images in data.items():
            for name, hr in images:
                lr = low_res(hr)
                sr, ms = timed(enhance, lr, {})
                value, structure = scores(hr, sr)
                rows.append({"model": label, "dataset": dataset, "image": name, "psnr": value, "ssim": structure,
                             "ms": ms, "megapixels": hr.shape[0] * hr.shape[1] / 1e6})
    return rows


def summarize(table) -> str:
    df = table.to_pandas()
    df["ms_per_mp"] = df["ms"] / df["megapixels"]
    agg = df.groupby(["model", "dataset"], sort=False).agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"),
                                                           ms=("ms_per_mp", "median"))
    names = list(dict.fromkeys(df["dataset"]))
    lines = ["| model | " + " | ".join(f"{d} PSNR | {d} SSIM" for d in names) + " | ms per output MP |",
             "|---|" + "---|---|" * len(names) + "---|"]
    for model in dict.fromkeys(df["model"]):
        part = agg.loc[model]
        cells = " | ".join(f"{part.loc[d, 'psnr']:.2f} | {part.loc[d, 'ssim']:.4f}" for d in names)
        lines.append(f"| {model} | {cells} | {part['ms'].median():.0f} |")
    if names == ["Set5", "Set14"]:
        lines += [f"| {name} | {a:.2f} | - | {b:.2f} | - | - |" for name, (a, b) in PUBLISHED.items()]
    lines += ["", "x4, Y channel (BT.601, 16-235), 4-pixel border cropped, LR by MATLAB-style anti-aliased "
              "bicubic rounded to 8 bit, outputs rounded to 8 bit; timings on a shared 2-core CPU."]
    return "\n".join(lines)

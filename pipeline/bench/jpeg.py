"""Suite `jpeg-table`: seed 003's Table I, JPEG quality against fidelity and size, and what
deblocking wins back at each quality.

Every image of the fixed sets is encoded with the pipeline's own encoder (libjpeg through
OpenCV, 4:2:0 chroma for colour) at each quality, decoded, and compared with the original:
PSNR and SSIM (on all channels, data range 1), file bytes and bits per pixel. Each enhancer
of `models` (the route's `deblock`, or a model reference) then runs on the decoded image;
its rows carry the same bytes with its PSNR/SSIM.
"""

from __future__ import annotations

import numpy as np

from pipeline import datasets
from pipeline.bench.common import enhancers_by_label, load_image, timed
from pipeline.imageops import to_float
from pipeline.io.codecs import decode, encode
from pipeline.metrics.fullref import psnr, ssim

JPEG = "jpeg (decoded)"


def _rows_of_image(dataset: str, name: str, image: np.ndarray, qualities: list[int], enhancers: dict) -> list[dict]:
    clean = to_float(image)
    pixels = image.shape[0] * image.shape[1]
    rows = []
    for quality in qualities:
        data = encode(image, "jpeg", jpeg_quality=int(quality))
        decoded = to_float(decode(data, 10**9).pixels).reshape(clean.shape)
        base = {"dataset": dataset, "image": name, "quality": int(quality), "bytes": len(data),
                "bpp": 8 * len(data) / pixels, "megapixels": pixels / 1e6}
        rows.append({**base, "model": JPEG, "psnr": psnr(clean, decoded), "ssim": ssim(clean, decoded), "ms": 0.0})
        for label, enhancer in enhancers.items():
            out, ms = timed(enhancer, decoded.astype(np.float32), {})
            rows.append({**base, "model": label, "psnr": psnr(clean, out), "ssim": ssim(clean, out), "ms": ms})
    return rows


def run(conf: dict, seed: int) -> list[dict]:
    enhancers = enhancers_by_label(conf.get("models", []), conf.get("tracking_uri"))
    rows = []
    for dataset in conf["datasets"]:
        for path in datasets.images(dataset):
            image = load_image(path)
            image = image[:, :, :3] if image.ndim == 3 else image[:, :, None]
            rows += _rows_of_image(dataset, path.name, image, conf["qualities"], enhancers)
    return rows


def summarize(table) -> str:
    df = table.to_pandas()
    lines = []
    for dataset, part in df.groupby("dataset", sort=False):
        models = list(dict.fromkeys(part["model"]))
        jpeg = part[part["model"] == JPEG].groupby("quality").agg(kb=("bytes", lambda b: b.mean() / 1024),
                                                                 bpp=("bpp", "mean"), psnr=("psnr", "mean"),
                                                                 ssim=("ssim", "mean"))
        others = [m for m in models if m != JPEG]
        head = "| quality | KB per image | bits/pixel | PSNR dB | SSIM |" + "".join(f" {m} PSNR (gain) | {m} SSIM |" for m in others)
        lines += [f"\n**{dataset}** ({part['image'].nunique()} images; mean per image)\n", head,
                  "|---|---|---|---|---|" + "---|---|" * len(others)]
        for quality in sorted(jpeg.index, reverse=True):
            r = jpeg.loc[quality]
            cells = f"| {quality} | {r['kb']:.1f} | {r['bpp']:.2f} | {r['psnr']:.2f} | {r['ssim']:.4f} |"
            for m in others:
                e = part[(part["model"] == m) & (part["quality"] == quality)]
                cells += f" {e['psnr'].mean():.2f} ({e['psnr'].mean() - r['psnr']:+.2f}) | {e['ssim'].mean():.4f} |"
            lines.append(cells)
    lines += ["", "JPEG by the pipeline's encoder (OpenCV libjpeg, 4:2:0 chroma for colour); PSNR/SSIM on all "
              "channels against the original 8-bit image."]
    return "\n".join(lines)

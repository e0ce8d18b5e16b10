"""Degraded archives from clean images: `degraded.tar`, `clean.tar` and `labels.parquet`.

Reads any input the enhance job reads (folders, globs, tar/zip on any fsspec URL, through
`expand_inputs` + `iter_members`) and streams two tars to the output prefix through fsspec
file objects, one member at a time, so neither archive is ever held in memory.

- `degraded.tar`: each image degraded by a recipe, under the same member name and format
  (a JPEG is re-encoded at quality 95, except when the last step is `jpeg`: then that step
  *is* the encoding, at its own quality). GIF (a palette would quantise the damage away)
  is written as PNG with its suffix replaced, in both tars.
- `clean.tar`: the clean original under the same name, byte for byte as read, or
  re-encoded in its format when `max_side` resized it (or it was a GIF). It is a valid
  `--reference` for the enhance job (PSNR/SSIM by member name).
- `labels.parquet`: one row per member: label, the steps with their concrete params and
  the member's seed; `apply_recipe(clean, recipe, seed)` reproduces the degraded pixels.
- `manifest.json`, written last: the options and counts; its presence marks a complete run.

Deterministic: the same inputs, recipes and seed give identical bytes (members in input
order, tar headers with mtime 0 and no owner; member seeds from (seed, index)).
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
import tarfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.degrade import DEGRADE, RETURNS_MASK
from pipeline.degrade.recipe import SINGLE_RECIPES, Recipe, load_recipes, sample_recipe
from pipeline.imageops import split_alpha
from pipeline.io import storage
from pipeline.io.codecs import Decoded, decode, encode, output_format
from pipeline.io.readers import ReadLimits, iter_members
from pipeline.io.sources import Source, expand_inputs
from pipeline.labels import DEGRADATIONS

log = logging.getLogger("imgenhance.degrade")

MIXED_RECIPES = SINGLE_RECIPES.parent / "mixed.yaml"
KEEP_FORMATS = ("png", "jpeg", "tiff", "bmp", "webp")  # written back in their own format
JPEG_QUALITY = 95  # re-encoding a JPEG member: high enough to add no visible damage
MAX_PIXELS = 64_000_000  # as the enhance job's default limits
MAX_MEMBER_BYTES = 256 << 20

LABELS_SCHEMA = pa.schema([
    ("member", pa.string()),  # name in both tars
    ("source", pa.string()),  # input URL (credentials redacted)
    ("input_member", pa.string()),  # name inside the source
    ("recipe", pa.string()),  # the label for single recipes, else the mixed recipe's name
    ("label", pa.string()),  # the class: the recipe's label, or "+"-joined step labels
    ("labels", pa.list_(pa.string())),  # distinct labels of the steps that ran, in order
    ("steps", pa.string()),  # JSON [{kind, label, params}] with concrete params
    ("seed", pa.int64()),  # this member's seed for apply_recipe
    ("format", pa.string()),
    ("width", pa.int32()),  # of the degraded image (downscale changes it)
    ("height", pa.int32()),
])


@dataclass(frozen=True)
class NamedRecipe:
    name: str
    recipe: Recipe
    label: str | None  # fixed class for single-label recipes; None: from the steps that ran


@dataclass
class Summary:
    output: str
    written: int = 0
    skipped: int = 0  # undecodable, unreadable or not an image
    by_label: Counter = field(default_factory=Counter)


def label_recipes(labels: Sequence[str], path: str | Path = SINGLE_RECIPES) -> list[NamedRecipe]:
    """Single-label recipes; `["all"]` means every label of DEGRADATIONS, "clean" included."""
    names = list(DEGRADATIONS) if list(labels) == ["all"] else list(labels)
    recipes = load_recipes(path)
    out = []
    for name in names:
        if name == "clean":
            out.append(NamedRecipe("clean", Recipe.model_validate([]), "clean"))
        elif name in recipes and name in DEGRADATIONS:
            out.append(NamedRecipe(name, recipes[name], name))
        else:
            raise ValueError(f"no recipe for label {name!r} in {path}; labels: all, {', '.join(DEGRADATIONS)}")
    return out


def mixed_recipe(name: str, path: str | Path = MIXED_RECIPES) -> list[NamedRecipe]:
    recipes = load_recipes(path)
    if name not in recipes:
        raise ValueError(f"no recipe {name!r} in {path}; recipes: {', '.join(recipes)}")
    return [NamedRecipe(name, recipes[name], None)]


def member_seed(seed: int, index: int) -> int:
    """Independent 63-bit seed per member, fixed by the run seed and the member's position."""
    return int(np.random.SeedSequence([seed, index]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def degrade_pixels(image: np.ndarray, recipe: Recipe, seed: int, fmt: str) -> tuple[np.ndarray, list[dict], int]:
    """apply_recipe, except that a final `jpeg` step is left to the encoder when writing JPEG.

    Returns (pixels, steps, JPEG quality to encode with). `jpeg` ignores its seed, so
    skipping it leaves the generator, and so every other draw, as apply_recipe has them.
    """
    rng = np.random.default_rng(seed)
    steps = sample_recipe(recipe, rng)
    quality = JPEG_QUALITY
    for i, step in enumerate(steps):
        if step["kind"] == "jpeg" and fmt == "jpeg" and i == len(steps) - 1:
            quality = int(step["params"].get("quality", 20))
            break
        out = DEGRADE[step["kind"]](image, seed=rng, **step["params"])
        image = out[0] if step["kind"] in RETURNS_MASK else out
    return image, steps, quality


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(width, height); cv2 drops a single channel axis, so the shape is restored."""
    if image.shape[1::-1] == size:
        return image
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], *image.shape[2:])


def limit_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return _resize(image, (max(1, round(w * scale)), max(1, round(h * scale))))


def degrade_image(pixels: np.ndarray, recipe: Recipe, seed: int, fmt: str) -> tuple[np.ndarray, list[dict], int]:
    """Degrade the colour channels; an alpha channel is carried (resized if the image was)."""
    colour, alpha = split_alpha(pixels)
    out, steps, quality = degrade_pixels(colour, recipe, seed, fmt)
    if alpha is None:
        return out, steps, quality
    out = out if out.ndim == 3 else out[:, :, None]
    alpha = _resize(alpha, out.shape[1::-1])
    return np.concatenate([out, alpha[:, :, None].astype(out.dtype)], axis=2), steps, quality


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)  # uid/gid 0, no owner names, mode 0644
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class _Item:
    name: str  # member name in both tars
    row: dict  # the reader's row
    fmt: str  # format written


def _output_name(row: dict, prefix_stem: bool, decoded: Decoded) -> tuple[str, str]:
    """(member name, format): the source-unique key, without its stem for a single source.

    The member's own format when it can hold the pixels, else PNG with the suffix replaced.
    """
    key = row["key"] if prefix_stem else row["key"].split("/", 1)[1]
    fmt = output_format(key, decoded.format)
    if fmt in KEEP_FORMATS and (decoded.pixels.dtype == np.uint8 or fmt in ("png", "tiff")):
        return key, fmt
    return posixpath.splitext(key)[0] + ".png", "png"


def _labels_row(item: _Item, named: NamedRecipe, steps: list[dict], seed: int, image: np.ndarray) -> dict:
    labels = list(dict.fromkeys(s["label"] for s in steps))
    label = named.label or ("+".join(labels) if labels else "clean")
    return {
        "member": item.name, "source": item.row["source"], "input_member": item.row["member"],
        "recipe": named.name, "label": label, "labels": labels, "steps": json.dumps(steps, sort_keys=True),
        "seed": seed, "format": item.fmt, "width": image.shape[1], "height": image.shape[0],
    }


class _Writer:
    """The two tars and the label rows of one run (rows are small: one dict per member)."""

    def __init__(self, degraded: tarfile.TarFile, clean: tarfile.TarFile):
        self.degraded, self.clean, self.rows, self.names = degraded, clean, [], set()

    def unique(self, name: str) -> str:
        root, ext = posixpath.splitext(name)
        n, out = 1, name
        while out in self.names:  # two inputs became one name (a.gif and a.png -> a.png)
            n += 1
            out = f"{root}~{n}{ext}"
        self.names.add(out)
        return out

    def add(self, degraded: bytes, clean: bytes, row: dict) -> None:
        row["member"] = name = self.unique(row["member"])
        _add(self.degraded, name, degraded)
        _add(self.clean, name, clean)
        self.rows.append(row)


def make_pair(item: _Item, decoded: Decoded, named: NamedRecipe, seed: int, max_side: int | None) -> tuple[bytes, bytes, dict]:
    """(degraded bytes, clean bytes, labels row) of one member."""
    clean = limit_side(decoded.pixels, max_side)
    out, steps, quality = degrade_image(clean, named.recipe, seed, item.fmt)
    kept = clean is decoded.pixels and item.fmt == decoded.format
    clean_bytes = item.row["data"] if kept else encode(clean, item.fmt, jpeg_quality=JPEG_QUALITY)
    return encode(out, item.fmt, jpeg_quality=quality), clean_bytes, _labels_row(item, named, steps, seed, out)


def _images(sources: Sequence[Source], options: Mapping[str, Any] | None, summary: Summary) -> Iterator[dict]:
    """Reader rows that carry bytes; the others are counted and logged."""
    limits = ReadLimits(max_member_bytes=MAX_MEMBER_BYTES)
    for source in sources:
        for row in iter_members(source, options, limits):
            if row.get("data") is None:
                summary.skipped += 1
                log.warning("skipped %s: %s", storage.redact(row["key"]), row.get("error"))
                continue
            yield row


def write_archives(
    inputs: Sequence[str],
    output: str,
    recipes: Sequence[NamedRecipe],
    seed: int = 0,
    max_side: int | None = None,
    limit: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> Summary:
    """Degrade every image of `inputs` into `<output>/{degraded,clean}.tar` + labels.parquet.

    Image i gets recipe `recipes[i % len(recipes)]` and seed `member_seed(seed, i)`;
    undecodable members are skipped (counted, logged) and take no index.
    """
    output = storage.normalize_url(output)
    fs, root = storage.filesystem(output, options)
    fs.makedirs(root, exist_ok=True)
    sources = expand_inputs(inputs, options)
    prefix_stem = len({s.stem for s in sources}) > 1
    summary = Summary(output=storage.redact(output))
    with fs.open(f"{root}/degraded.tar", "wb") as fd, fs.open(f"{root}/clean.tar", "wb") as fc, \
            tarfile.open(fileobj=fd, mode="w|") as td, tarfile.open(fileobj=fc, mode="w|") as tc:
        writer = _Writer(td, tc)
        for row in _images(sources, options, summary):
            if limit is not None and summary.written >= limit:
                break
            index = summary.written
            try:
                decoded = decode(row["data"], MAX_PIXELS)
                name, fmt = _output_name(row, prefix_stem, decoded)
                item = _Item(name, row, fmt)
                pair = make_pair(item, decoded, recipes[index % len(recipes)], member_seed(seed, index), max_side)
            except (ValueError, cv2.error) as exc:  # DecodeError is a ValueError
                summary.skipped += 1
                log.warning("skipped %s: %s", storage.redact(row["key"]), exc)
                continue
            writer.add(*pair)
            summary.written += 1
            summary.by_label[pair[2]["label"]] += 1
    with fs.open(f"{root}/labels.parquet", "wb") as f:
        pq.write_table(pa.Table.from_pylist(writer.rows, schema=LABELS_SCHEMA), f)
    return summary


def write_manifest(output: str, options: Mapping[str, Any] | None, settings: dict, summary: Summary) -> None:
    """The frozen options and the counts, written last: the run is complete when it exists."""
    fs, root = storage.filesystem(storage.normalize_url(output), options)
    record = {**settings, "written": summary.written, "skipped": summary.skipped, "by_label": dict(sorted(summary.by_label.items()))}
    with fs.open(f"{root}/manifest.json", "w") as f:
        f.write(storage.redact(json.dumps(record, indent=2, sort_keys=True)) + "\n")

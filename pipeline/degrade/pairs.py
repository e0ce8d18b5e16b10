"""Paired training data on Ray Data: clean images -> random crops -> (degraded input, clean target).

Pair `index` of a run is a pure function of (seed, index): which image, where the crop
lies, the flip/rotation and every degradation parameter come from one generator seeded
with both. Training uses the global index `epoch * per_epoch + i`, so epoch e always
sees the same crops and a resumed run continues exactly where it stopped.

`paired_dataset` streams: `ray.data.range(count)` mapped through one `PairMaker` actor
that holds the decoded clean images (small sets such as Train400: ~13 MB), so crops are
made as the trainer consumes them and the whole set is never materialised.

Steps are `{kind, params, p}`: `kind` names a function of `pipeline.degrade.DEGRADE`;
each param is a value, a `[lo, hi]` range drawn uniformly per pair (integers when both
ends are), `{choice: [...]}` or `{value: X}` for a literal list (e.g. holes' size range);
`p` is the probability the step is applied (default 1). Steps run on the source dtype
(uint8 stays uint8, as degraded files on disk are), then become float32 CHW in [0, 1].

Sources are fsspec URLs or local paths: files, folders (image files found recursively,
sorted), a slice of a folder's sorted list (`/data/Train400[:360]`), scikit-image's
bundled pictures (`skimage:camera`, `skimage:` for a default set) so tests and smoke runs
work on machines without the shared data, or the images of an idx file (`mnist:[:8000]`,
the MNIST test digits under data_root(); `mnist:/path/file.gz[8000:9000]` another file),
decoded once per process and one entry per digit.

Benchmark: `python -m pipeline.degrade.pairs --data <dir> --count 2000` prints crops/s.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from pipeline.datasets import IMAGE_SUFFIXES, MNIST_TEST, data_root, idx_images
from pipeline.degrade import DEGRADE, LABEL_OF, RETURNS_MASK

SKIMAGE = "skimage:"
# Bundled with scikit-image (no download): varied textures, text, faces, objects.
SKIMAGE_DEFAULT = ("camera", "moon", "coins", "astronaut", "coffee", "chelsea", "grass",
                   "gravel", "brick", "page", "text", "rocket", "immunohistochemistry")
MNIST = "mnist:"
PAGES = "pages:"
"""Synthetic printed pages (`pages:[0:40]`: pages 0 to 39, each a function of its number):
documents, whose lines of text statistics read as periodic structure (`text_page`)."""
_SLICE = re.compile(r"^(?P<url>.+?)\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")
_MAX_PIXELS = 256_000_000


def expand(urls: Sequence[str], options: Mapping[str, Any] | None = None) -> list[str]:
    """Sources -> one entry per image: folders listed recursively (sorted), slices applied."""
    from pipeline.io.storage import filesystem

    out: list[str] = []
    for url in urls:
        if url.startswith(SKIMAGE):
            names = url[len(SKIMAGE):].split(",") if url != SKIMAGE else SKIMAGE_DEFAULT
            out.extend(SKIMAGE + n for n in names)
            continue
        if url.startswith(MNIST):
            out.extend(_mnist_entries(url))
            continue
        if url.startswith(PAGES + "#"):
            out.append(url)  # already one page
            continue
        if url.startswith(PAGES):
            match = _SLICE.match(url)
            if not match or not match["stop"]:
                raise ValueError(f"{url}: name the pages as {PAGES}[first:stop]")
            out.extend(f"{PAGES}#{i}" for i in range(int(match["start"] or 0), int(match["stop"])))
            continue
        match = _SLICE.match(url)
        base = match["url"] if match else url
        fs, path = filesystem(base, options)
        if fs.isdir(path):
            found = sorted(p for p in fs.find(path) if p.lower().endswith(IMAGE_SUFFIXES))
            files = [fs.unstrip_protocol(p) if "://" in base else p for p in found]
        elif fs.exists(path):
            files = [base]
        else:
            raise FileNotFoundError(f"no image or folder at {base}")
        files = _sliced(files, match)
        if not files:
            raise FileNotFoundError(f"no image files in {url}")
        out.extend(files)
    return out


def _sliced(items: Sequence, match: re.Match | None) -> Sequence:
    if not match:
        return items
    return items[slice(int(match["start"] or 0), int(match["stop"]) if match["stop"] else None)]


def _mnist_entries(url: str) -> list[str]:
    """`mnist:[FILE][a:b]` -> `mnist:FILE#i` per image (FILE: the MNIST test set under data_root())."""
    if "#" in url:
        return [url]  # already one image
    match = _SLICE.match(url)
    file = (match["url"] if match else url)[len(MNIST):] or str(data_root() / MNIST_TEST)
    ids = _sliced(range(len(idx_images(file))), match)
    if not ids:
        raise FileNotFoundError(f"no images in {url}")
    return [f"{MNIST}{file}#{i}" for i in ids]


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Decoded pixels -> (H, W, channels): alpha dropped, gray via luma, gray repeated to RGB."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] in (2, 4):
        image = image[:, :, :-1]
    if image.shape[2] == channels:
        return np.ascontiguousarray(image)
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    if channels == 3:
        return np.repeat(image, 3, axis=2)
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def _read(url: str, options: Mapping[str, Any] | None) -> np.ndarray:
    if url.startswith(SKIMAGE):
        import skimage.data

        image = getattr(skimage.data, url[len(SKIMAGE):])()
        return image.astype(np.uint8) * 255 if image.dtype == bool else image
    if url.startswith(MNIST):
        file, _, index = url[len(MNIST):].rpartition("#")
        return idx_images(file)[int(index)].copy()
    if url.startswith(PAGES):
        return text_page(int(url.rpartition("#")[2]))
    from pipeline.io.codecs import decode
    from pipeline.io.storage import filesystem

    fs, path = filesystem(url, options)
    with fs.open(path, "rb") as f:
        return decode(f.read(), _MAX_PIXELS).pixels


_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX_SMALL)


def text_page(index: int) -> np.ndarray:
    """Printed page `index` (uint8, gray (H, W) or tinted (H, W, 3)): lines of random words in
    one of OpenCV's fonts, dark ink on paper lit unevenly, as a scanned or photographed page."""
    rng = np.random.default_rng([0x7E47, index])
    h, w = int(rng.integers(300, 800)), int(rng.integers(300, 700))
    font, scale = _FONTS[int(rng.integers(len(_FONTS)))], float(rng.uniform(0.4, 1.1))
    thickness = int(rng.integers(1, 3))
    (_, text_h), _ = cv2.getTextSize("Ag", font, scale, thickness)
    page = np.zeros((h, w), np.uint8)
    margin, y = int(rng.integers(8, 40)), int(rng.integers(8, 40)) + text_h
    while y < h - margin:
        x = margin + (int(rng.integers(10, 40)) if rng.random() < 0.2 else 0)
        line = " ".join("".join(chr(97 + int(c)) for c in rng.integers(0, 26, int(rng.integers(1, 10))))
                        for _ in range(40))
        cv2.putText(page, line, (x, y), font, scale, 255, thickness, cv2.LINE_AA)
        y += int(text_h * rng.uniform(1.5, 2.4)) + (int(text_h * 2) if rng.random() < 0.1 else 0)
    page[:, w - margin :] = 0  # the right margin
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :] * rng.uniform(-0.2, 0.2) + \
        np.linspace(0, 1, h, dtype=np.float32)[:, None] * rng.uniform(-0.2, 0.2)
    paper = np.clip(rng.uniform(0.75, 1.0) + ramp - max(ramp.max(), 0), 0.3, 1.0)
    ink = rng.uniform(0.0, 0.3)
    out = paper + (ink - paper) * (page.astype(np.float32) / 255.0)
    if rng.random() < 0.5:
        out = out[:, :, None] * (1 - rng.uniform(0, 0.12, 3)).astype(np.float32)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def load_clean(urls: Sequence[str], channels: int, options: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Every image under `urls` as (H, W, channels) in its own dtype (uint8/uint16)."""
    return [to_channels(_read(u, options), channels) for u in expand(urls, options)]


def input_of(target: str) -> str:
    """The degraded file of a real pair's clean `target`: same name in the sibling `input/` folder
    (Rain100L's layout: `input/N.png` rainy, `target/N.png` clean)."""
    folder, _, name = target.rpartition("/")
    parent, _, last = folder.rpartition("/")
    if last != "target":
        raise ValueError(f"{target}: a real pair's target must lie in a folder named target/")
    return f"{parent}/input/{name}"


def load_real(targets: Sequence[str], channels: int, options: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Real pairs as (H, W, 2 * channels) arrays: the degraded input's channels, then the clean
    target's, so one crop and one flip/rotation cut both."""
    out = []
    for target in expand(targets, options):
        degraded, clean = (to_channels(_read(u, options), channels) for u in (input_of(target), target))
        if degraded.shape != clean.shape or degraded.dtype != clean.dtype:
            raise ValueError(f"{target}: input {degraded.shape} {degraded.dtype} and target "
                             f"{clean.shape} {clean.dtype} differ")
        out.append(np.concatenate([degraded, clean], axis=2))
    return out


def draw(value: Any, rng: np.random.Generator) -> Any:
    """One concrete parameter value: [lo, hi] -> uniform, {choice: [...]}, {value: X}, else X."""
    if isinstance(value, Mapping):
        if set(value) == {"value"}:
            return value["value"]
        if set(value) == {"choice"}:
            return value["choice"][int(rng.integers(len(value["choice"])))]
        raise ValueError(f"a param mapping must be {{value: X}} or {{choice: [...]}}, got {dict(value)}")
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        lo, hi = value
        if isinstance(lo, int) and isinstance(hi, int):
            return int(rng.integers(lo, hi + 1))
        return float(rng.uniform(lo, hi))
    return value


def check_steps(steps: Sequence[Mapping[str, Any]]) -> None:
    """Fail early (in the driver) on unknown kinds, params or keys rather than inside a Ray
    actor: every step must be a valid recipe step (pipeline.degrade.recipe.Step)."""
    from pipeline.degrade.recipe import Step

    for step in steps:
        Step.model_validate(dict(step))


def degrade(clean: np.ndarray, steps: Sequence[Mapping[str, Any]], rng: np.random.Generator
            ) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray | None]:
    """Apply the steps in order; returns (degraded, applied steps with concrete params, mask)."""
    image, applied, mask = clean, [], None
    for step in steps:
        # Draw everything even for skipped steps so one step's p never shifts the others.
        params = {k: draw(v, rng) for k, v in (step.get("params") or {}).items()}
        step_seed = int(rng.integers(2**31))
        if rng.random() >= float(step.get("p", 1.0)):
            continue
        out = DEGRADE[step["kind"]](image, seed=step_seed, **params)
        if step["kind"] in RETURNS_MASK:
            out, hole = out
            mask = hole if mask is None else (mask | hole)
        image = out
        applied.append({"kind": step["kind"], "label": LABEL_OF[step["kind"]], "params": params})
    return image, applied, mask


def window_of_most(image: np.ndarray, rng: np.random.Generator, most: int | None = None) -> np.ndarray:
    """A random window of 70-100 % of each side (at most `most` px), flipped left-right half of the time."""
    h, w = image.shape[:2]
    ch, cw = (min(max(1, round(n * f)), most or n) for n, f in zip((h, w), rng.uniform(0.7, 1.0, 2)))
    y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    image = image[y : y + ch, x : x + cw]
    return image[:, ::-1] if rng.random() < 0.5 else image


def whole_view(image: np.ndarray, crop: int, rng: np.random.Generator, augment: bool = True) -> np.ndarray:
    """The whole picture squeezed to crop x crop (`imageops.thumbnail`; a random window of 70-100 %
    of each side, flipped half of the time, when `augment`; never rotated: up is up). For models that
    must see a degradation at picture scale, such as haze, whose depth runs over the whole scene."""
    from pipeline.imageops import thumbnail

    if augment:
        image = window_of_most(image, rng)
    return thumbnail(image, crop)


def random_crop(image: np.ndarray, crop: int, rng: np.random.Generator, augment: bool = True) -> np.ndarray:
    """A crop x crop window (reflect-padded first when the image is smaller), randomly
    flipped and rotated by a multiple of 90 degrees when `augment` (not for digits or text,
    whose orientation is part of what the model should learn)."""
    h, w = image.shape[:2]
    if h < crop or w < crop:
        pad = ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0))
        image = np.pad(image, pad, mode="reflect" if min(h, w) > 1 else "edge")
        h, w = image.shape[:2]
    y, x = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    if not augment:
        return np.ascontiguousarray(image[y : y + crop, x : x + crop])
    patch = np.rot90(image[y : y + crop, x : x + crop], int(rng.integers(4)))
    return np.ascontiguousarray(patch[:, ::-1] if rng.random() < 0.5 else patch)


def chw(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8/uint16 -> float32 (C, H, W) in [0, 1]; float values are kept as they are
    (unclipped noise, `gaussian_noise(clip=False)`, may leave [0, 1] on purpose)."""
    from pipeline.imageops import to_float

    if np.issubdtype(image.dtype, np.floating):
        image = image[:, :, None] if image.ndim == 2 else image
        return np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1))
    return np.ascontiguousarray(to_float(image).transpose(2, 0, 1))


def noise_sigma(applied: Sequence[Mapping[str, Any]]) -> float:
    """Total Gaussian noise sigma of the applied steps on the [0, 1] scale (what FFDNet takes)."""
    var = sum(float(s["params"].get("sigma", 25.0)) ** 2 for s in applied if s["kind"] == "gaussian_noise")
    return math.sqrt(var) / 255.0


def make_pair(images: Sequence[np.ndarray], *, crop: int, steps: Sequence[Mapping[str, Any]], seed: int,
              index: int, scale: int = 1, augment: bool = True, real: Sequence[np.ndarray] = (),
              p_real: float = 0.0, view: str = "crop") -> dict[str, Any]:
    """Pair `index`: input (C, crop/scale, crop/scale) and target (C, crop, crop) float32 in
    [0, 1], labels (JSON of the applied steps), sigma (float32, [0, 1] scale) and, when a
    step can make holes, mask (1, h, w) float32 with 1 at holes. The target is a native
    crop x crop window, or with `view="whole"` the whole picture squeezed to that size
    (`whole_view`), degraded there.

    With `real` pairs (`load_real`), a share `p_real` of the pairs is a crop of one of them
    instead (scale 1: the real input must be the target's size); labels then say `real`."""
    rng = np.random.default_rng([seed, index])
    if len(real) and rng.random() < p_real:  # no draw without real pairs: old runs keep their crops
        both = random_crop(real[int(rng.integers(len(real)))], crop, rng, augment)
        half = both.shape[2] // 2
        clean, degraded, applied, mask = both[:, :, half:], both[:, :, :half], [{"kind": "real"}], None
    else:
        picture = images[int(rng.integers(len(images)))]
        clean = whole_view(picture, crop, rng, augment) if view == "whole" else random_crop(picture, crop, rng, augment)
        degraded, applied, mask = degrade(clean, steps, rng)
    if degraded.shape[0] * scale != crop or degraded.shape[1] * scale != crop:
        raise ValueError(f"steps turn a {crop}px crop into {degraded.shape[:2]}, expected scale {scale}")
    pair = {"input": chw(degraded), "target": chw(clean), "labels": json.dumps(applied),
            "sigma": np.float32(noise_sigma(applied))}
    if any(s["kind"] in RETURNS_MASK for s in steps):
        h, w = degraded.shape[:2]
        pair["mask"] = (np.zeros((1, h, w), np.float32) if mask is None
                        else mask[None].astype(np.float32))
    return pair


class PairMaker:
    """Ray Data stage: a batch of ids -> a batch of pairs with their global `index` = start + id.

    Holds the decoded clean images, so it runs as an actor and loads them once.
    """

    def __init__(self, urls: Sequence[str], *, channels: int, crop: int, steps: Sequence[Mapping[str, Any]],
                 seed: int, start: int = 0, scale: int = 1, options: Mapping[str, Any] | None = None,
                 labels: bool = True, augment: bool = True, real: Sequence[str] = (), p_real: float = 0.0,
                 view: str = "crop") -> None:
        self.images = load_clean(urls, channels, options)
        self.kwargs = dict(crop=crop, steps=list(steps), seed=seed, scale=scale, augment=augment,
                           real=load_real(real, channels, options) if real else (), p_real=p_real, view=view)
        self.start, self.labels = start, labels

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        index = self.start + np.asarray(batch["id"], dtype=np.int64)
        pairs = [make_pair(self.images, index=int(i), **self.kwargs) for i in index]
        out = {key: np.stack([p[key] for p in pairs]) for key in pairs[0] if key != "labels"}
        if self.labels:
            out["labels"] = np.array([p["labels"] for p in pairs], dtype=object)
        return {"index": index, **out}


def absolute(urls: Sequence[str]) -> list[str]:
    """Local paths made absolute (actors run in other folders); URLs, skimage: and mnist: kept."""
    from pipeline.io.storage import normalize_url

    return [u if u.startswith((SKIMAGE, MNIST, PAGES)) else normalize_url(u) for u in urls]


def paired_dataset(urls: Sequence[str], *, channels: int, crop: int, steps: Sequence[Mapping[str, Any]],
                   seed: int, start: int, count: int, scale: int = 1, num_cpus: float = 0.25,
                   batch_size: int = 32, options: Mapping[str, Any] | None = None, labels: bool = True,
                   augment: bool = True, real: Sequence[str] = (), p_real: float = 0.0, view: str = "crop"):
    """Pairs start .. start + count - 1 as a streaming `ray.data.Dataset`: `ray.data.range(count)`
    through one PairMaker actor, all with fractional CPUs so they never starve the trainers.
    `real`: targets of real pairs, a share `p_real` of the crops (`make_pair`).

    `labels=False` leaves out the string column (tensors only, for training) inside the actor:
    a `drop_columns` after it would be one more operator asking for a whole CPU, which inside
    Ray Train never fits beside the trainers on a 2-CPU node (a long run hung waiting for it).
    """
    import ray

    # ray.data.range itself, but its read tasks take `num_cpus` instead of a whole CPU: inside
    # Ray Train, Data gets only the CPUs the trainers leave, and a 1-CPU read task then never
    # fits next to the PairMaker actor on a 2-CPU node (the run hangs).
    from ray.data._internal.datasource.range_datasource import RangeDatasource

    check_steps(steps)
    kwargs = dict(channels=channels, crop=crop, steps=list(steps), seed=seed, start=start,
                  scale=scale, options=dict(options or {}), labels=labels, augment=augment,
                  real=absolute(real), p_real=p_real, view=view)
    ids = ray.data.read_datasource(RangeDatasource(n=count, block_format="arrow", column_name="id"),
                                   num_cpus=num_cpus)
    return ids.map_batches(
        PairMaker, fn_constructor_args=(absolute(urls),), fn_constructor_kwargs=kwargs,
        batch_size=batch_size, num_cpus=num_cpus, compute=ray.data.ActorPoolStrategy(size=1))


def crops_per_second(urls: Sequence[str], *, count: int = 2000, channels: int = 1, crop: int = 64,
                     steps: Sequence[Mapping[str, Any]] | None = None, batch_size: int = 32,
                     num_cpus: float = 0.25) -> dict[str, float]:
    """Measured rate of pairs through `iter_torch_batches`: overall (start-up included) and
    steady (timed from the first batch)."""
    steps = steps if steps is not None else [{"kind": "gaussian_noise", "params": {"sigma": [0.0, 75.0]}}]
    ds = paired_dataset(urls, channels=channels, crop=crop, steps=steps, seed=0, start=0, count=count,
                        num_cpus=num_cpus, batch_size=batch_size, labels=False)
    t0 = time.perf_counter()
    first, seen = None, 0
    for batch in ds.iter_torch_batches(batch_size=batch_size):
        seen += len(batch["input"])
        if first is None:
            first, first_rows = time.perf_counter(), seen
    end = time.perf_counter()
    return {"crops": seen, "seconds": end - t0, "crops_per_s": seen / (end - t0),
            "steady_crops_per_s": (seen - first_rows) / max(end - first, 1e-9)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure paired-crop throughput on Ray Data")
    parser.add_argument("--data", nargs="+", default=["skimage:"], help="clean image folders/URLs")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--address", default=None, help="Ray cluster to join (default: start one)")
    args = parser.parse_args(argv)
    from pipeline import raycluster

    raycluster.init(args.address)
    rate = crops_per_second(args.data, count=args.count, channels=args.channels, crop=args.crop,
                            batch_size=args.batch_size)
    print(f"{rate['crops']} crops of {args.crop}px in {rate['seconds']:.1f} s: "
          f"{rate['crops_per_s']:.0f} crops/s overall, {rate['steady_crops_per_s']:.0f} crops/s after the first batch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Labelled classifier crops on Ray Data: domain images -> native-resolution crops, clean or
with one degradation, labelled (domain, degradation).

Crop `index` is a pure function of (seed, index), as pairs are (pipeline.degrade.pairs):
one generator picks the domain (uniformly), a folder of that domain (uniformly, so 150
CamVid frames do not drown 14 dashcam pictures), an image in it, the window, a horizontal
flip, whether the crop stays clean (`p_clean`) and otherwise one step: a degradation label
drawn uniformly among those the steps produce, then one of that label's steps with
`pairs.degrade`. The label is what was applied: `LABEL_OF[kind]`, or `clean` when the step
was skipped by its `p`.

Three views (`DataConf.view`):
- `crop`: crops at the image's native resolution (small images are upscaled to the crop side
  first, never larger ones downscaled): downscaling would erase the noise, JPEG blocks and
  blur the degradation head must see.
- `whole`: the whole picture as the enhance job's classify stage sees it, for a domain head.
  A random window of 70-100 % of each side (all of it without `augment`), area-reduced to at
  most WORK_SIDE px, degraded there, then squeezed to crop x crop (`imageops.thumbnail`).
- `stats`: what the classify stage's statistics detector measures, for a learned decision on
  its statistics (`stats_mlp`): a random window of 70-100 % of each side, at most STATS_SIDE px
  of it at native resolution (noise and blocks survive), clean or degraded by a label's
  recipe from conf/degrade/single.yaml (`recipe.make_labelled`, what the benchmarks test
  with), then `detector.measure` -> the (len(detector.FEATURES),) float32 input. With
  `image_side` (for `stats_cnn`) also `image`: what the detector measured, as the classify
  stage gives it (`detector.decision_image`, uint8 (3, image_side, image_side)).
Degradations run on the image's own channels (a gray X-ray gets gray noise) before the
sample becomes RGB float32 CHW in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from pipeline.degrade import LABEL_OF, pairs
from pipeline.imageops import thumbnail, to_float
from pipeline.labels import DEGRADATIONS, DOMAINS
from pipeline.train.config import DataConf
from pipeline.train.data import VAL_SEED_OFFSET, resolve

Images = dict[str, list[list[np.ndarray]]]
"""Domain -> its folders -> decoded images (H, W, 1 or 3) in their own dtype."""

WORK_SIDE = 384
"""`whole` view: the long side degradations run at (bounds their cost on 4000 px scenes)."""
STATS_SIDE = 768
"""`stats` view: the largest window side (native resolution): bounds the cost per sample."""
IDS_PER_BLOCK = 64
"""Samples per block of the training stream."""


def sources(data: DataConf) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(train, val) URLs per domain; every image in one domain and one split only."""
    train, val = {}, {}
    for domain, conf in data.domains.items():
        train[domain], val[domain] = resolve(conf.clean), resolve(conf.val)
        if train[domain] is None or val[domain] is None:
            raise FileNotFoundError(f"a dataset of domain {domain} {conf.clean + conf.val} is missing "
                                    "(set IMGENHANCE_DATA)")
    seen: dict[str, str] = {}
    for split, per_domain in (("train", train), ("val", val)):
        for domain, urls in per_domain.items():
            for url in pairs.expand(urls):
                where = f"{domain} {split}"
                if seen.setdefault(url, where) != where:
                    raise ValueError(f"{url} is in {seen[url]} and in {where}: splits and domains must be disjoint")
    return train, val


def native(image: np.ndarray) -> np.ndarray:
    """(H, W, C) as stored: alpha dropped, RGB with three equal channels (a gray scan saved
    as RGB) made one channel, so degradations treat it as the gray image it is."""
    image = pairs.to_channels(image, 3)
    if (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 1] == image[:, :, 2]).all():
        return np.ascontiguousarray(image[:, :, :1])
    return image


def at_least(image: np.ndarray, side: int) -> np.ndarray:
    """Upscaled (bicubic) so the short side is at least `side`; larger images unchanged."""
    h, w = image.shape[:2]
    if min(h, w) >= side:
        return image
    f = side / min(h, w)
    size = (max(side, round(w * f)), max(side, round(h * f)))
    out = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    return out[:, :, None] if out.ndim == 2 else out


def load_domains(urls: Mapping[str, Sequence[str]], options: Mapping[str, Any] | None = None) -> Images:
    """Every image under each domain's URLs, decoded, grouped by folder."""
    out: Images = {}
    for domain in (d for d in DOMAINS if d in urls):
        folders: dict[str, list[np.ndarray]] = {}
        for url in pairs.expand(urls[domain], options):
            image = pairs.load_clean([url], 3, options)[0]
            folders.setdefault(url.rpartition("/")[0], []).append(native(image))
        out[domain] = list(folders.values())
    return out


def by_label(steps: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The steps grouped by the degradation label they produce (config order)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for step in steps:
        groups.setdefault(LABEL_OF[step["kind"]], []).append(step)
    return groups


def window(image: np.ndarray, crop: int, rng: np.random.Generator, augment: bool = True) -> np.ndarray:
    """A random crop x crop window, flipped left-right half of the time when `augment` (never
    rotated: scenes are upright at inference, and rain and snow have a direction)."""
    image = at_least(image, crop)
    h, w = image.shape[:2]
    y, x = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    patch = image[y : y + crop, x : x + crop]
    return np.ascontiguousarray(patch[:, ::-1] if augment and rng.random() < 0.5 else patch)


def whole(image: np.ndarray, rng: np.random.Generator, augment: bool = True) -> np.ndarray:
    """The `whole` view before degradation: a random window of 70-100 % of each side,
    flipped half of the time (the whole image without `augment`), its long side area-reduced
    to at most WORK_SIDE."""
    if augment:
        image = pairs.window_of_most(image, rng)
    h, w = image.shape[:2]
    if max(h, w) > WORK_SIDE:
        f = WORK_SIDE / max(h, w)
        image = cv2.resize(np.ascontiguousarray(image), (max(1, round(w * f)), max(1, round(h * f))),
                           interpolation=cv2.INTER_AREA)
        image = image[:, :, None] if image.ndim == 2 else image
    return np.ascontiguousarray(image)


def stats_sample(picture: np.ndarray, rng: np.random.Generator, p_clean: float, augment: bool = True,
                 image_side: int | None = None) -> tuple[np.ndarray, str, list[dict[str, Any]], np.ndarray | None]:
    """The `stats` view: (statistics vector, label, applied steps, the picture input or None)."""
    from pipeline.degrade.recipe import make_labelled
    from pipeline.enhance.detector import decision_image, decision_input, measure

    image = pairs.window_of_most(picture, rng, STATS_SIDE) if augment else picture[:STATS_SIDE, :STATS_SIDE]
    image = to_float(np.ascontiguousarray(image))
    label, applied = "clean", []
    if rng.random() >= p_clean:
        label = DEGRADATIONS[1 + int(rng.integers(len(DEGRADATIONS) - 1))]
        image, applied = make_labelled(image, label, int(rng.integers(2**31)))
        image = to_float(image)
    view = decision_image(image, image_side) if image_side else None
    return decision_input(measure(image)), label, applied, view


def make_sample(images: Images, *, crop: int, steps: Sequence[Mapping[str, Any]], p_clean: float,
                seed: int, index: int, augment: bool = True, view: str = "crop",
                image_side: int | None = None) -> dict[str, Any]:
    """Sample `index`: input (3, crop, crop) float32 in [0, 1] (the `stats` view: the detector's
    statistics vector, and with `image_side` its picture input `image`), domain and degradation (int64
    indices into pipeline.labels DOMAINS / DEGRADATIONS) and the applied step (JSON-able)."""
    rng = np.random.default_rng([seed, index])
    domain = list(images)[int(rng.integers(len(images)))]
    folder = images[domain][int(rng.integers(len(images[domain])))]
    picture = folder[int(rng.integers(len(folder)))]
    if view == "stats":
        stats, label, applied, image = stats_sample(picture, rng, p_clean, augment, image_side)
        out = {"input": stats, "domain": np.int64(DOMAINS.index(domain)),
               "degradation": np.int64(DEGRADATIONS.index(label)), "applied": applied}
        return out if image is None else {**out, "image": image}
    clean = window(picture, crop, rng, augment) if view == "crop" else whole(picture, rng, augment)
    image, applied = clean, []
    if rng.random() >= p_clean:
        groups = by_label(steps)
        label = list(groups)[int(rng.integers(len(groups)))]
        step = groups[label][int(rng.integers(len(groups[label])))]
        image, applied, _ = pairs.degrade(clean, [step], rng)
    if image.shape[:2] != clean.shape[:2]:
        raise ValueError(f"a classifier step must keep the size: {applied} gave {image.shape[:2]}")
    if view == "whole":
        image = thumbnail(image, crop)
    label = applied[0]["label"] if applied else "clean"
    return {"input": pairs.chw(pairs.to_channels(image, 3)), "domain": np.int64(DOMAINS.index(domain)),
            "degradation": np.int64(DEGRADATIONS.index(label)), "applied": applied}


class SampleMaker:
    """Ray Data stage: a batch of ids -> a batch of labelled crops with global `index` = start + id.

    Holds the decoded domain images (~280 MB for conf/train/classifier.yaml), so it runs
    as an actor and loads them once.
    """

    def __init__(self, urls: Mapping[str, Sequence[str]], *, crop: int, steps: Sequence[Mapping[str, Any]],
                 p_clean: float, seed: int, start: int = 0, augment: bool = True, view: str = "crop",
                 image_side: int | None = None, options: Mapping[str, Any] | None = None) -> None:
        self.images = load_domains(urls, options)
        self.kwargs = dict(crop=crop, steps=list(steps), p_clean=p_clean, seed=seed, augment=augment, view=view,
                           image_side=image_side)
        self.start = start

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        index = self.start + np.asarray(batch["id"], dtype=np.int64)
        made = [make_sample(self.images, index=int(i), **self.kwargs) for i in index]
        return {"index": index, **stacked(made)}


def stacked(made: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The samples' arrays stacked: input, domain, degradation and (stats_cnn) image."""
    return {k: np.stack([m[k] for m in made]) for k in ("input", "domain", "degradation", "image") if k in made[0]}


def train_dataset(data: DataConf, urls: Mapping[str, Sequence[str]], *, start_epoch: int, epochs: int):
    """Crops of epochs start_epoch .. epochs - 1 as one streaming dataset: ids through one
    SampleMaker actor, with fractional CPUs (see pairs.paired_dataset for why)."""
    import ray
    from ray.data._internal.datasource.range_datasource import RangeDatasource

    steps = [step.model_dump() for step in data.steps]
    pairs.check_steps(steps)
    count = (epochs - start_epoch) * data.per_epoch
    # Blocks of IDS_PER_BLOCK ids, so samples reach the trainers a block at a time. Without it
    # the first epoch of a `stats` run (samples of a few dozen numbers) had not arrived after 12 minutes;
    # with it an epoch of 1,920 samples took 50 s.
    ids = ray.data.read_datasource(RangeDatasource(n=count, block_format="arrow", column_name="id"),
                                   num_cpus=data.num_cpus, override_num_blocks=max(1, -(-count // IDS_PER_BLOCK)))
    kwargs = dict(crop=data.crop, steps=steps, p_clean=data.p_clean, seed=data.seed,
                  start=start_epoch * data.per_epoch, augment=data.augment, view=data.view,
                  image_side=data.image_side)
    absolute = {domain: pairs.absolute(u) for domain, u in urls.items()}
    return ids.map_batches(SampleMaker, fn_constructor_args=(absolute,), fn_constructor_kwargs=kwargs,
                           batch_size=32, num_cpus=data.num_cpus, compute=ray.data.ActorPoolStrategy(size=1))


def validation_set(data: Mapping[str, Any], val: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """The fixed validation crops (same every epoch and every resume) as stacked arrays.

    `data` is DataConf.model_dump() (workers get plain dicts).
    """
    images = load_domains({d: pairs.absolute(u) for d, u in val.items()})
    made = [make_sample(images, crop=data["crop"], steps=data["steps"], p_clean=data["p_clean"],
                        augment=data["augment"], view=data["view"], image_side=data["image_side"],
                        seed=data["seed"] + VAL_SEED_OFFSET, index=i)
            for i in range(data["val_count"])]
    return stacked(made)

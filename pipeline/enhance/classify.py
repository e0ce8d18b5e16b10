"""Classify stage: domain and degradation of every image, with scores and measurements.

The statistics-based detector (`pipeline.enhance.detector`) measures every image; its
measurements travel on as `detector_stats`, the enhancers' hints. The degradation is decided
on them by the learned decision (`classify.degradation_model`: a `stats_cnn`, trained by
conf/train/degradation_cnn.yaml, also sees the picture (`detector.decision_image`); a
`stats_mlp`, conf/train/degradation_classifier.yaml, the statistics alone; `degradation_score`
and `detector_scores` are then its probabilities) or, without one, by the detector's
hand-set rules (their scores). The domain comes from the
learned whole-image classifier (`classify.domain_model`, trained by
conf/train/domain_classifier.yaml) on a small squeezed copy of the picture
(`imageops.thumbnail`), never the full image. Below `classify.domain_min_score` (its
softmax probability) and without a domain model the domain is 'unknown': the model
abstains rather than guesses; `domain_score` keeps the probability either way.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from pipeline.enhance.detector import FEATURES, Detection, decision_image, decision_input, detect, downscaled
from pipeline.enhance.rows import map_rows, pixels_of
from pipeline.imageops import split_alpha, thumbnail, to_float
from pipeline.labels import DEGRADATIONS, DOMAINS, UNKNOWN_DOMAIN


def classify_batch(table: pa.Table, max_side: int, domains: "DomainModel | None" = None,
                   degradations: "DegradationModel | None" = None) -> pa.Table:
    def one(row: dict) -> None:
        colour, _ = split_alpha(pixels_of(row))
        image = to_float(colour)
        detection = detect(image, max_side=max_side)
        domain, score = domains.predict(image) if domains else (UNKNOWN_DOMAIN, None)
        if score is not None and score < domains.min_score:
            domain = UNKNOWN_DOMAIN
        label, scores, _ = decide(detection, degradations, image, max_side)
        row.update(
            domain=domain,
            domain_score=score,
            degradation=label,
            degradation_score=float(scores[label]),
            detector_scores=json.dumps({k: round(float(v), 4) for k, v in scores.items()}),
            detector_stats=json.dumps({k: float(v) for k, v in detection.stats.items()}),
        )

    return map_rows(table, one, "classify", timing="t_classify_ms")


def decide(detection: Detection, degradations: "DegradationModel | None", image: np.ndarray | None = None,
           max_side: int = 512) -> tuple[str, dict[str, float], str]:
    """(label, score of every label, who decided): the learned decision's, or the detector's
    rules' without one or for an image outside what it has seen. `image` (float (H, W, C),
    what the detector measured with `max_side`) is needed by a decision that looks at pixels."""
    scores = degradations.predict(detection.stats, detection.scores, image, max_side) if degradations else None
    if scores is None:
        return detection.degradation, detection.scores, "rules"
    return max(scores, key=scores.get), scores, "learned"


VIEW_WORK_SIDE = 384
"""Multi-view voting: windows are cut from the picture area-reduced to at most this side (as
the training's `whole` view works at classify_data.WORK_SIDE)."""
VIEW_WINDOW = 0.85
"""Multi-view voting: a window's share of each side."""


def domain_views(image: np.ndarray, side: int, count: int) -> np.ndarray:
    """`count` (1-6) squeezed copies (count, side, side, C): the whole picture, its mirror
    image, then windows of 85 % of each side at the four corners. Training saw windows of
    70-100 % of each side, mirrored half of the time, so every view is one it was trained on."""
    views = [thumbnail(image, side)]
    if count > 1:
        views.append(views[0][:, ::-1])
    if count > 2:
        small = downscaled(image, VIEW_WORK_SIDE)
        h, w = small.shape[:2]
        wh, ww = max(1, round(h * VIEW_WINDOW)), max(1, round(w * VIEW_WINDOW))
        for top, left in ((0, 0), (0, w - ww), (h - wh, 0), (h - wh, w - ww))[: count - 2]:
            views.append(thumbnail(small[top : top + wh, left : left + ww], side))
    return np.stack(views)


class DomainModel:
    """A whole-image domain classifier (a 4-way `resnet_single` of the zoo): picture ->
    thumbnail of `side` x `side` -> (domain, softmax probability). The classify stage calls a
    domain below `min_score` 'unknown'. With `views` > 1 it averages the probabilities of
    several views of the picture (`domain_views`)."""

    def __init__(self, ref: str, side: int = 128, threads: int = 1, tracking_uri: str | None = None,
                 min_score: float = 0.0, views: int = 1) -> None:
        import torch

        from pipeline.enhance.learned import resolve
        from pipeline.models.weights import load_weights

        torch.set_num_threads(max(1, threads))
        path, self.ref = resolve(ref, tracking_uri)
        self.net = load_weights(path).eval()
        if not 1 <= views <= 6:
            raise ValueError(f"domain views: 1 to 6, got {views}")
        self.side, self.min_score, self.views = side, min_score, views
        classes = self.net(torch.zeros(1, 3, side, side)).shape[-1]
        if classes != len(DOMAINS):
            raise ValueError(f"{ref}: a domain model has {len(DOMAINS)} outputs ({', '.join(DOMAINS)}), this one {classes}")

    def predict(self, image: np.ndarray) -> tuple[str, float]:
        """Float (H, W, C) in [0, 1] -> (domain, probability)."""
        import torch

        small = domain_views(image, self.side, self.views)
        small = np.repeat(small, 3, axis=3) if small.shape[3] == 1 else small
        with torch.inference_mode():
            p = torch.softmax(self.net(torch.from_numpy(small.transpose(0, 3, 1, 2).copy())), dim=1).mean(dim=0)
        best = int(p.argmax())
        return DOMAINS[best], round(float(p[best]), 4)


class DegradationModel:
    """The learned degradation decision (a `stats_mlp` or `stats_cnn` of the zoo): the
    detector's statistics (and for `stats_cnn` the picture, `detector.decision_image`) -> a
    probability for every label of pipeline.labels.DEGRADATIONS, or None for an image
    whose statistics lie more than `max_z` standard deviations (of the training data) from the
    mean: an MLP does not extrapolate, the rules' thresholds do."""

    def __init__(self, ref: str, threads: int = 1, tracking_uri: str | None = None, max_z: float = 10.0) -> None:
        import torch

        from pipeline.enhance.learned import resolve
        from pipeline.models.weights import load_weights

        torch.set_num_threads(max(1, threads))
        path, self.ref = resolve(ref, tracking_uri)
        self.net, self.max_z = load_weights(path).eval(), max_z
        self.side = getattr(self.net, "side", None)  # stats_cnn: it also looks at the picture
        example = (torch.zeros(1, len(FEATURES)),) + ((torch.zeros(1, 3, self.side, self.side),) if self.side else ())
        try:
            with torch.inference_mode():
                classes = self.net(*example).shape[-1]
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ValueError(f"{ref}: not a model of the detector's {len(FEATURES)} features "
                             f"(a stats_mlp or stats_cnn): {exc}") from None
        if classes != len(DEGRADATIONS):
            raise ValueError(f"{ref}: a degradation model has {len(DEGRADATIONS)} outputs, this one {classes}")

    def predict(self, stats: dict[str, float], rule_scores: dict[str, float] | None = None,
                image: np.ndarray | None = None, max_side: int = 512) -> dict[str, float] | None:
        """`rule_scores`: the detector's scores of these statistics, when it has them (else
        recomputed); `image`: the float picture they were measured on (with `max_side`),
        which a `stats_cnn` needs."""
        import torch

        if self.side and image is None:
            raise ValueError(f"{self.ref} decides on the picture too: pass the image")
        x = torch.from_numpy(decision_input(stats, rule_scores))[None]
        with torch.inference_mode():
            if float(self.net.distance(x)[0]) > self.max_z:
                return None  # before the picture is cut: the rules decide
            inputs = (x, torch.from_numpy(decision_image(image, self.side, max_side))[None]) if self.side else (x,)
            p = torch.softmax(self.net(*inputs), dim=1)[0]
        return {label: float(p[i]) for i, label in enumerate(DEGRADATIONS)}


class Classify:
    """The classify stage with its models (the domain model, the learned degradation decision),
    loaded once: a Ray Data actor in the run, a plain object in `flow.preview`."""

    def __init__(self, max_side: int, domain_model: str | None = None, side: int = 128, threads: int = 1,
                 min_score: float = 0.0, tracking_uri: str | None = None,
                 degradation_model: str | None = None, max_z: float = 10.0, views: int = 1) -> None:
        self.max_side = max_side
        self.domains = (DomainModel(domain_model, side, threads, tracking_uri, min_score=min_score, views=views)
                        if domain_model else None)
        self.degradations = (DegradationModel(degradation_model, threads, tracking_uri, max_z)
                             if degradation_model else None)

    def __call__(self, table: pa.Table) -> pa.Table:
        return classify_batch(table, self.max_side, self.domains, self.degradations)

"""Suite `realism`: does our synthetic weather look like the real thing, by the numbers?

- rain: Rain100L pairs (rainy, clean). The rain residual (rainy - clean luma) of the real
  pairs is compared with the residual of our `rain` recipe applied to the same clean targets:
  coverage, intensity distribution, orientation and its spread, streak length and width
  (connected components, and the residual's autocorrelation, which merging streaks do not
  bias), radial spectrum and residual colour. Distances: Wasserstein-1 and KS between the
  pooled intensity distributions, histogram intersection of the pooled orientations.
  Then detector transfer: a logistic regression on residual-free statistics of the image
  itself, fitted on our rain vs clean (Train400 and traffic images, never Rain100L), tested
  on Rain100L rainy vs clean.
- haze: O-HAZE pairs; dark channel, airlight, the transmission implied by the pair, its
  relation to image height, contrast and saturation loss; our `haze` recipe on the same targets.
- snow: real snowy photos (no ground truth) vs our `snow` recipe on clean traffic images
  (and those images clean, for the direction of the shift): bright-blob density and size,
  black level, contrast, dark channel and saturation.

Rows are long-form: (weather, set, image, stat, value); `summarize` pivots them.
Rain100L is itself synthetic (Photoshop-style streaks), the standard reference for light rain;
"real" below means "the reference data", not necessarily photographs.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage, stats
from skimage import measure

from pipeline import datasets
from pipeline.bench.common import load_image
from pipeline.degrade.common import line_kernel
from pipeline.degrade.recipe import SINGLE_RECIPES, make_labelled
from pipeline.enhance.classical_restore import atmospheric_light, dark_channel
from pipeline.imageops import luminance, split_alpha, to_float

STREAK = 0.04  # luma residual counted as rain: ~10/255, above codec noise, below faint streaks
ORIENT_BINS = np.linspace(-90.0, 90.0, 19)  # 10-degree bins of lean from vertical
SPECTRUM_BANDS = (0.0, 1 / 16, 1 / 4, 0.71)  # cycles/px: coarse, mid, fine (to the corner)
_LINE_ANGLES = np.arange(0.0, 180.0, 7.5)  # line-filter directions of the detector features
_LINES = [line_kernel(15, a) for a in _LINE_ANGLES]


# ---------------------------------------------------------------- image helpers


def load_rgb(path: Path, max_side: int | None = None) -> np.ndarray:
    """A file as float32 RGB (H, W, 3) in [0, 1] (gray repeated), optionally shrunk."""
    colour, _ = split_alpha(load_image(path))
    x = to_float(colour)
    x = np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x
    h, w = x.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        x = cv2.resize(x, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return x


def _luma(x: np.ndarray) -> np.ndarray:
    return luminance(x).astype(np.float32)


def draw_seed(seed: int, *parts: object) -> int:
    return zlib.crc32(":".join(map(str, (seed, *parts))).encode())


def synthetic(clean: np.ndarray, label: str, seed: int, recipes: str | Path) -> tuple[np.ndarray, str]:
    """(our degradation of `clean` for `label`, the kind that ran)."""
    out, steps = make_labelled(clean, label, seed, recipes)
    return out, ",".join(s["kind"] for s in steps)


# ---------------------------------------------------------------- rain statistics


def lean_deg(theta_image: np.ndarray | float) -> np.ndarray | float:
    """Streak direction (radians, image axes: x right, y down) -> lean from vertical in
    degrees, positive when the top leans left: the `angle_deg` convention of rain_streaks."""
    deg = np.degrees(-np.asarray(theta_image)) - 90.0  # y up, then from vertical
    return (deg + 90.0) % 180.0 - 90.0


def _tensor(res: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structure tensor terms, Gaussian derivatives (Sobel's grid bias pulls thin lines
    toward the axes), summed locally over `sigma` px (0: per pixel)."""
    gx = ndimage.gaussian_filter(res, 1.0, order=(0, 1), mode="nearest")
    gy = ndimage.gaussian_filter(res, 1.0, order=(1, 0), mode="nearest")
    smooth = (lambda a: cv2.GaussianBlur(a, (0, 0), sigma)) if sigma > 0 else (lambda a: a)
    return smooth(gx * gx), smooth(gy * gy), smooth(gx * gy)


def orientation(res: np.ndarray) -> tuple[float, float]:
    """(dominant lean in degrees, coherence 0-1) from the summed structure tensor.

    Streaks are perpendicular to the dominant gradient; coherence 1 means one direction only.
    """
    jxx, jyy, jxy = (float(a.sum()) for a in _tensor(np.maximum(res, 0), 0))
    grad = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    coherence = np.hypot(jxx - jyy, 2 * jxy) / max(jxx + jyy, 1e-12)
    return float(lean_deg(grad + np.pi / 2)), float(coherence)


def orientation_field(res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (lean in degrees, weight) from a locally smoothed tensor, where it is strong."""
    jxx, jyy, jxy = _tensor(np.maximum(res, 0), 2.0)
    weight = np.hypot(jxx - jyy, 2 * jxy)  # anisotropic energy: flat or isotropic areas count 0
    lean = lean_deg(0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2)
    keep = weight > 0.05 * weight.max() if weight.max() > 0 else weight > 0
    return lean[keep], weight[keep]


def orientation_spread(lean: np.ndarray, weight: np.ndarray) -> float:
    """Circular standard deviation (degrees) of axial angles, weighted."""
    z = np.sum(weight * np.exp(2j * np.radians(lean))) / max(weight.sum(), 1e-12)
    r = float(np.clip(abs(z), 1e-9, 1.0))
    return float(np.degrees(0.5 * np.sqrt(-2.0 * np.log(r))))


def coverage(res: np.ndarray, threshold: float = STREAK) -> float:
    return float((res > threshold).mean())


def components(res: np.ndarray, threshold: float = STREAK) -> dict[str, float]:
    """Connected streak pieces: count per megapixel, median length and width (px)."""
    props = [p for p in measure.regionprops(measure.label(res > threshold, connectivity=2)) if p.area >= 4]
    if not props:
        return {"pieces_per_mp": 0.0, "piece_length": 0.0, "piece_width": 0.0}
    return {
        "pieces_per_mp": len(props) / res.size * 1e6,
        "piece_length": float(np.median([p.axis_major_length for p in props])),
        "piece_width": float(np.median([p.axis_minor_length for p in props])),
    }


def _acf(x: np.ndarray) -> np.ndarray:
    """Autocorrelation normalised to 1 at zero lag, zero lag at the centre (h, w)."""
    h, w = x.shape
    f = np.fft.rfft2(x - x.mean(), s=(2 * h, 2 * w))
    acf = np.fft.fftshift(np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w)))
    return acf / max(acf[h, w], 1e-12)


def _half_width(acf: np.ndarray, direction: tuple[float, float], reach: int) -> float:
    """Twice the distance at which the autocorrelation first falls to 0.5 along `direction`."""
    h, w = acf.shape[0] // 2, acf.shape[1] // 2
    d = np.arange(0, reach + 0.25, 0.25)
    profile = ndimage.map_coordinates(acf, [h + d * direction[1], w + d * direction[0]], order=1)
    below = np.nonzero(profile < 0.5)[0]
    return 2.0 * float(d[below[0]] if below.size else reach)


def acf_shape(res: np.ndarray, lean: float, reach: int = 120) -> tuple[float, float]:
    """(length, width) in px from the residual's autocorrelation along and across the streak
    direction (twice the half-maximum distance: a segment of length L gives L).

    Unlike connected components this is not biased by streaks that touch. Along the
    streak the residual is smoothed by 1 px first, so that sub-pixel offsets of thin
    slanted lines do not cut the correlation short.
    """
    x = np.maximum(res, 0)
    t = np.radians(lean + 90.0)  # back to image axes: direction (cos t, -sin t)
    length = _half_width(_acf(cv2.GaussianBlur(x, (0, 0), 1.0)), (np.cos(t), -np.sin(t)), reach)
    return length, _half_width(_acf(x), (np.sin(t), np.cos(t)), reach)


def spectrum_bands(res: np.ndarray) -> list[float]:
    """Share of the residual's power in coarse / mid / fine radial frequency bands."""
    x = res - res.mean()
    window = np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    power = np.abs(np.fft.fft2(x * window)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(x.shape[0]), np.fft.fftfreq(x.shape[1]), indexing="ij")
    radius = np.hypot(fx, fy)
    total = max(power.sum(), 1e-12)
    return [float(power[(radius >= lo) & (radius < hi)].sum() / total) for lo, hi in zip(SPECTRUM_BANDS, SPECTRUM_BANDS[1:])]


def residual_chroma(rainy: np.ndarray, clean: np.ndarray, threshold: float = STREAK) -> float:
    """How coloured the streaks are: mean (max - min) / mean over RGB of the residual on
    streak pixels. White additive rain gives ~0; a screen blend tints it by the background."""
    res = rainy - clean
    mask = _luma(res) > threshold
    if not mask.any():
        return 0.0
    r = res[mask]
    return float(np.mean((r.max(axis=1) - r.min(axis=1)) / np.maximum(r.mean(axis=1), 1e-3)))


def rain_stats(rainy: np.ndarray, clean: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Scalar statistics of one pair, and its streak intensities and orientation field."""
    res = _luma(rainy) - _luma(clean)
    values = res[res > STREAK]
    lean, coherence = orientation(res)
    field_lean, field_weight = orientation_field(res)
    length, width = acf_shape(res, lean)
    bands = spectrum_bands(res)
    row = {
        "coverage": coverage(res), "intensity_mean": float(values.mean()) if values.size else 0.0,
        "intensity_p50": float(np.percentile(values, 50)) if values.size else 0.0,
        "intensity_p90": float(np.percentile(values, 90)) if values.size else 0.0,
        "lean_deg": lean, "coherence": coherence, "spread_deg": orientation_spread(field_lean, field_weight),
        "acf_length": length, "acf_width": width, **components(res),
        "power_coarse": bands[0], "power_mid": bands[1], "power_fine": bands[2],
        "chroma": residual_chroma(rainy, clean),
    }
    return row, values, np.histogram(field_lean, ORIENT_BINS, weights=field_weight)[0]


def _row(weather: str, group: str, image: str, stat: str, value: float) -> dict:
    return {"weather": weather, "set": group, "image": image, "stat": stat, "value": float(value)}


def distances(weather: str, values: dict[str, list], hists: dict[str, list], seed: int) -> list[dict]:
    """Pooled real vs synthetic: intensity distributions and orientation histograms."""
    rng = np.random.default_rng(seed)
    pooled = {k: np.concatenate(v) for k, v in values.items()}
    a, b = (rng.choice(p, min(len(p), 200_000), replace=False) for p in (pooled["real"], pooled["synthetic"]))
    h = {k: np.sum(v, axis=0) / max(np.sum(v), 1e-12) for k, v in hists.items()}
    return [
        _row(weather, "distance", "*", "wasserstein_intensity", stats.wasserstein_distance(a, b)),
        _row(weather, "distance", "*", "ks_intensity", stats.ks_2samp(a, b).statistic),
        _row(weather, "distance", "*", "orientation_intersection", np.minimum(h["real"], h["synthetic"]).sum()),
    ]


def pairs(name: str) -> list[tuple[str, Path, Path]]:
    """(stem, input, target) of a paired dataset with `input/` and `target/` folders."""
    folder = datasets.dataset(name)
    return [(p.stem, p, folder / "target" / p.name) for p in sorted((folder / "input").iterdir(), key=lambda p: p.stem)
            if (folder / "target" / p.name).is_file()]


def rain_rows(conf: dict, seed: int, recipes: str | Path) -> list[dict]:
    rows, values, hists = [], {"real": [], "synthetic": []}, {"real": [], "synthetic": []}
    for stem, rainy_path, clean_path in pairs(conf.get("rain_pairs", "rain100L_streaks")):
        clean = load_rgb(clean_path)
        synth, _ = synthetic(clean, "rain", draw_seed(seed, "rain", stem), recipes)
        for group, rainy in (("real", load_rgb(rainy_path)), ("synthetic", synth)):
            scalars, vals, hist = rain_stats(rainy, clean)
            rows += [_row("rain", group, stem, k, v) for k, v in scalars.items()]
            values[group].append(vals)
            hists[group].append(hist)
    return rows + distances("rain", values, hists, seed)


# ---------------------------------------------------------------- detector transfer


def rain_features(image: np.ndarray) -> np.ndarray:
    """Residual-free evidence of rain in one image: thin bright lines sharing one direction.

    On the white top-hat (what an opening wider than a streak removes): its mean, share
    above 0.05, kurtosis (sparse bright lines are heavy-tailed) and tensor coherence; the
    coherence of the fine detail; and the energy of the top-hat filtered by 15 px line
    kernels, strongest near-vertical direction over the median direction and over the
    strongest near-horizontal one (rain falls within 40 degrees of vertical).
    """
    y = _luma(image)
    hat = cv2.morphologyEx(y, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    fine = np.abs(y - cv2.GaussianBlur(y, (0, 0), 2.0))
    energy = np.array([np.mean(cv2.filter2D(hat, -1, k) ** 2) for k in _LINES])
    near_vertical = np.abs(_LINE_ANGLES - 90.0) <= 40.0
    peak = energy[near_vertical].max()
    return np.array([
        hat.mean(), (hat > 0.05).mean(), float(stats.kurtosis(hat.ravel())), orientation(hat)[1],
        orientation(fine)[1], peak / max(np.median(energy), 1e-12), peak / max(energy[~near_vertical].max(), 1e-12),
    ], np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 2000, lr: float = 0.5):
    """Standardised features, L2-regularised logistic regression by gradient descent."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * w)
        b -= lr * float(np.mean(p - y))
    return lambda q: 1.0 / (1.0 + np.exp(-(((q - mu) / sd) @ w + b)))


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    pos, neg = score[y == 1], score[y == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def _clean_images(conf: dict) -> list[tuple[str, Path]]:
    """Clean training images: every `stride`-th file of each folder (never Rain100L)."""
    out = []
    for folder, stride in conf.get("detector_clean", {"Train400": 4, "traffic_dashcam": 2, "traffic_more": 4}).items():
        out += [(f"{folder}/{p.name}", p) for p in datasets.images(folder)[::stride]]
    return out


def _training_set(conf: dict, seed: int, recipes: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Features of every clean training image and of our rain on it: (x, y), pairs adjacent."""
    x = []
    for name, path in _clean_images(conf):
        clean = load_rgb(path, conf.get("detector_max_side", 480))
        rainy, _ = synthetic(clean, "rain", draw_seed(seed, "detector", name), recipes)
        x += [rain_features(clean), rain_features(rainy)]
    return np.array(x), np.tile([0, 1], len(x) // 2)


def _scores(name: str, score: np.ndarray, y: np.ndarray) -> list[dict]:
    return [
        _row("rain", "detector", "*", f"{name}_accuracy", np.mean((score > 0.5) == y)),
        _row("rain", "detector", "*", f"{name}_auc", auc(score, y)),
        _row("rain", "detector", "*", f"{name}_recall", np.mean(score[y == 1] > 0.5)),
        _row("rain", "detector", "*", f"{name}_clean_kept", np.mean(score[y == 0] <= 0.5)),
    ]


def detector_rows(conf: dict, seed: int, recipes: str | Path) -> list[dict]:
    """Fit on our rain vs clean; score a held-out quarter of those images, then Rain100L."""
    x, y = _training_set(conf, seed, recipes)
    held = np.zeros(len(y) // 2, bool)
    held[np.random.default_rng(seed).permutation(len(held))[: len(held) // 4]] = True
    held = np.repeat(held, 2)  # both versions of a held-out image stay out of the fit
    rain_pairs = pairs(conf.get("rain_pairs", "rain100L_streaks"))
    xt = np.array([rain_features(load_rgb(p)) for _, rainy, clean in rain_pairs for p in (clean, rainy)])
    yt = np.tile([0, 1], len(rain_pairs))
    return [
        _row("rain", "detector", "*", "train_images", len(y)),
        *_scores("synthetic_heldout", fit_logistic(x[~held], y[~held])(x[held]), y[held]),
        *_scores("rain100L", fit_logistic(x, y)(xt), yt),
    ]


# ---------------------------------------------------------------- haze


def _saturation(x: np.ndarray) -> float:
    return float(cv2.cvtColor(np.ascontiguousarray(x, np.float32), cv2.COLOR_RGB2HSV)[..., 1].mean())


def fitted_airlight(hazy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, I = t J + A (1 - t) fitted globally by least squares: (t, A) per channel."""
    t, a = np.zeros(3), np.zeros(3)
    for c in range(3):
        slope, intercept = np.polyfit(clean[..., c].ravel(), hazy[..., c].ravel(), 1)
        t[c], a[c] = slope, intercept / max(1.0 - slope, 1e-3)
    return t, a


def local_transmission(hazy: np.ndarray, clean: np.ndarray, airlight: float, window: int = 31) -> np.ndarray:
    """Transmission implied by the pair in each window: least squares of (A - I) = t (A - J)
    on luma over `window` px, so noise and texture average out."""
    d_hazy, d_clean = airlight - _luma(hazy), airlight - _luma(clean)
    num = cv2.blur(d_hazy * d_clean, (window, window))
    den = cv2.blur(d_clean * d_clean, (window, window))
    return np.clip(num / np.maximum(den, 1e-4), 0.0, 1.0)


def haze_stats(hazy: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    dark = dark_channel(hazy, 15)
    dcp_airlight = atmospheric_light(hazy, dark, 0.001)
    t_global, airlight = fitted_airlight(hazy, clean)
    t = local_transmission(hazy, clean, float(airlight @ np.array([0.299, 0.587, 0.114])))
    rows = np.broadcast_to(np.arange(t.shape[0], dtype=np.float32)[:, None], t.shape)
    return {
        "dark_channel": float(dark.mean()), "dark_gain": float(dark.mean() - dark_channel(clean, 15).mean()),
        "airlight_dcp": float(dcp_airlight.mean()), "airlight_fit": float(airlight.mean()),
        "airlight_blue_minus_red": float(airlight[2] - airlight[0]), "t_global": float(t_global.mean()),
        "t_p10": float(np.percentile(t, 10)), "t_p50": float(np.percentile(t, 50)), "t_p90": float(np.percentile(t, 90)),
        # + when haze thins toward the bottom of the frame (nearer ground), as depth_proxy assumes
        "t_row_corr": float(np.corrcoef(t.ravel(), rows.ravel())[0, 1]),
        "contrast_ratio": float(_luma(hazy).std() / max(_luma(clean).std(), 1e-6)),
        "saturation_change": _saturation(hazy) - _saturation(clean),
    }


def haze_rows(conf: dict, seed: int, recipes: str | Path) -> list[dict]:
    """Real O-HAZE pairs, and `draws` of our haze recipe on each clean target."""
    rows, side = [], conf.get("haze_max_side", 640)
    for stem, hazy_path, clean_path in pairs(conf.get("haze_pairs", "haze_ohaze")):
        clean = load_rgb(clean_path, side)
        rows += [_row("haze", "real", stem, k, v) for k, v in haze_stats(load_rgb(hazy_path, side), clean).items()]
        for draw in range(conf.get("haze_draws", 8)):
            synth, kind = synthetic(clean, "haze", draw_seed(seed, "haze", stem, draw), recipes)
            rows += [_row("haze", f"synthetic:{kind}", f"{stem}#{draw}", k, v) for k, v in haze_stats(synth, clean).items()]
    return rows


# ---------------------------------------------------------------- snow


def blobs(image: np.ndarray, size: int = 11, threshold: float = 0.06) -> dict[str, float]:
    """Bright blobs narrower than `size` px standing `threshold` above their surround (white
    top-hat), where falling flakes show: count per megapixel, area median/p90, mean contrast."""
    hat = cv2.morphologyEx(_luma(image), cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    labels = measure.label(hat > threshold, connectivity=2)
    props = [p for p in measure.regionprops(labels, intensity_image=hat) if p.area >= 2]
    area = np.array([p.area for p in props], np.float64)
    return {
        "blobs_per_mp": len(props) / hat.size * 1e6,
        "blob_area_p50": float(np.median(area)) if area.size else 0.0,
        "blob_area_p90": float(np.percentile(area, 90)) if area.size else 0.0,
        "blob_contrast": float(np.mean([p.intensity_max for p in props])) if props else 0.0,
        "blob_cover": float((hat > threshold).mean()),
    }


def snow_stats(image: np.ndarray) -> dict[str, float]:
    """No-reference statistics of a (possibly) snowy photo: flakes, then the veil."""
    y = _luma(image)
    return {
        **blobs(image), "luma_p1": float(np.percentile(y, 1)), "luma_mean": float(y.mean()),
        "contrast": float(y.std()), "dark_channel": float(dark_channel(image, 15).mean()),
        "saturation": _saturation(image),
    }


def snow_rows(conf: dict, seed: int, recipes: str | Path) -> list[dict]:
    """Real snowy photos vs clean traffic images with our snow (and without, as a baseline)."""
    side, rows = conf.get("snow_max_side", 640), []
    for path in datasets.images(conf.get("snow_real", "snow_unpaired")):
        rows += [_row("snow", "real", path.name, k, v) for k, v in snow_stats(load_rgb(path, side)).items()]
    clean_sets = conf.get("snow_clean", {"traffic_dashcam": 8, "traffic_more": 8})
    for folder, stride in clean_sets.items():
        for path in datasets.images(folder)[::stride]:
            clean = load_rgb(path, side)
            snowy, _ = synthetic(clean, "snow", draw_seed(seed, "snow", path.name), recipes)
            rows += [_row("snow", "clean", path.name, k, v) for k, v in snow_stats(clean).items()]
            rows += [_row("snow", "synthetic", path.name, k, v) for k, v in snow_stats(snowy).items()]
    return rows


# ---------------------------------------------------------------- suite


PARTS = {"rain": (rain_rows, detector_rows), "haze": (haze_rows,), "snow": (snow_rows,)}


def run(conf: dict, seed: int) -> list[dict]:
    """Every part in `conf["weather"]` (default all) whose data is present.

    `conf["recipes"]` (default conf/degrade/single.yaml) names the recipe file under test,
    so two recipe files can be compared; a missing dataset skips its part only.
    """
    recipes = Path(conf.get("recipes", SINGLE_RECIPES))
    recipes = recipes if recipes.is_absolute() else datasets.REPO_ROOT / recipes
    rows, missing = [], []
    for part in conf.get("weather", list(PARTS)):
        try:
            for fn in PARTS[part]:
                rows += fn(conf, seed, recipes)
        except FileNotFoundError as exc:
            missing.append(f"{part}: {exc}")
    if not rows:
        raise FileNotFoundError("; ".join(missing) or "no weather part selected")
    return rows


def _cell(values) -> str:
    v = np.asarray(values, np.float64)
    if v.size == 1:
        return f"{v[0]:.3g}"
    return f"{np.median(v):.3g} [{np.percentile(v, 10):.3g}, {np.percentile(v, 90):.3g}]"


def _table(df, weather: str, sets: list[tuple[str, str]]) -> list[str]:
    """One row per statistic, one column per set: median [p10, p90] over images."""
    part = df[df["weather"] == weather]
    present = [(key, title) for key, title in sets if (part["set"] == key).any()]
    lines = ["| statistic | " + " | ".join(t for _, t in present) + " |", "|---" * (len(present) + 1) + "|"]
    for stat in dict.fromkeys(part[part["set"] == present[0][0]]["stat"]):
        cells = [_cell(part[(part["set"] == key) & (part["stat"] == stat)]["value"]) for key, _ in present]
        lines.append(f"| {stat} | " + " | ".join(cells) + " |")
    return lines


def _scalars(df, weather: str, group: str) -> str:
    part = df[(df["weather"] == weather) & (df["set"] == group)]
    return ", ".join(f"{r.stat} {r.value:.3g}" for r in part.itertuples())


def summarize(table) -> str:
    """Markdown: per weather, the reference data beside ours (median [p10, p90] over images)."""
    df = table.to_pandas()
    out = []
    if (df["weather"] == "rain").any():
        out += ["**Rain**: residual (rainy - clean luma) of Rain100L vs our `rain` recipe on the same clean targets. "
                f"Streak pixels: residual > {STREAK}; lengths/widths in px; lean in degrees from vertical.", ""]
        out += _table(df, "rain", [("real", "Rain100L"), ("synthetic", "ours")])
        out += ["", f"Distances (pooled): {_scalars(df, 'rain', 'distance')}.", "",
                f"Detector transfer (logistic regression on image statistics, fitted on our rain vs clean "
                f"Train400/traffic, tested on Rain100L): {_scalars(df, 'rain', 'detector')}.", ""]
    if (df["weather"] == "haze").any():
        out += ["**Haze**: O-HAZE pairs vs our `haze` recipe (haze and dust kinds) on the same clean targets; "
                "t = transmission implied by the pair, airlight fitted per channel.", ""]
        out += _table(df, "haze", [("real", "O-HAZE"), ("synthetic:haze", "ours: haze"), ("synthetic:dust", "ours: dust")])
        out.append("")
    if (df["weather"] == "snow").any():
        out += ["**Snow**: real snowy photos (no ground truth) vs our `snow` recipe on clean traffic images, and "
                "those images clean. Blobs: white top-hat (11 px) > 0.06, area in px at 640 px.", ""]
        out += _table(df, "snow", [("real", "real snowy"), ("synthetic", "ours on traffic"), ("clean", "traffic clean")])
    return "\n".join(out)

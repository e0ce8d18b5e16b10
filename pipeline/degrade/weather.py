"""Weather degradations: rain streaks, raindrops on the lens, snow, haze and dust.

Same contract as the other degradation modules: uint8/uint16/float32, (H, W), (H, W, 1) or
(H, W, 3) in, the same dtype and shape out; `seed` (int or Generator) fixes every random
draw. Sizes are in pixels, so the look depends on resolution the way real weather does.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.degrade.common import (
    Seed, as_3d, back, gray, line_kernel, low_pass, normalise01, rng_of, smooth_field, work,
)


def _colour(value: float | Sequence[float], channels: int) -> np.ndarray:
    """A scalar or RGB triple -> per-channel array matching the image (luma for grey)."""
    rgb = np.broadcast_to(np.asarray(value, np.float32), (3,))
    if channels == 1:
        return np.array([rgb @ np.array([0.299, 0.587, 0.114], np.float32)], np.float32)
    return rgb.astype(np.float32)


def _taper(kernel: np.ndarray, angle_deg: float) -> np.ndarray:
    """Fade a line kernel toward both ends (to 30 % at the tips), as a drop's trail thins."""
    c = (kernel.shape[0] - 1) / 2.0
    yy, xx = np.mgrid[: kernel.shape[0], : kernel.shape[1]].astype(np.float32) - c
    t = np.deg2rad(angle_deg)
    along = np.abs(xx * np.cos(t) - yy * np.sin(t))
    half = max(float(along[kernel > 0].max()), 1.0)
    return kernel * (0.3 + 0.7 * np.cos(0.5 * np.pi * np.clip(along / half, 0, 1)) ** 2)


def _streaks(shape: tuple[int, int], rng: np.random.Generator, density: float, length: float,
             angle_deg: float, width: int) -> np.ndarray:
    """Sparse random seeds smeared along the fall direction, in six groups of lengths
    (0.5-1.5 x `length`) and directions (+-4 degrees around `angle_deg`, gusts), for variety.

    Seed brightness spans 0.25-1 (a few bright near drops, many faint far ones) and each
    streak fades toward its ends, as in Rain100L, where streaks threshold into many pieces.
    """
    h, w = shape
    pad = int(length * 1.6) + 2  # seeds outside the frame so streaks enter from the edges
    layer = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
    for scale in (0.5, 0.7, 0.9, 1.1, 1.3, 1.5):
        seeds = (rng.random(layer.shape) < density / 6).astype(np.float32)
        seeds *= rng.uniform(0.25, 1.0, layer.shape).astype(np.float32)
        direction = 90.0 + angle_deg + float(rng.normal(0.0, 4.0))
        kernel = _taper(line_kernel(length * scale, direction, width, normalise=False), direction)
        layer += cv2.filter2D(seeds, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return np.clip(layer[pad:-pad, pad:-pad], 0.0, 1.0)


def rain_streaks(
    image: np.ndarray,
    *,
    seed: Seed,
    density: float = 0.002,
    length: float = 35.0,
    angle_deg: float = 10.0,
    width: int = 1,
    blur: float = 0.5,
    brightness: float = 0.5,
) -> np.ndarray:
    """Rain100L-style rain: bright, thin, motion-blurred streaks added on the scene.

    density: fraction of pixels seeding a streak, 0.0005-0.03. length: streak length in px,
    4-80. angle_deg: lean from vertical, -40..40. width: stroke width in px, 1-3.
    blur: Gaussian sigma in px softening the streaks, 0-2. brightness: streak opacity, 0.1-1.
    The layer is added to every channel alike (white, clipped at 1), as Rain100L is made:
    a streak's brightness hardly depends on what is behind it (Garg and Nayar, 2004), where a
    screen blend would tint it by the background and fade it on bright areas.
    """
    x = work(image)
    rng = rng_of(seed)
    layer = _streaks(x.shape[:2], rng, density, length, angle_deg, int(width))
    if blur > 0:
        layer = cv2.GaussianBlur(layer, (0, 0), float(blur))
    return back(np.clip(x + (layer * np.float32(brightness))[:, :, None], 0.0, 1.0), image)


def _drop_alpha(u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Normalised radius of an irregular drop outline and its soft-edged opacity."""
    phi = np.arctan2(v, u)
    wobble = 1.0 + 0.08 * np.cos(2 * phi + rng.uniform(0, 6.3)) + 0.05 * np.cos(3 * phi + rng.uniform(0, 6.3))
    rho = np.sqrt(u**2 + v**2) / wobble
    alpha = np.clip((1.0 - rho) / 0.25, 0.0, 1.0)
    return rho, alpha * alpha * (3 - 2 * alpha)  # smoothstep: soft, blurry rim


def _one_drop(out: np.ndarray, rng: np.random.Generator, r: float, zoom: float, blur: float) -> None:
    """Composite one drop in place: a flipped, widened, defocused view of the scene behind it."""
    h, w = out.shape[:2]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    rx, ry = r * rng.uniform(0.85, 1.1), r * rng.uniform(0.95, 1.3)  # sag: taller than wide
    x0, x1 = int(max(cx - rx - 1, 0)), int(min(cx + rx + 2, w))
    y0, y1 = int(max(cy - ry - 1, 0)), int(min(cy + ry + 2, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = (xx - cx) / rx, (yy - cy) / ry
    rho, alpha = _drop_alpha(u, v, rng)
    # A water lens: the view is flipped through the centre, widened by `zoom` and bent more
    # toward the rim (a spherical cap refracts most at its edge).
    bend = np.float32(zoom) * (1.0 + 0.8 * np.clip(rho, 0, 1) ** 2)
    map_x = (cx - (xx - cx) * bend).astype(np.float32)
    map_y = (cy - (yy - cy) * bend - ry * 0.6).astype(np.float32)
    view = cv2.remap(out, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if blur > 0:  # the drop sits on the glass, far out of focus: blur grows with its size
        view = cv2.GaussianBlur(view, (0, 0), max(blur * r, 0.5), borderType=cv2.BORDER_REFLECT)
    # Edge darkening, strongest at the bottom where the drop is thickest under gravity.
    edge = np.clip((rho - 0.55) / 0.45, 0, 1) ** 2
    rim = 1.0 - 0.3 * edge * (0.6 + 0.4 * np.clip(v, -1, 1))
    glint = 0.12 * np.exp(-(((u + 0.3) ** 2 + (v + 0.4) ** 2) / 0.03))
    drop = np.clip(as_3d(view) * 1.06 * rim[:, :, None] + glint[:, :, None], 0, 1)
    a = alpha[:, :, None].astype(np.float32)
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - a) + drop * a


def raindrops(
    image: np.ndarray,
    *,
    seed: Seed,
    count: int = 30,
    radius: tuple[float, float] = (4.0, 16.0),
    zoom: float = 1.6,
    blur: float = 0.2,
) -> np.ndarray:
    """Water drops on the lens or windscreen, as in the AttentiveGAN raindrop data.

    Inside each drop the scene is refracted: flipped through the drop centre, widened
    (`zoom` 0.5-4: how much more scene a drop shows than it covers; < 1 magnifies),
    shifted and defocused (`blur`: Gaussian sigma as a fraction of the drop radius, 0-1),
    with a slightly darker rim, a faint glint and a soft edge; the scene between drops
    stays sharp. count: drops, 1-200. radius: (lo, hi) drop radius in px, 2-60; small
    drops are drawn more often, as on real glass.
    """
    x = work(image)
    rng = rng_of(seed)
    lo, hi = float(radius[0]), float(radius[1])
    for _ in range(int(count)):
        r = lo + (hi - lo) * rng.random() ** 2
        _one_drop(x, rng, r, zoom, blur)
    return back(x, image)


def _flake_layer(shape: tuple[int, int], rng: np.random.Generator, n: int, size: float,
                 fall_deg: float) -> np.ndarray:
    """One depth layer of flakes: soft discs of one size, blurred and smeared by their fall."""
    h, w = shape
    layer = np.zeros((h, w), np.float32)
    for _ in range(n):
        centre = (int(rng.uniform(0, w) * 16), int(rng.uniform(0, h) * 16))
        radius = int(size * rng.uniform(0.7, 1.3) * 16)
        cv2.circle(layer, centre, max(radius, 8), float(rng.uniform(0.6, 1.0)), -1, cv2.LINE_AA, 4)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.25 * size + 0.3)
    streak = line_kernel(1.0 + 1.5 * size, 90.0 + fall_deg)
    return np.clip(cv2.filter2D(layer, -1, streak) * (1.0 + 0.5 * size), 0.0, 1.0)


def snow(
    image: np.ndarray,
    *,
    seed: Seed,
    density: float = 0.004,
    flake_size: tuple[float, float] = (0.6, 3.0),
    veil: float = 0.1,
    angle_deg: float = 15.0,
    opacity: float = 0.7,
) -> np.ndarray:
    """Falling snow: flakes in three depth layers (many small far ones, few large near ones),
    slightly motion-blurred along the fall direction, over a whitish veil.

    density: flakes per pixel, 0.0005-0.02. flake_size: (lo, hi) flake radius in px,
    0.3-8. veil: opacity of the bluish-white veil, 0-0.6. angle_deg: fall direction from
    vertical, -45..45. opacity: of the flakes, 0.2-1; real flakes, small and out of focus,
    stand ~0.15 above their surround (suite `realism`), fully opaque ones ~0.25.
    """
    x = work(image)
    rng = rng_of(seed)
    h, w = x.shape[:2]
    white = _colour((0.9, 0.92, 0.95), x.shape[2])
    x = x * np.float32(1 - veil) + white * np.float32(veil)
    flakes = np.zeros((h, w), np.float32)
    for share, t in ((0.65, 0.0), (0.25, 0.5), (0.1, 1.0)):
        size = flake_size[0] + t * (flake_size[1] - flake_size[0])
        n = int(round(density * h * w * share))
        flakes = np.maximum(flakes, _flake_layer((h, w), rng, n, size, angle_deg + rng.normal(0, 5)))
    a = flakes[:, :, None] * np.float32(opacity)
    return back(x * (1 - a) + _colour(0.97, x.shape[2]) * a, image)


def depth_proxy(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Guess a scene distance map in [0.1, 1] when no depth is known.

    Outdoor scenes are mostly farther toward the top, bright smooth areas (sky) are far,
    and a smooth random field keeps the haze from looking like a plain gradient.
    """
    h, w = x.shape[:2]
    vertical = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    bright = normalise01(low_pass(gray(x)))
    d = 0.55 * vertical + 0.25 * bright + 0.2 * smooth_field((h, w), rng, cells=4)
    return 0.1 + 0.9 * normalise01(d)


def haze(
    image: np.ndarray,
    *,
    seed: Seed,
    beta: float = 1.5,
    airlight: float | Sequence[float] = 0.85,
    depth: np.ndarray | None = None,
) -> np.ndarray:
    """Atmospheric scattering model I = J * t + A * (1 - t), t = exp(-beta * d).

    beta: scattering coefficient, 0.3-4 (1-3 is moderate to thick haze with d in [0, 1]).
    airlight A: 0.6-1.0, a scalar or RGB triple; a scalar gets a slight random tint.
    depth: (H, W) distance map (normalised ~0-1); `depth_proxy` is used when None.
    """
    x = work(image)
    rng = rng_of(seed)
    d = depth_proxy(x, rng) if depth is None else np.asarray(depth, np.float32)
    a = np.asarray(airlight, np.float32)
    if a.ndim == 0:
        a = a + rng.uniform(-0.02, 0.02, 3).astype(np.float32) * np.array([-1, 0, 1], np.float32)
    t = np.exp(-np.float32(beta) * d)[:, :, None]
    return back(x * t + _colour(a, x.shape[2]) * (1 - t), image)


def dust(
    image: np.ndarray,
    *,
    seed: Seed,
    veil: float = 0.45,
    particles: float = 0.003,
    color: Sequence[float] = (0.72, 0.58, 0.42),
) -> np.ndarray:
    """Dust or sand storm: a brownish, uneven, low-contrast veil plus fine airborne particles.

    veil: mean veil opacity, 0-0.8. particles: specks per pixel, 0-0.02. color: the RGB
    of the dust (sandy brown by default). Shares the "haze" label: same scattering physics
    with a coloured airlight, same dehazing route.
    """
    x = work(image)
    rng = rng_of(seed)
    h, w = x.shape[:2]
    opacity = np.float32(veil) * (0.75 + 0.5 * smooth_field((h, w), rng, cells=3))
    tint = _colour(color, x.shape[2])
    a = np.clip(opacity, 0, 0.95)[:, :, None]
    x = x * (1 - a) + tint * a
    specks = np.zeros((h, w), np.float32)
    for _ in range(int(particles * h * w)):
        centre = (int(rng.uniform(0, w) * 16), int(rng.uniform(0, h) * 16))
        cv2.circle(specks, centre, int(rng.uniform(0.5, 1.5) * 16), float(rng.uniform(0.3, 0.8)), -1, cv2.LINE_AA, 4)
    s = cv2.GaussianBlur(specks, (0, 0), 0.6)[:, :, None]
    return back(x * (1 - s) + np.clip(tint * 1.15, 0, 1) * s, image)

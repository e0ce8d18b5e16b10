"""Capture degradations: low light, JPEG, downscaling and blur.

Same contract as the other degradation modules (any supported dtype/shape in, the same out,
`seed` keyword). The deterministic kinds (jpeg, downscale, upscale_back, motion_blur,
defocus_blur) accept `seed` for a uniform signature and ignore it.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.degrade.common import Seed, as_3d, back, disk_kernel, line_kernel, rng_of, work


def low_light(
    image: np.ndarray,
    *,
    seed: Seed,
    gamma: float = 1.5,
    exposure: float = 0.15,
    shot_noise: float = 0.004,
    read_noise: float = 0.006,
) -> np.ndarray:
    """Under-exposure as LOL-style synthetic pairs are made: darken, then add sensor noise.

    y = exposure * x ** gamma, then shot noise Poisson(y / shot_noise) * shot_noise (mean y,
    variance shot_noise * y) and Gaussian read noise of std `read_noise`.
    gamma: 1-3.5 (shadows sink faster than highlights); exposure: 0.02-1 (scale of the
    brightest value); shot_noise: 0-0.02, variance per unit signal; read_noise: 0-0.03.
    """
    x = work(image)
    rng = rng_of(seed)
    y = np.float32(exposure) * np.power(x, np.float32(gamma))
    if shot_noise > 0:
        y = (rng.poisson(y.astype(np.float64) / shot_noise) * shot_noise).astype(np.float32)
    if read_noise > 0:
        y = y + rng.standard_normal(y.shape, dtype=np.float32) * np.float32(read_noise)
    return back(y, image)


def jpeg(image: np.ndarray, *, seed: Seed = 0, quality: int = 20) -> np.ndarray:
    """Real JPEG encode/decode with cv2 (libjpeg, 4:2:0 chroma for colour), quality 1-100.

    JPEG is 8-bit: uint16 and float inputs are quantised to 8 bit inside and mapped back to
    their own scale, so they also carry 8-bit banding, as a real JPEG round trip would.
    RGB is swapped to cv2's BGR order so the chroma planes are the right ones.
    """
    x8 = np.rint(work(image) * 255.0).astype(np.uint8)
    colour = x8.shape[2] == 3
    src = x8[:, :, ::-1] if colour else x8[:, :, 0]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(src), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed for JPEG")
    flag = cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE
    dec = as_3d(cv2.imdecode(buf, flag))
    dec = dec[:, :, ::-1] if colour else dec
    return back(dec.astype(np.float32) / 255.0, image)


def _bicubic(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2 bicubic resize of a float (H, W, C) image to (width, height) `size`."""
    return as_3d(cv2.resize(x, size, interpolation=cv2.INTER_CUBIC))


def _pre_blur(x: np.ndarray, blur_sigma: float) -> np.ndarray:
    if blur_sigma <= 0:
        return x
    return as_3d(cv2.GaussianBlur(x, (0, 0), float(blur_sigma), borderType=cv2.BORDER_REFLECT))


def matlab_bicubic(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W, C) image to (width, height) `size` the way MATLAB's
    `imresize(..., 'bicubic')` does: Keys cubic with a = -0.5 and, when shrinking, the kernel
    widened by the factor (anti-aliasing). Pillow's BICUBIC filter is that kernel; it works
    per float32 plane ("F" mode), so no 8-bit rounding happens here."""
    from PIL import Image

    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(x[:, :, c], dtype=np.float32), mode="F")
                         .resize(size, Image.Resampling.BICUBIC)) for c in range(x.shape[2])]
    return np.stack(planes, axis=2)


def downscale(image: np.ndarray, *, seed: Seed = 0, factor: int = 4, blur_sigma: float = 0.0,
              antialias: bool = False) -> np.ndarray:
    """Bicubic downscale by an integer `factor` (2-8) -> (H//f, W//f).

    Bicubic is what super-resolution benchmarks call the "BI" degradation. The image is
    first cropped to a multiple of `factor` ("mod-crop") so the scale is exact. By default
    cv2.INTER_CUBIC, which samples without anti-aliasing (small images keep aliasing, like a
    cheap camera thumbnail); `antialias` uses MATLAB imresize's bicubic instead, the
    degradation the published Set5/Set14 figures are measured on. `blur_sigma` (0-3 px, e.g.
    0.5*factor) adds a Gaussian pre-blur for the "BD" (blur-downsample) setting.
    """
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    x = work(image)
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    if h == 0 or w == 0:
        raise ValueError(f"image {image.shape} is smaller than factor {factor}")
    x = _pre_blur(x[:h, :w], blur_sigma)
    resize = matlab_bicubic if antialias else _bicubic
    return back(resize(x, (w // factor, h // factor)), image)


def upscale_back(image: np.ndarray, *, seed: Seed = 0, factor: int = 4, blur_sigma: float = 0.0,
                 antialias: bool = False) -> np.ndarray:
    """Low resolution at the same size: `downscale`, then bicubic back up to (H, W).

    Gives the blurry, detail-less image an upsampled thumbnail looks like; factor 2-8.
    """
    small = work(downscale(work(image), seed=seed, factor=factor, blur_sigma=blur_sigma, antialias=antialias))
    h, w = image.shape[:2]
    return back((matlab_bicubic if antialias else _bicubic)(small, (w, h)), image)


def motion_blur(image: np.ndarray, *, seed: Seed = 0, length: float = 9.0, angle_deg: float = 0.0) -> np.ndarray:
    """Linear camera/object motion: convolution with a line of `length` px (1-40) at
    `angle_deg` (0 = horizontal, counter-clockwise)."""
    x = work(image)
    kernel = line_kernel(length, angle_deg)
    return back(as_3d(cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT)), image)


def defocus_blur(image: np.ndarray, *, seed: Seed = 0, radius: float = 3.0) -> np.ndarray:
    """Out-of-focus blur: convolution with a flat disk of `radius` px (0.5-15)."""
    x = work(image)
    return back(as_3d(cv2.filter2D(x, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT)), image)

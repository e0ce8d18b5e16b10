"""JPEG deblocking: an H.264-style loop filter on the 8x8 grid, driven by the measured
quantiser.

JPEG at low quality quantises each 8x8 block's DCT independently, so smooth areas become
staircases of flat blocks and every block border shows a step. The H.264 deblocking filter
fixes exactly this: across each block boundary it smooths the 3 pixels on either side,
but only where the step is small enough to be a quantisation artefact (|p0 - q0| < alpha)
and the sides are smooth (|p1 - p0|, |q1 - q0| < beta); a large step or a busy side means
a real edge or texture, which is left alone.

H.264 gets alpha and beta from its QP. A decoded JPEG carries no QP, but its DC
quantisation step can be read back from the pixels: block means of a JPEG-decoded image sit
on a lattice of step q_dc / 8 (q_dc being the DC entry of the quantisation table), so the
largest step at which the block means are periodic is q_dc. The 8x8 grid phase is found as
the column/row offset where pixel differences are largest, so crops of a JPEG work too.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from pipeline.enhance.base import Enhancer

BLOCK = 8


def grid_offset(image: np.ndarray, axis: int) -> int:
    """Phase (0-7) of the block grid along `axis` of a (H, W) image: the offset o such that
    boundaries lie between positions o - 1 and o (mod 8), where the mean |difference| peaks."""
    diff = np.abs(np.diff(image, axis=axis)).mean(axis=1 - axis)
    per_phase = [diff[phase::BLOCK].mean() for phase in range(BLOCK)]
    return (int(np.argmax(per_phase)) + 1) % BLOCK


def block_means(image: np.ndarray, row_offset: int, col_offset: int) -> np.ndarray:
    """Means of the complete 8x8 blocks of the grid with the given phase."""
    cropped = image[row_offset:, col_offset:]
    h, w = (cropped.shape[0] // BLOCK) * BLOCK, (cropped.shape[1] // BLOCK) * BLOCK
    blocks = cropped[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    return blocks.mean(axis=(1, 3)).ravel()


def dc_step(means: np.ndarray, max_step: int = 160, min_score: float = 0.6) -> float:
    """JPEG DC quantisation step (in JPEG's 0-255 DCT units) from 8-bit-scale block means,
    0 when the means show no lattice (not a JPEG, or an aligned grid was not found).

    JPEG's DC is 8 * (mean - 128); for each candidate step q the mean resultant length of the
    phases 2 pi DC / q is ~1 when every DC is a multiple of q. Divisors of q score ~1 too and
    steps just above q still score fairly well (the phase drifts slowly for small DCs), so
    the best-scoring step within 6 % below the largest scoring one is taken.
    """
    if means.size < 16:
        return 0.0
    dc = 8.0 * (means - 128.0)
    steps = np.arange(2, max_step + 1)
    scores = np.abs(np.exp(2j * np.pi * dc[None, :] / steps[:, None]).mean(axis=1))
    found = steps[scores > min_score]
    if found.size == 0:
        return 0.0
    near = steps >= 0.94 * found.max()
    return float(steps[near][np.argmax(scores[near])])


def _filter_strong(p: list[np.ndarray], q: list[np.ndarray], strong: np.ndarray) -> list[np.ndarray]:
    """H.264 bS=4 filter on one side: 3-pixel smoothing where `strong`, else p0 only."""
    p3, p2, p1, p0 = p
    q0, q1 = q[0], q[1]
    new_p0 = np.where(strong, (p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1) / 8, (2 * p1 + p0 + q1) / 4)
    new_p1 = np.where(strong, (p2 + p1 + p0 + q0) / 4, p1)
    new_p2 = np.where(strong, (2 * p3 + 3 * p2 + p1 + p0 + q0) / 8, p2)
    return [p3, new_p2, new_p1, new_p0]


def filter_boundaries(image: np.ndarray, offset: int, alpha: float, beta: float) -> np.ndarray:
    """H.264 intra (bS=4) luma filter across the vertical block boundaries of (H, W) `image`
    that lie before columns offset + 8k, on a copy."""
    out = image.copy()
    columns = np.arange(offset, image.shape[1], BLOCK)
    columns = columns[(columns >= 4) & (columns <= image.shape[1] - 4)]
    if columns.size == 0:
        return out
    # p[0] is p3 (farthest left) ... p[3] is p0; q[0] is q0 ... q[3] is q3.
    p = [image[:, columns - 4 + i] for i in range(4)]
    q = [image[:, columns + i] for i in range(4)]
    step, side_p, side_q = np.abs(p[3] - q[0]), np.abs(p[2] - p[3]), np.abs(q[1] - q[0])
    active = (step < alpha) & (side_p < beta) & (side_q < beta)
    small_step = step < alpha / 4 + 2.0 / 255.0
    strong_p = small_step & (np.abs(p[1] - p[3]) < beta)
    strong_q = small_step & (np.abs(q[2] - q[0]) < beta)
    new_p = _filter_strong(p, q, strong_p)
    new_q = _filter_strong(q[::-1], p[::-1], strong_q)[::-1]
    for i in range(1, 4):
        out[:, columns - 4 + i] = np.where(active, new_p[i], p[i])
        out[:, columns + i - 1] = np.where(active, new_q[i - 1], q[i - 1])
    return out


def blockiness(image: np.ndarray, row_offset: int, col_offset: int) -> float:
    """Mean |difference| across block boundaries minus the mean inside blocks (rows and
    columns averaged); ~0.75 q_dc / 8 on JPEGs, ~0 on images without a block grid."""
    excess = []
    for axis, offset in ((1, col_offset), (0, row_offset)):
        diff = np.abs(np.diff(image, axis=axis)).mean(axis=1 - axis)
        on_boundary = np.arange(diff.size) % BLOCK == (offset - 1) % BLOCK
        excess.append(diff[on_boundary].mean() - diff[~on_boundary].mean())
    return max(float(np.mean(excess)), 0.0)


def quantiser_step(luma: np.ndarray, row_offset: int, col_offset: int) -> float:
    """Block-mean quantisation step on the [0, 1] scale (q_dc / 8 / 255): read from the DC
    lattice when there is one, else estimated from the blockiness (e.g. JPEG then resized,
    where the lattice is gone but steps remain)."""
    step = dc_step(block_means(luma * 255.0, row_offset, col_offset)) / 8.0 / 255.0
    return step if step > 0 else blockiness(luma, row_offset, col_offset) / 0.75


def deblock_channel(channel: np.ndarray, row_offset: int, col_offset: int, alpha: float, beta: float) -> np.ndarray:
    """H.264 order: vertical boundaries first, then horizontal ones on the result."""
    out = filter_boundaries(channel, col_offset, alpha, beta)
    return np.ascontiguousarray(filter_boundaries(np.ascontiguousarray(out.T), row_offset, alpha, beta).T)


class Deblock(Enhancer):
    """JPEG artefact reduction: H.264-style boundary filter, then a light bilateral filter.

    Thresholds scale with the measured block-mean quantisation step s = q_dc / (8 * 255)
    (10/255 at quality 10): alpha = `alpha_ratio` * s, beta = `beta_ratio` * s, and the
    bilateral's sigmaColor = `smooth_ratio` * s, which also evens out the ringing inside
    blocks that a boundary filter cannot reach. RGB is filtered in YCrCb with the grid and
    the step measured on the luma (JPEG's own Y); the chroma, quantised harder and
    subsampled, gets the same boundary filter and a stronger bilateral
    (`chroma_smooth_ratio`). Ratios tuned on Set12 and skimage's colour images at quality
    10 and 20.
    """

    name = "deblock"
    consumes = ("jpeg",)
    scale = 1
    model_ref = "classical:deblock"

    def __init__(self, alpha_ratio: float = 4.0, beta_ratio: float = 1.0, smooth_ratio: float = 2.0,
                 chroma_smooth_ratio: float = 4.0, smooth_space: float = 2.0) -> None:
        self.alpha_ratio = alpha_ratio
        self.beta_ratio = beta_ratio
        self.smooth_ratio = smooth_ratio
        self.chroma_smooth_ratio = chroma_smooth_ratio
        self.smooth_space = smooth_space

    def _smooth(self, channel: np.ndarray, sigma_color: float) -> np.ndarray:
        if sigma_color <= 0:
            return channel
        return cv2.bilateralFilter(channel, -1, sigma_color, self.smooth_space)

    def enhance(self, image: np.ndarray, hints: Mapping[str, float]) -> np.ndarray:
        if min(image.shape[:2]) < 2 * BLOCK:
            return image.copy()  # no block boundary with pixels on both sides to measure
        colour = image.shape[2] == 3
        planes = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb) if colour else image
        luma = np.ascontiguousarray(planes[:, :, 0])
        rows, cols = grid_offset(luma, axis=0), grid_offset(luma, axis=1)
        step = quantiser_step(luma, rows, cols)
        if step <= 0:
            return image.copy()
        out = np.empty_like(planes)
        for c in range(planes.shape[2]):
            channel = np.ascontiguousarray(planes[:, :, c])
            deblocked = deblock_channel(channel, rows, cols, self.alpha_ratio * step, self.beta_ratio * step)
            ratio = self.smooth_ratio if c == 0 else self.chroma_smooth_ratio
            out[:, :, c] = self._smooth(deblocked, ratio * step)
        return cv2.cvtColor(out, cv2.COLOR_YCrCb2RGB) if colour else out

"""Contact sheet: every degradation kind applied to the same image, in a labelled grid.

Run: ``.venv/bin/python -m pipeline.degrade.sheet docs/degradations.png [--size 160]``.
Each kind uses its function defaults and seed 0, so the sheet shows what the defaults
look like and changes whenever they do. The PNG is stored with a 256-colour palette to keep
docs/ small (< 600 KB); pass --truecolor for an exact, larger file when judging fine detail.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

from pipeline.degrade import DEGRADE, LABEL_OF, RETURNS_MASK

COLUMNS = 5
LABEL_H = 30


def source_image(size: int) -> np.ndarray:
    """skimage's astronaut (RGB uint8) resized to size x size."""
    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def render(kind: str, image: np.ndarray) -> np.ndarray:
    """Apply one kind with defaults; a smaller result is shown enlarged with nearest pixels."""
    out = DEGRADE[kind](image, seed=0)
    if kind in RETURNS_MASK:
        out = out[0]
    if out.shape != image.shape:
        out = cv2.resize(out, image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    return out


def tile(image: np.ndarray, title: str, subtitle: str) -> np.ndarray:
    """An image with a white caption strip (name, label) underneath."""
    strip = np.full((LABEL_H, image.shape[1], 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(strip, title, (3, 12), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(strip, subtitle, (3, 25), font, 0.34, (90, 90, 200), 1, cv2.LINE_AA)
    return np.vstack([image, strip])


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    """Tiles row-major into one image, padding the last row with white."""
    blank = np.full_like(tiles[0], 255)
    tiles = tiles + [blank] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def make_sheet(size: int = 160) -> np.ndarray:
    """The full RGB contact sheet."""
    clean = source_image(size)
    tiles = [tile(clean, "original", "clean")]
    for kind in DEGRADE:
        tiles.append(tile(render(kind, clean), kind, LABEL_OF[kind]))
    return grid(tiles, COLUMNS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG path, e.g. docs/degradations.png")
    parser.add_argument("--size", type=int, default=160, help="tile size in pixels")
    parser.add_argument("--truecolor", action="store_true", help="no palette (about 3x larger)")
    args = parser.parse_args(argv)
    sheet = Image.fromarray(make_sheet(args.size))
    if not args.truecolor:
        # No dithering: dither noise would hide the fine noise/JPEG detail the sheet shows.
        sheet = sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"wrote {args.output} {sheet.width}x{sheet.height}, {args.output.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()

"""Where the shared public datasets are: one setting, IMGENHANCE_DATA, default ../shared/data.

Tests and benchmarks that need real images ask `data_root()` and skip with a clear reason
when the folder is absent; nothing is downloaded and nothing is copied into the repository.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# The 10,000 MNIST test digits (no training set is at hand): seed 004's autoencoder data.
MNIST_TEST = "MNIST_test/t10k-images-idx3-ubyte.gz"


def data_root() -> Path:
    return Path(os.environ.get("IMGENHANCE_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def dataset(name: str) -> Path:
    """Folder of a shared dataset; FileNotFoundError names the setting when it is missing."""
    folder = data_root() / name
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset {name!r} not found under {data_root()} (set IMGENHANCE_DATA)")
    return folder


def images(name: str) -> list[Path]:
    """Image files of a dataset, sorted, recursively."""
    return sorted(p for p in dataset(name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


@functools.lru_cache(maxsize=4)
def idx_images(url: str) -> np.ndarray:
    """Images of an idx3-ubyte file (MNIST's format; gzip when the name ends in .gz) as a
    read-only (N, H, W) uint8 array, decoded once per process: callers index it per image."""
    from pipeline.io.storage import filesystem

    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        raw = f.read()
    raw = gzip.decompress(raw) if url.endswith(".gz") else raw
    if len(raw) < 16 or raw[:4] != b"\x00\x00\x08\x03":
        raise ValueError(f"{url}: not an idx3-ubyte image file (magic {raw[:4].hex()}, expected 00000803)")
    count, height, width = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    if len(raw) != 16 + count * height * width:
        raise ValueError(f"{url}: {len(raw) - 16} pixel bytes for {count} images of {height}x{width}")
    # frombuffer over bytes is read-only: no caller can alter the cached pixels.
    return np.frombuffer(raw, np.uint8, offset=16).reshape(count, height, width)

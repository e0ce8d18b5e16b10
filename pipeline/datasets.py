"""Where the shared public datasets are: one setting, IMGENHANCE_DATA, default ../shared/data.

Tests and benchmarks that need real images ask `data_root()` and skip with a clear reason
when the folder is absent; nothing is downloaded and nothing is copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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

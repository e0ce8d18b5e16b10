"""Expand `--input` URLs into sources: one archive each, or a group of loose image files.

A source is what one read task handles. Archives (tar, tar.gz/tgz, zip; WebDataset shards
are tars) are one source each; loose files under a prefix are grouped per folder root and
split into chunks so that big prefixes still read in parallel. Every source gets a unique
`stem`, the folder its outputs go to under the output prefix.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pipeline.io import storage

ARCHIVE_SUFFIXES = {".tar.gz": "tar", ".tgz": "tar", ".tar": "tar", ".zip": "zip"}
_GLOB_CHARS = "*?["


class InputError(ValueError):
    """An input URL that matches nothing or cannot be listed."""


@dataclass(frozen=True)
class Source:
    kind: str  # "tar" | "zip" | "loose"
    url: str  # the archive, or the root folder of loose members
    stem: str  # output folder under <output>
    members: tuple[str, ...] = ()  # loose only: paths relative to `url`
    size: int = 0  # bytes on storage (for Ray's size estimates)
    fingerprint: str = ""  # size + modification time / ETag: unchanged archives are skipped


def archive_kind(path: str) -> str | None:
    lower = path.lower()
    return next((kind for suffix, kind in ARCHIVE_SUFFIXES.items() if lower.endswith(suffix)), None)


def archive_stem(path: str) -> str:
    name = posixpath.basename(path.rstrip("/"))
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)] or "archive"
    return name


def _rebuild_url(url: str, fs, path: str) -> str:
    """Path from `fs` back to a URL with the same scheme as `url`."""
    return fs.unstrip_protocol(path) if "://" in url else path


def _glob_root(path: str) -> str:
    head = path[: min((path.find(c) for c in _GLOB_CHARS if c in path), default=len(path))]
    return head.rsplit("/", 1)[0] if "/" in head else head


def modified(info: Mapping[str, Any]) -> dt.datetime | None:
    """Modification time of a listing entry (local `mtime`, S3 `LastModified`), in UTC."""
    value = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return None


def _fingerprint(info: Mapping[str, Any]) -> str:
    stamp = info.get("ETag") or info.get("etag") or (modified(info) and modified(info).isoformat())
    return f"{int(info.get('size') or 0)}:{str(stamp or '').strip(chr(34))}"


def _list(url: str, options: Mapping[str, Any] | None) -> tuple[str, list[tuple[str, dict]]]:
    """(root path, [(file path, listing info)]) for a glob, a folder or a single file."""
    fs, path = storage.filesystem(url, options)
    if any(c in path for c in _GLOB_CHARS):
        found = fs.glob(path, detail=True)
        return _glob_root(path), sorted((p, i) for p, i in found.items() if i.get("type") == "file")
    if fs.isdir(path):
        return path, sorted(fs.find(path, detail=True).items())
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise InputError(f"input not found: {storage.redact(url)}") from None
    except OSError:
        if not archive_kind(path):
            raise
        # The store refuses to describe this archive (5xx after retries): its read task will
        # fail too and give a failed `#archive` row, rather than the whole job dying here.
        info = {"type": "file", "size": 0}
    if info.get("type") != "file":
        raise InputError(f"input not found: {storage.redact(url)}")
    return posixpath.dirname(path), [(path, info)]


def _sources_of(url: str, options, files_per_task: int, since: dt.datetime | None) -> list[Source]:
    fs, _ = storage.filesystem(url, options)
    root, files = _list(url, options)
    if not files:
        raise InputError(f"input matches no files: {storage.redact(url)}")
    if since is not None:
        files = [(p, i) for p, i in files if (modified(i) or since) >= since]
    sources = [
        Source(archive_kind(p), _rebuild_url(url, fs, p), archive_stem(p), size=int(i.get("size") or 0),
               fingerprint=_fingerprint(i))
        for p, i in files
        if archive_kind(p)
    ]
    loose = [(posixpath.relpath(p, root), int(i.get("size") or 0)) for p, i in files if not archive_kind(p)]
    root_url, stem = _rebuild_url(url, fs, root), posixpath.basename(root.rstrip("/")) or "files"
    for i in range(0, len(loose), files_per_task):
        chunk = loose[i : i + files_per_task]
        sources.append(Source("loose", root_url, stem, tuple(m for m, _ in chunk), sum(s for _, s in chunk)))
    return sources


def _unique_stems(sources: list[Source]) -> list[Source]:
    """Two archives named alike (a.tar, a.zip) must not share an output folder."""
    owner: dict[str, str] = {}
    out = []
    for src in sources:
        stem, n = src.stem, 1
        while owner.get(stem, src.url) != src.url:
            n += 1
            stem = f"{src.stem}-{n}"
        owner[stem] = src.url
        out.append(replace(src, stem=stem))
    return out


def expand_inputs(
    urls: Sequence[str], options: Mapping[str, Any] | None = None, files_per_task: int = 64,
    since: dt.datetime | None = None,
) -> list[Source]:
    """Every input URL (glob, folder, archive or image file) -> sources, in a stable order.

    `since` keeps only files modified at or after it (archives by their own time, loose
    images by theirs)."""
    if not urls:
        raise InputError("no input given")
    sources = []
    for url in urls:
        sources.extend(_sources_of(storage.normalize_url(url), options, files_per_task, since))
    return _unique_stems(sources)

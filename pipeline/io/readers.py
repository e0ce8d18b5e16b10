"""Stream the members of one source (tar, tar.gz, zip, loose files) as row dicts.

Archives are read as streams: a tar (or tar.gz) is walked member by member with
`tarfile`'s stream mode, so an archive larger than memory never sits in RAM; a zip is
opened on the seekable fsspec file and each member read on its own. Every member yields
exactly one row: regular files carry their bytes (or a skipped/failed status when over the
size limit), links, devices and nested archives are skipped with the reason, and a broken
archive adds one failed row for the archive itself. Member names are hostile until
sanitised: `safe_member_path` makes them relative paths that cannot leave the output prefix.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.io import storage
from pipeline.io.sources import Source, archive_kind

# WebDataset sidecars and other known non-image companions: skipped, never parsed.
SIDECAR_SUFFIXES = (".json", ".txt", ".cls", ".cls2", ".cbor", ".pickle", ".pyd", ".npy", ".mp", ".msgpack", ".xml", ".csv")
ARCHIVE_ROW = "#archive"  # member name of the row that reports a broken archive
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\:]")


@dataclass(frozen=True)
class ReadLimits:
    max_member_bytes: int


def safe_member_path(name: str) -> str:
    """A relative, normalised path: no absolute part, no '..', no control characters."""
    parts = []
    for part in name.replace("\\", "/").split("/"):
        part = _UNSAFE_CHARS.sub("_", part).strip()
        if part in ("", ".", ".."):
            continue
        parts.append(part)
    return "/".join(parts) or "_unnamed"


class KeyMaker:
    """Unique output keys within one source: duplicates get a `~N` suffix before the extension."""

    def __init__(self, stem: str):
        self.stem, self.seen = stem, set()

    def __call__(self, member: str) -> str:
        path = safe_member_path(member)
        key, n = f"{self.stem}/{path}", 1
        while key in self.seen:
            n += 1
            root, ext = posixpath.splitext(path)
            key = f"{self.stem}/{root}~{n}{ext}"
        self.seen.add(key)
        return key


def _row(source: Source, member: str, key: str, **fields: Any) -> dict:
    return {"source": storage.redact(source.url), "member": member, "key": key, **fields}


def _data_row(source: Source, member: str, key: str, data: bytes, started: float) -> dict:
    return _row(
        source, member, key, data=data, input_bytes=len(data),
        input_sha256=hashlib.sha256(data).hexdigest(), t_read_ms=(time.perf_counter() - started) * 1e3,
    )


def _skip_reason(member: str, size: int, limits: ReadLimits) -> str | None:
    lower = member.lower()
    if lower.endswith(SIDECAR_SUFFIXES):
        return f"not an image: sidecar file ({posixpath.splitext(lower)[1]})"
    if archive_kind(lower):
        return "nested archive: not expanded"
    if size > limits.max_member_bytes:
        return f"member is {size} bytes, over limits.max_member_bytes = {limits.max_member_bytes}"
    return None


def _tar_type(info: tarfile.TarInfo) -> str | None:
    """Why a tar member is not a regular file, or None when it is one."""
    if info.isreg():
        return None
    kinds = [(info.issym, "symbolic link"), (info.islnk, "hard link"), (info.ischr, "character device"),
             (info.isblk, "block device"), (info.isfifo, "FIFO")]
    return next((name for test, name in kinds if test()), f"tar member type {info.type!r}")


def iter_tar(source: Source, fileobj, limits: ReadLimits) -> Iterator[dict]:
    keys = KeyMaker(source.stem)
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for info in tar:
            if info.isdir():
                continue
            started = time.perf_counter()
            key = keys(info.name)
            kind = _tar_type(info)
            reason = f"not a regular file ({kind}): not followed" if kind else _skip_reason(info.name, info.size, limits)
            if reason:
                yield _row(source, info.name, key, status="skipped", error=reason, input_bytes=info.size)
                continue
            try:
                data = tar.extractfile(info).read()
            except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
                # The header was read, so the member exists: it gets its own failed row
                # before the archive's, or an audit that lists headers would find it lost.
                yield _row(source, info.name, key, status="failed", error=storage.redact(f"member cut short: {exc}"))
                raise
            yield _data_row(source, info.name, key, data, started)


def _zip_type(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        return "symbolic link"
    if mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
        return "special file"
    if info.flag_bits & 0x1:
        return "encrypted member"
    return None


def iter_zip(source: Source, fileobj, limits: ReadLimits) -> Iterator[dict]:
    keys = KeyMaker(source.stem)
    with zipfile.ZipFile(fileobj) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            started = time.perf_counter()
            key = keys(info.filename)
            kind = _zip_type(info)
            reason = f"not a regular file ({kind}): not read" if kind else _skip_reason(info.filename, info.file_size, limits)
            if reason:
                yield _row(source, info.filename, key, status="skipped", error=reason, input_bytes=info.file_size)
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(limits.max_member_bytes + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                yield _row(source, info.filename, key, status="failed", error=f"zip member unreadable: {exc}")
                continue
            if len(data) > limits.max_member_bytes:  # the header under-declared the size
                yield _row(source, info.filename, key, status="skipped", error=_skip_reason("", len(data), limits))
                continue
            yield _data_row(source, info.filename, key, data, started)


def iter_loose(source: Source, fs, root: str, limits: ReadLimits) -> Iterator[dict]:
    keys = KeyMaker(source.stem)
    for member in source.members:
        started = time.perf_counter()
        key = keys(member)
        path = posixpath.join(root, member)
        try:
            size = int(fs.size(path) or 0)
            reason = _skip_reason(member, size, limits)
            if reason:
                yield _row(source, member, key, status="skipped", error=reason, input_bytes=size)
                continue
            data = fs.cat_file(path)
        except (OSError, ValueError) as exc:
            yield _row(source, member, key, status="failed", error=storage.redact(f"read failed: {exc}"))
            continue
        yield _data_row(source, member, key, data, started)


def iter_members(source: Source, options: Mapping[str, Any] | None, limits: ReadLimits) -> Iterator[dict]:
    """Rows for every member of `source`; a broken archive ends with a failed `#archive` row."""
    fs, path = storage.filesystem(source.url, options)
    if source.kind == "loose":
        yield from iter_loose(source, fs, path, limits)
        return
    try:
        with fs.open(path, "rb") as fileobj:
            reader = iter_tar if source.kind == "tar" else iter_zip
            yield from reader(source, fileobj, limits)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        message = storage.redact(f"archive unreadable after the rows before this one: {type(exc).__name__}: {exc}")
        yield _row(source, ARCHIVE_ROW, f"{source.stem}/{ARCHIVE_ROW}", status="failed", error=message)

"""Clean reference images for PSNR/SSIM, matched to inputs by member path.

`--reference URL` names a folder, zip or uncompressed tar holding the clean originals
under the same member paths as the degraded input. The index (member path -> where its
bytes are) is built once on the driver; workers fetch single members by byte range (tar),
by name (zip) or as files (folder), so no worker reads a whole archive.
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
from collections.abc import Mapping
from typing import Any

from pipeline.io import storage
from pipeline.io.readers import safe_member_path
from pipeline.io.sources import archive_kind


class ReferenceIndex:
    def __init__(self, url: str, options: Mapping[str, Any] | None = None):
        self.url = storage.normalize_url(url)
        self.options = dict(options or {})
        self.kind = archive_kind(self.url) or "loose"
        if self.url.lower().endswith((".tar.gz", ".tgz")):
            raise ValueError("a reference must be a folder, a zip or an uncompressed tar (tar.gz cannot be indexed)")
        self.entries = self._index()

    def _index(self) -> dict[str, Any]:
        fs, path = storage.filesystem(self.url, self.options)
        if self.kind == "loose":
            return {safe_member_path(posixpath.relpath(p, path)): p for p in fs.find(path)}
        with fs.open(path, "rb") as f:
            if self.kind == "zip":
                return {safe_member_path(i.filename): i.filename for i in zipfile.ZipFile(f).infolist() if not i.is_dir()}
            with tarfile.open(fileobj=f, mode="r:") as tar:
                return {safe_member_path(m.name): (m.offset_data, m.size) for m in tar.getmembers() if m.isreg()}

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, member: str) -> bytes | None:
        """The reference bytes for an input member, or None when there is none (or unreadable)."""
        entry = self.entries.get(safe_member_path(member))
        if entry is None:
            return None
        fs, path = storage.filesystem(self.url, self.options)
        try:
            if self.kind == "loose":
                return fs.cat_file(entry)
            if self.kind == "tar":
                offset, size = entry
                return fs.cat_file(path, start=offset, end=offset + size)
            with fs.open(path, "rb") as f, zipfile.ZipFile(f) as archive:
                return archive.read(entry)
        except (OSError, ValueError, zipfile.BadZipFile):
            return None

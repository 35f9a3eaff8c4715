"""Content digests of host files, with a stat cache so unchanged files are not read again.

Like git's index: a file whose (size, mtime, ctime, inode) are those recorded with its digest
is taken as unchanged. Entries younger than two seconds are not recorded, so a write within
the filesystem's timestamp granularity right after a build cannot hide behind a stale stat.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

CHUNK = 1 << 20
_RACY_NS = 2_000_000_000


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's contents, hex."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


class DigestCache:
    """Maps host paths to content digests, persisted as JSON between runs."""

    VERSION = 1

    def __init__(self, path: Path | None, hashing: bool = True) -> None:
        self.path = path
        self.hashing = hashing
        self._entries: dict[str, list[object]] = {}
        self._dirty = False
        self._now_ns = time.time_ns()
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == self.VERSION:
            entries = data.get("entries")
            if isinstance(entries, dict):
                self._entries = entries

    def digest(self, path: str, st: os.stat_result) -> str:
        """Digest of the regular file ``path`` whose lstat result is ``st``."""
        if not self.hashing:
            return ""
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        cached = self._entries.get(path)
        if cached is not None and cached[:4] == stamp:
            return str(cached[4])
        value = file_digest(path)
        if self._now_ns - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
            self._entries[path] = [*stamp, value]
            self._dirty = True
        return value

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": self.VERSION, "entries": self._entries}))
        os.replace(tmp, self.path)
        self._dirty = False

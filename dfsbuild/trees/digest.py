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

CHUNK = 1 << 20
RACY_NS = 2_000_000_000       # younger inputs may still change within one timestamp


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

    def __init__(self, path: str | None, hashing: bool = True) -> None:
        self.path = path
        self.hashing = hashing
        self._entries: dict[str, list[object]] = {}
        self._dirty = False
        self._now_ns = time.time_ns()
        self._loaded = path is None         # read on first use: a memoised key needs none

    def _load(self, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
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
        if not self._loaded:
            assert self.path is not None
            self._load(self.path)
            self._loaded = True
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        cached = self._entries.get(path)
        if cached is not None and cached[:4] == stamp:
            return str(cached[4])
        value = file_digest(path)
        if self._now_ns - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
            self._entries[path] = [*stamp, value]
            self._dirty = True
        return value

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        head, name = os.path.split(self.path)
        os.makedirs(head, exist_ok=True)
        tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"version": self.VERSION, "entries": self._entries}))
        os.replace(tmp, self.path)
        self._dirty = False

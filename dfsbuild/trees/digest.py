"""Content ids of host files, with a stat cache so unchanged files are not read again.

A file's content id is its git blob id: the SHA-1 of ``blob SIZE\0`` and its bytes, as
``git hash-object`` gives. Like git's index, a file whose (size, mtime, ctime, inode) are those
recorded with its id is taken as unchanged. Entries younger than two seconds are not
recorded, so a write within the filesystem's timestamp granularity right after a build cannot
hide behind a stale stat. Once a run has had to hash many files (a fresh clone), the ids of
clean tracked files are taken from git's index instead (gitindex.py): the same ids, unread.

Trust: SHA-1 is not collision-resistant against a determined attacker; neither is git's
object store, which these ids mirror. Whoever can commit an input can already change an
output, and whoever writes to a shared cache is trusted (as in Bazel); the key over the
manifest, the cache's entries and the remote's blobs use SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dfsbuild.trees.gitindex import GitIndex

CHUNK = 1 << 20
RACY_NS = 2_000_000_000       # younger inputs may still change within one timestamp
GIT_AFTER = 64                # files hashed in one run before git's index is asked


def content_id(path: str | os.PathLike[str]) -> str:
    """A file's content id: its git blob id (hex SHA-1 of ``blob SIZE\0`` + the bytes)."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        h = hashlib.sha1(b"blob %d\0" % size)
        n = 0
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    if n != size:                     # it changed while read: hash what it holds now
        return content_id(path)
    return h.hexdigest()


def blob_hasher(size: int) -> hashlib._Hash:
    """A hash object that gives the content id of ``size`` bytes fed to it."""
    return hashlib.sha1(b"blob %d\0" % size)


class DigestCache:
    """Maps host paths to content digests, persisted as JSON between runs."""

    VERSION = 2                 # 1: sha256 digests

    def __init__(self, path: str | None, hashing: bool = True) -> None:
        self.path = path
        self.hashing = hashing
        self._entries: dict[str, list[object]] = {}
        self._dirty = False
        self._now_ns = time.time_ns()
        self._loaded = path is None         # read on first use: a memoised key needs none
        self._hashed = 0
        self._git: GitIndex | None = None
        self._git_asked = False

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
        value = self._from_git(path, st) if self._hashed >= GIT_AFTER else None
        if value is None:
            value = content_id(path)
            self._hashed += 1
        if self._now_ns - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
            self._entries[path] = [*stamp, value]
            self._dirty = True
        return value

    def _from_git(self, path: str, st: os.stat_result) -> str | None:
        if not self._git_asked:
            from dfsbuild.trees.gitindex import load

            self._git, self._git_asked = load(os.getcwd()), True
        return self._git.content_id(st) if self._git is not None else None

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

"""The content-addressed output cache: immutable entries, checked on every restore.

``ROOT/v2/ab/KEY`` holds an output's bytes (read-only, never shared with an output: restores
reflink or copy), ``ROOT/v2/ab/KEY.json`` its size and sha256. An entry is complete once its
record exists. A restore opens the entry without following symlinks, copies it and checks the
copy's size and sha256 against the record: a bad entry is dropped and reported, never served.
The record's modification time is the entry's last use (``prune`` removes the least recently
used first).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from dfsbuild.fileio.digest import clone_or_copy, sha256_fd

LAYOUT_VERSION = "v2"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    size: int
    sha256: str
    last_used: float              # seconds since the epoch

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "size": self.size, "sha256": self.sha256,
                "last_used": round(self.last_used, 3)}


class BadEntry(Exception):
    """An entry whose bytes do not match its record (the message says how)."""


class OutputCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries_dir = root / LAYOUT_VERSION

    def _data(self, key: str) -> Path:
        return self.entries_dir / key[:2] / key

    def _record(self, key: str) -> Path:
        return self.entries_dir / key[:2] / f"{key}.json"

    def entry(self, key: str) -> Entry | None:
        """The entry's record, or None if there is none (or it is unreadable)."""
        if len(key) != 64 or not set(key) <= _HEX:
            return None
        try:
            fd = os.open(self._record(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            data = json.loads(os.read(fd, 4096)) if stat.S_ISREG(st.st_mode) else None
        except (OSError, ValueError):
            data = None
        finally:
            os.close(fd)
        if (not isinstance(data, dict) or data.get("key") != key
                or not isinstance(data.get("size"), int) or data["size"] < 0
                or not isinstance(data.get("sha256"), str)):
            return None
        return Entry(key, data["size"], data["sha256"], st.st_mtime)

    def restore(self, key: str, dest_fd: int) -> Entry | None:
        """Copy the entry for ``key`` into the empty file ``dest_fd`` and check it. None when
        there is no entry; BadEntry (after dropping it) when its bytes are not its record's."""
        entry = self.entry(key)
        if entry is None:
            return None
        try:
            src = os.open(self._data(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            self.drop(key)
            raise BadEntry(f"cannot open it ({exc.strerror})") from None
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):
                raise BadEntry("it is not a regular file")
            if st.st_size != entry.size:
                raise BadEntry(f"{st.st_size} bytes, its record says {entry.size}")
            clone_or_copy(src, dest_fd, entry.size)
        except BadEntry:
            self.drop(key)
            raise
        finally:
            os.close(src)
        found = sha256_fd(dest_fd, entry.size)
        if found != entry.sha256:
            self.drop(key)
            raise BadEntry(f"sha256 {found}, its record says {entry.sha256}")
        with contextlib.suppress(OSError):
            os.utime(self._record(key))
        return entry

    def store(self, key: str, src_fd: int, size: int, sha256: str) -> None:
        """Enter ``size`` bytes of ``src_fd`` (whose sha256 the caller computed) for ``key``."""
        if self.entry(key) is not None:
            with contextlib.suppress(OSError):
                os.utime(self._record(key))
            return
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        final = self._data(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{key}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            try:
                clone_or_copy(src_fd, fd, size)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            record = json.dumps({"key": key, "size": size, "sha256": sha256,
                                 "stored": int(time.time())})
            rtmp = tmp.with_name(tmp.name + ".json")
            rtmp.write_text(record)
            os.replace(rtmp, self._record(key))
        except BaseException:
            for p in (tmp, tmp.with_name(tmp.name + ".json")):
                with contextlib.suppress(OSError):
                    p.unlink()
            raise

    def drop(self, key: str) -> None:
        for p in (self._record(key), self._data(key)):
            with contextlib.suppress(OSError):
                p.unlink()

    def entries(self) -> list[Entry]:
        """Every complete entry, least recently used first."""
        found: list[Entry] = []
        try:
            shards = sorted(os.scandir(self.entries_dir), key=lambda d: d.name)
        except OSError:
            return found
        for shard in shards:
            if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                continue
            with os.scandir(shard.path) as it:
                names = sorted(d.name for d in it)
            for name in names:
                if name.endswith(".json"):
                    e = self.entry(name[:-5])
                    if e is not None:
                        found.append(e)
        found.sort(key=lambda e: (e.last_used, e.key))
        return found

    def prune(self, max_size: int | None, older_than_days: float | None,
              now: float | None = None) -> list[Entry]:
        """Remove entries unused for ``older_than_days``, then the least recently used until
        the cache holds at most ``max_size`` bytes; also orphaned files and stale temporaries.
        Returns what was removed."""
        now = time.time() if now is None else now
        entries = self.entries()
        total = sum(e.size for e in entries)
        removed: list[Entry] = []
        for e in entries:
            too_old = older_than_days is not None and now - e.last_used > older_than_days * 86400
            too_big = max_size is not None and total > max_size
            if too_old or too_big:
                self.drop(e.key)
                removed.append(e)
                total -= e.size
        self._remove_orphans(now)
        return removed

    def _remove_orphans(self, now: float) -> None:
        """Data without a record (an interrupted store) and temporaries older than a day."""
        with contextlib.suppress(OSError), os.scandir(self.root / "tmp") as it:
            for d in it:
                with contextlib.suppress(OSError):
                    if now - d.stat(follow_symlinks=False).st_mtime > 86400:
                        os.unlink(d.path)
        with contextlib.suppress(OSError), os.scandir(self.entries_dir) as shards:
            for shard in shards:
                if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(shard.path) as it:
                    names = {d.name for d in it}
                for name in names:
                    if name.endswith(".json") or f"{name}.json" in names:
                        continue
                    path = os.path.join(shard.path, name)
                    with contextlib.suppress(OSError):
                        if now - os.lstat(path).st_mtime > 3600:   # not a store under way
                            os.unlink(path)

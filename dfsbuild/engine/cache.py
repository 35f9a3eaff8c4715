"""The content-addressed output cache: immutable entries made of shared pieces, every piece
checked on every restore.

``ROOT/v3/entries/ab/KEY.json`` says what the output of KEY is: its size, the pieces it is
made of and where they go (pieces.py says how an output is cut). ``ROOT/v3/pieces/ab/ID``
holds one piece, read-only, stored once however many entries use it. An entry is complete
once its record exists; its pieces are written first. A restore opens every piece without
following symlinks and checks it as it is copied: an entry with a bad or missing piece is
dropped and reported (with the bad piece), never served. The record's modification time is
the entry's last use: ``prune`` removes the least recently used entries first, then every
piece no entry uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from dfsbuild.engine.pieces import (
    REST_PIECE,
    BadPiece,
    Group,
    Span,
    cut,
    file_extents,
    groups_of,
    is_digest,
    read_group,
    rest_pieces,
    rest_spans,
    write_group,
)
from dfsbuild.fileio.sink import Extent

LAYOUT_VERSION = "v3"
OLD_LAYOUTS = ("v1", "v2")
T = TypeVar("T")
ORPHAN_AGE = 3600             # a piece no entry uses yet may belong to a store under way


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached output: its size, its sha256 where it was computed, its last use, and its
    pieces (groups with their files' offsets, holes, rest pieces in order)."""

    key: str
    size: int
    sha256: str | None
    last_used: float              # seconds since the epoch
    groups: tuple[tuple[str, tuple[int, ...]], ...] = ()
    holes: tuple[Span, ...] = ()
    rest: tuple[str, ...] = ()

    @property
    def pieces(self) -> set[str]:
        return {g for g, _ in self.groups} | set(self.rest)

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "size": self.size, "sha256": self.sha256,
                "pieces": len(self.pieces), "last_used": round(self.last_used, 3)}


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune removed: the entries, and the bytes of the pieces that went with them."""

    removed: list[Entry]
    freed: int


class BadEntry(Exception):
    """An entry whose bytes are not its record's (the message says how)."""


class OutputCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries_dir = root / LAYOUT_VERSION / "entries"
        self.pieces_dir = root / LAYOUT_VERSION / "pieces"
        self._pieces = str(self.pieces_dir)

    def _record(self, key: str) -> Path:
        return self.entries_dir / key[:2] / f"{key}.json"

    def _piece(self, pid: str) -> str:
        return os.path.join(self._pieces, pid[:2], pid)

    def entry(self, key: str) -> Entry | None:
        """The entry's record, or None if there is none (or it is unreadable)."""
        if not is_digest(key):
            return None
        try:
            fd = os.open(self._record(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            with os.fdopen(os.dup(fd), "rb") as f:
                data = json.loads(f.read()) if stat.S_ISREG(st.st_mode) else None
        except (OSError, ValueError):
            data = None
        finally:
            os.close(fd)
        return _entry_of(data, key, st.st_mtime)

    def restore(self, key: str, dest_fd: int) -> tuple[Entry, list[Extent]] | None:
        """Put the entry for ``key`` together in the empty file ``dest_fd``, checking every
        piece; the entry and the extents of the files its groups put there. None when there
        is no entry; BadEntry (after dropping it and the bad piece) when a piece is not what
        the entry says."""
        entry = self.entry(key)
        if entry is None:
            return None
        try:
            os.ftruncate(dest_fd, entry.size)
            placed: list[Extent] = []
            for gid, offsets in entry.groups:
                placed += self._with_piece(
                    gid, partial(read_group, gid=gid, offsets=offsets, dst=dest_fd,
                                 size=entry.size))
            spans = rest_spans(placed, entry.holes, entry.size)
            self._put_rest(entry.rest, spans, dest_fd)
        except BadPiece as exc:
            self.drop(key)
            if exc.args[1:]:
                self._drop_piece(exc.args[1])
            raise BadEntry(exc.args[0]) from None
        with contextlib.suppress(OSError):
            os.utime(self._record(key))
        return entry, placed

    def _with_piece(self, pid: str, use: Callable[[int], T]) -> T:
        try:
            fd = os.open(self._piece(pid), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise BadPiece(f"piece {pid[:16]}: cannot open it ({exc.strerror})", pid) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadPiece(f"piece {pid[:16]}: not a regular file", pid)
            try:
                return use(fd)
            except BadPiece as exc:
                raise BadPiece(exc.args[0], pid) from None
        finally:
            os.close(fd)

    def _put_rest(self, rest: Sequence[str], spans: list[Span], dest_fd: int) -> None:
        """The rest pieces, each checked, scattered over ``spans`` in order."""
        i, off = 0, 0                   # the span being filled, and how far
        for rid in rest:
            piece = self._with_piece(rid, partial(_read_rest, rid=rid))
            pos = 0
            while pos < len(piece):
                if i == len(spans):
                    raise BadPiece("the rest is longer than the entry leaves room for")
                at, n = spans[i]
                take = min(n - off, len(piece) - pos)
                os.pwrite(dest_fd, piece[pos:pos + take], at + off)
                pos += take
                off += take
                if off == n:
                    i, off = i + 1, 0
        if i != len(spans):
            raise BadPiece("the rest is shorter than the entry leaves room for")

    def store(self, key: str, src_fd: int, size: int, sha256: str | None = None,
              extents: Sequence[Extent] | None = None,
              like: tuple[str, list[Span]] | None = None) -> None:
        """Enter ``size`` bytes of ``src_fd`` for ``key``, cut by the writer's ``extents``;
        only pieces the cache does not hold yet are written. ``like``: the key of an output
        that differs from this one only in these spans, each a file's whole data (a data
        patch): its entry's rest and holes are this one's, and its groups whose files are
        untouched are this one's too, neither read nor hashed again."""
        if self.entry(key) is not None:
            with contextlib.suppress(OSError):
                os.utime(self._record(key))
            return
        derived = self._derived(src_fd, size, extents, like) if like is not None else None
        if derived is not None:
            groups, holes, rest = derived
        else:
            pieces = cut(src_fd, size, extents)
            groups = [self._group(g, src_fd) for g in pieces.groups]
            holes = [list(h) for h in pieces.holes]
            rest = []
            for data in rest_pieces(src_fd, pieces.rest):
                rid = hashlib.sha256(data).hexdigest()
                if not self._has(rid):
                    self._write_piece(rid, partial(_write_all, data=data))
                rest.append(rid)
        record = {"key": key, "size": size, "sha256": sha256, "stored": int(time.time()),
                  "groups": groups, "holes": holes, "rest": rest}
        self._write_file(self._record(key), lambda fd: _write_all(
            fd, json.dumps(record, separators=(",", ":")).encode()), 0o644)

    def _group(self, g: Group, src_fd: int) -> list[object]:
        """The group's entry row; its piece written unless the cache holds it."""
        gid = g.id
        if not self._has(gid):
            self._write_piece(gid, partial(write_group, g, src_fd))
        return [gid, list(g.offsets)]

    def _derived(self, src_fd: int, size: int, extents: Sequence[Extent] | None,
                 like: tuple[str, list[Span]]) -> tuple[list[list[object]], list[list[int]],
                                                         list[str]] | None:
        """Groups, holes and rest of an output made from the entry ``like`` names by changing
        whole files' data (``store``); None when that entry is gone or is not cut as these
        extents are (the output is then cut whole)."""
        old_key, changed = like
        old = self.entry(old_key)
        files = file_extents(extents, size)
        if old is None or old.size != size or not files:
            return None
        spans = {(at, n) for at, n, _ in files}
        if not all(s in spans for s in changed) or \
                {o for _, offsets in old.groups for o in offsets} != {at for at, _ in spans}:
            return None
        touched = {at for at, _ in changed}
        unchanged = {offsets: gid for gid, offsets in old.groups
                     if not any(o in touched for o in offsets)}
        groups: list[list[object]] = []
        for g in groups_of(files):
            gid = unchanged.get(g.offsets)
            groups.append([gid, list(g.offsets)] if gid is not None else self._group(g, src_fd))
        return groups, [list(h) for h in old.holes], list(old.rest)

    def _has(self, pid: str) -> bool:
        try:
            return stat.S_ISREG(os.lstat(self._piece(pid)).st_mode)
        except OSError:
            return False

    def _write_piece(self, pid: str, fill: Callable[[int], None]) -> None:
        self._write_file(Path(self._piece(pid)), fill, 0o444)

    def _write_file(self, final: Path, fill: Callable[[int], None], mode: int) -> None:
        """``final`` made whole or not at all: filled as a temporary, then renamed."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{final.name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            try:
                fill(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def drop(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self._record(key).unlink()

    def _drop_piece(self, pid: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._piece(pid))

    def entries(self) -> list[Entry]:
        """Every complete entry, least recently used first."""
        found: list[Entry] = []
        for name in _names(self.entries_dir):
            if name.endswith(".json"):
                e = self.entry(name[:-5])
                if e is not None:
                    found.append(e)
        found.sort(key=lambda e: (e.last_used, e.key))
        return found

    def stored_bytes(self) -> int:
        """What the pieces take (each counted once, however many entries use it)."""
        return sum(size for size, _ in self._piece_files().values())

    def _piece_files(self) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for name in _names(self.pieces_dir):
            with contextlib.suppress(OSError):
                st = os.lstat(self._piece(name))
                out[name] = (st.st_size, st.st_mtime)
        return out

    def prune(self, max_size: int | None, older_than_days: float | None,
              now: float | None = None) -> Pruned:
        """Remove entries unused for ``older_than_days``, then the least recently used until
        the pieces take at most ``max_size`` bytes; then every piece no entry uses (those of
        a store under way are kept for an hour) and stale temporaries."""
        now = time.time() if now is None else now
        entries = self.entries()
        files = self._piece_files()
        uses = Counter(p for e in entries for p in e.pieces)
        total = sum(files[p][0] for p in uses if p in files)
        removed: list[Entry] = []
        freed = 0
        for e in entries:
            too_old = older_than_days is not None and now - e.last_used > older_than_days * 86400
            too_big = max_size is not None and total > max_size
            if not (too_old or too_big):
                continue
            self.drop(e.key)
            removed.append(e)
            for p in e.pieces:
                uses[p] -= 1
                if uses[p] == 0 and p in files:
                    total -= files[p][0]
        for pid, (size, mtime) in files.items():
            if uses[pid] <= 0 and (pid in uses or now - mtime > ORPHAN_AGE):
                self._drop_piece(pid)
                freed += size
        with contextlib.suppress(OSError), os.scandir(self.root / "tmp") as it:
            for d in it:
                with contextlib.suppress(OSError):
                    if now - d.stat(follow_symlinks=False).st_mtime > 86400:
                        os.unlink(d.path)
        freed += self._remove_old_layouts()
        return Pruned(removed, freed)

    def _remove_old_layouts(self) -> int:
        """Entries of earlier cache layouts (``v1``, ``v2``: keyed by content digests no key
        uses now); the bytes they took."""
        import shutil

        freed = 0
        for old in OLD_LAYOUTS:
            path = self.root / old
            if not path.is_dir() or path.is_symlink():
                continue
            for dirpath, _dirs, files in os.walk(path):
                for name in files:
                    with contextlib.suppress(OSError):
                        freed += os.lstat(os.path.join(dirpath, name)).st_size
            shutil.rmtree(path, ignore_errors=True)
        return freed


def _read_rest(fd: int, rid: str) -> bytes:
    """A rest piece's bytes, checked against its id."""
    size = os.fstat(fd).st_size
    if size > REST_PIECE:
        raise BadPiece(f"rest piece {rid[:16]}: {size} bytes, more than a piece holds")
    data = os.pread(fd, size, 0)
    if hashlib.sha256(data).hexdigest() != rid:
        raise BadPiece(f"rest piece {rid[:16]}: its bytes are not its id")
    return data


def _names(top: Path) -> list[str]:
    """The file names in ``top``'s two-character shards."""
    out: list[str] = []
    try:
        shards = sorted(os.scandir(top), key=lambda d: d.name)
    except OSError:
        return out
    for shard in shards:
        if len(shard.name) == 2 and shard.is_dir(follow_symlinks=False):
            with os.scandir(shard.path) as it:
                out += sorted(d.name for d in it)
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _entry_of(data: object, key: str, last_used: float) -> Entry | None:
    """The entry a record describes, or None when it is not a well-formed record of ``key``."""
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    size, sha, groups, holes, rest = (data.get(k) for k in
                                      ("size", "sha256", "groups", "holes", "rest"))
    if (not isinstance(size, int) or size < 0 or not (sha is None or is_digest(sha))
            or not isinstance(groups, list) or not isinstance(holes, list)
            or not isinstance(rest, list) or not all(is_digest(r) for r in rest)):
        return None
    try:
        g = tuple((gid, tuple(int(o) for o in offs)) for gid, offs in groups
                  if is_digest(gid) and isinstance(offs, list))
        h = tuple((int(at), int(n)) for at, n in holes)
    except (TypeError, ValueError):
        return None
    if len(g) != len(groups):
        return None
    return Entry(key, size, sha, last_used, g, h, tuple(rest))

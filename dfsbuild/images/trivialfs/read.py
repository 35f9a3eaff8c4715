"""TrivialFS reader: the header parsed as formats.md §2 allows, the flat names shown as a
tree (``/`` separates directories, as the generator meant it). First match wins: a later
entry of the same name, or a name that needs an earlier file to be a directory, is a problem
and is not listed. Ranges past the end, into the header or overlapping another are problems
with their byte offsets."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader, Problem
from dfsbuild.images.trivialfs.records import (
    EXT2_AT,
    MAX_METADATA,
    Entry,
    HeaderError,
    ext2_label,
    parse_header,
)

FMT = "trivialfs"
CHUNK = 1 << 20


class TrivialReader(FsReader):
    format = FMT

    def __init__(self, src: ByteSource) -> None:
        self.src = src.named(FMT)
        want = 1 << 16
        while True:                       # read more only while the metadata goes on
            head = self.src.read_upto(0, want)
            try:
                self.header = parse_header(head)
            except HeaderError as exc:
                raise FormatError(FMT, exc.offset, str(exc)) from None
            if self.header.terminator or want >= min(self.src.size, MAX_METADATA):
                break
            want *= 4
        self.problem_list = [Problem(o, m) for o, m in self.header.problems]
        self._dirs: dict[str, list[FsEntry]] = {"": []}
        self._files: dict[str, FsEntry] = {}
        self._entries: dict[int, Entry] = {}
        self._holders: dict[int, FsEntry] = {}      # ident -> the entry that holds the data
        self._build()

    def _add_dirs(self, path: str, at: int) -> bool:
        """Make every parent directory of ``path``; False if a file is in the way."""
        parts = path.split("/")[:-1]
        for i in range(len(parts)):
            d = "/".join(parts[:i + 1])
            if d in self._files:
                self.problem_list.append(Problem(at, f"{path!r} needs {d!r} to be a "
                                                 "directory, and an earlier entry is a file "
                                                 "of that name"))
                return False
            if d not in self._dirs:
                parent = "/".join(parts[:i])
                entry = FsEntry(d, parts[i], "dir", 0o755, ident=-(len(self._dirs) + 1))
                self._dirs[parent].append(entry)
                self._dirs[d] = []
        return True

    def _build(self) -> None:
        end = self.header.end
        size = self.src.size
        spans: list[tuple[int, int, int]] = []
        for e in self.header.entries:
            if e.size and e.start + e.size > size:
                self.problem_list.append(Problem(e.offset, f"entry {e.names[0]!r}: bytes "
                                                 f"{e.start}..{e.start + e.size} pass the end "
                                                 f"of the volume ({size} bytes)"))
            elif e.size and e.start < end:
                self.problem_list.append(Problem(e.offset, f"entry {e.names[0]!r}: starts at "
                                                 f"{e.start}, inside the metadata (which ends "
                                                 f"at {end})"))
            if e.size:
                spans.append((e.start, e.start + e.size, e.offset))
            first: FsEntry | None = None
            offsets = [e.offset, *e.link_offsets]
            for raw, at in zip(e.names, offsets, strict=True):
                name = raw.decode("utf-8", "surrogateescape")
                unusable = any(p in ("", ".", "..") for p in name.split("/"))
                if not unusable and (name in self._files or name in self._dirs):
                    self.problem_list.append(Problem(at, f"{name!r} is named again; the first "
                                                     "entry wins"))
                    continue
                parent, _, leaf = name.rpartition("/")
                if unusable:
                    # Listed whole at the top, so that extract's guard names and refuses it.
                    self.problem_list.append(Problem(at, f"{name!r} is not a usable path (an "
                                                     "empty, '.' or '..' component)"))
                    parent, leaf = "", name
                elif not self._add_dirs(name, at):
                    parent, leaf = "", name
                mode = 0o644 if e.mode is None else e.mode & 0o7777
                extra = (("start", e.start), ("size_on_disk", e.size),
                         ("mtime", e.mtime), ("entry_offset", at))
                if first is None:
                    item = FsEntry(name, leaf, "file", mode, e.size, ident=at, extra=extra)
                    first = item
                    self._entries[at] = e
                    self._holders[at] = item
                else:
                    item = FsEntry(name, leaf, "hardlink", mode, e.size, ident=at,
                                   link_ident=first.ident, extra=extra)
                self._files[name] = item
                self._dirs[parent].append(item)
        spans.sort()
        for (a0, a1, at), (b0, b1, bt) in itertools.pairwise(spans):
            if b0 < a1 and (a0, a1) != (b0, b1):
                self.problem_list.append(Problem(bt, f"bytes {b0}..{b1} overlap the entry at "
                                                 f"{at} ({a0}..{a1})"))

    # -- the reader contract -------------------------------------------------------------
    def root(self) -> FsEntry:
        return FsEntry("", "", "dir", 0o755, ident=0)

    def children(self, directory: FsEntry) -> list[FsEntry]:
        return list(self._dirs.get(directory.path, []))

    def resolve(self, entry: FsEntry) -> FsEntry:
        if entry.kind != "hardlink":
            return entry
        holder = self._holders.get(entry.link_ident or -1)
        if holder is not None:
            return holder
        raise FormatError(FMT, entry.ident, f"{entry.path!r}: no entry holds its data")

    def extents(self, entry: FsEntry) -> list[tuple[int, int]]:
        e = self._entries.get(self.resolve(entry).ident)
        if e is None:
            raise FormatError(FMT, entry.ident, f"{entry.path!r} is not a file")
        if e.size and e.start + e.size > self.src.size:
            raise FormatError(FMT, e.offset, f"{entry.path!r}: bytes {e.start}.."
                              f"{e.start + e.size} pass the end of the volume")
        return [(e.start, e.size)] if e.size else []

    def data(self, entry: FsEntry) -> Iterator[bytes]:
        for start, length in self.extents(entry):
            for pos in range(start, start + length, CHUNK):
                yield self.src.read(pos, min(CHUNK, start + length - pos))

    def problems(self) -> list[Problem]:
        return list(self.problem_list)

    def identity(self) -> dict[str, str]:
        """blkid knows a TrivialFS only by the ext2 superblock that carries its label."""
        h = self.header
        label = ext2_label(self.src.read_upto(EXT2_AT, 1024))
        if label is None or label[1] != h.uuid:
            return {}
        return {"type": "ext2", "uuid": h.uuid, **({"label": label[0]} if label[0] else {})}

    def summary(self) -> dict[str, object]:
        h = self.header
        label = ext2_label(self.src.read_upto(EXT2_AT, 1024))
        return {
            "uuid": h.uuid,
            "compatible_version": h.compatible,
            "label": label[0] if label is not None and label[1] == h.uuid else None,
            "label_fs": "ext2" if label is not None and label[1] == h.uuid else None,
            "entry_lines": len(h.entries),
            "metadata_bytes": h.end,
            "terminator": h.terminator.decode("utf-8", "replace"),
            "size": self.src.size,
        }

    def lookup_name(self, name: bytes) -> Entry | None:
        """The first entry naming ``name`` exactly (the design's lookup, names as bytes)."""
        for e in self.header.entries:
            if name in e.names:
                return e
        return None

"""romfs reader: tolerant of any bytes, every problem a FormatError with its offset.

Reads what the kernel reads (fs/romfs/super.c): the superblock, then header chains limited to
the superblock's size. Every chain is walked with a visited set, so loops end in an error.
"""

from __future__ import annotations

from collections.abc import Iterator

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader, Problem
from dfsbuild.images.romfs.records import (
    CHECKSUM_SPAN,
    DIRECTORY,
    HARDLINK,
    REGULAR,
    SYMLINK,
    TYPE_NAMES,
    RomfsHeader,
    RomfsSuperblock,
    checksum,
    pad16,
)

FMT = "romfs"
MAX_NAME_READ = 1024
MAX_LINK_HOPS = 64
CHUNK = 1 << 20
# What the kernel shows for each type (fs/romfs/super.c romfs_modemap, plus the exec bit).
KERNEL_MODES = (0, 0o644, 0o644, 0o777, 0o600, 0o600, 0o644, 0o644)


class RomfsReader(FsReader):
    """A romfs image: the whole of ``src``."""

    format = FMT

    def __init__(self, src: ByteSource) -> None:
        self.src = src.named(FMT)
        self.available = self.src.size
        sb = RomfsSuperblock.unpack(self.src.read(0, 16))
        self.full_size, self.stored_checksum = sb.full_size, sb.checksum
        if self.full_size < 16:
            raise FormatError(FMT, 8, f"full size {self.full_size} is smaller than the "
                              "superblock")
        if self.full_size > self.available:
            raise FormatError(FMT, 8, f"full size {self.full_size} passes the end of the "
                              f"image ({self.available} bytes): truncated?")
        self.fs = self.src.sub(0, self.full_size)
        raw = self._read_name(16)
        self.volume = raw.decode("utf-8", "surrogateescape")
        self.root_offset = 16 + pad16(len(raw) + 1)
        self._root = self.entry_at(self.root_offset, "", "")

    # -- low level ------------------------------------------------------------------------------
    def _read_name(self, offset: int) -> bytes:
        name = b""
        pos = offset
        while True:
            chunk = self.src.read(pos, 16)
            nul = chunk.find(b"\0")
            if nul >= 0:
                return name + chunk[:nul]
            name += chunk
            pos += 16
            if len(name) >= MAX_NAME_READ:
                raise FormatError(FMT, offset, f"no NUL within {MAX_NAME_READ} bytes of a name")

    def header(self, offset: int) -> tuple[RomfsHeader, bytes, int]:
        """The header at ``offset``, its raw name and the offset of its data."""
        if offset & 15:
            raise FormatError(FMT, offset, "header offset is not 16-byte aligned")
        header = RomfsHeader.unpack(self.fs.read(offset, 16))
        raw = self._read_name(offset + 16)
        data_offset = offset + 16 + pad16(len(raw) + 1)
        if data_offset > self.full_size:
            raise FormatError(FMT, offset, "name passes the end of the filesystem")
        if header.type in (REGULAR, SYMLINK) and data_offset + header.size_bytes > self.full_size:
            raise FormatError(FMT, offset + 8, f"data of {header.size_bytes} bytes at "
                              f"{data_offset} passes the end of the filesystem "
                              f"({self.full_size} bytes)")
        return header, raw, data_offset

    def entry_at(self, offset: int, parent: str = "", name: str | None = None) -> FsEntry:
        header, raw, data_offset = self.header(offset)
        if name is None:
            name = raw.decode("utf-8", "surrogateescape")
        mode = KERNEL_MODES[header.type]
        if header.executable and header.type in (DIRECTORY, REGULAR):
            mode |= 0o111
        kind = TYPE_NAMES[header.type]
        extra: tuple[tuple[str, object], ...] = (("offset", offset), ("spec", header.spec),
                                                 ("executable", header.executable),
                                                 ("data_offset", data_offset),
                                                 ("next", header.next_offset))
        link = None
        major = minor = 0
        target = ""
        size = header.size_bytes
        if header.type == HARDLINK:
            link = self._resolve_offset(offset)
            size = self.header(link)[0].size_bytes
        elif kind in ("char", "block"):
            major, minor = header.spec >> 16, header.spec & 0xFFFF
        elif header.type == SYMLINK:
            target = self.fs.read(data_offset, header.size_bytes).decode("utf-8",
                                                                          "surrogateescape")
        path = f"{parent}/{name}" if parent else name
        return FsEntry(path, name, kind, mode, size, offset, link, target, major, minor, extra)

    def _resolve_offset(self, offset: int) -> int:
        seen = {offset}
        header = self.header(offset)[0]
        while header.type == HARDLINK:
            offset = header.spec
            if offset in seen or len(seen) > MAX_LINK_HOPS:
                raise FormatError(FMT, offset, "hard links form a loop")
            seen.add(offset)
            header = self.header(offset)[0]
        return offset

    # -- FsReader --------------------------------------------------------------------------------
    def root(self) -> FsEntry:
        return self._root

    def resolve(self, entry: FsEntry) -> FsEntry:
        if entry.link_ident is None:
            return entry
        return self.entry_at(entry.link_ident, entry.path.rpartition("/")[0], entry.name)

    def list_offsets(self, first: int) -> Iterator[int]:
        """Header offsets of one directory's ``next`` chain, "." and ".." included."""
        seen: set[int] = set()
        offset = first
        while offset:
            if offset in seen:
                raise FormatError(FMT, offset, "the 'next' chain of a directory loops")
            if offset >= self.full_size:
                raise FormatError(FMT, offset, "'next' points past the end of the filesystem")
            seen.add(offset)
            yield offset
            offset = self.header(offset)[0].next_offset

    def children(self, directory: FsEntry) -> list[FsEntry]:
        target = self.resolve(directory)
        if target.kind != "dir":
            raise FormatError(FMT, target.ident, f"{directory.path!r} is a {target.kind}, "
                              "not a directory")
        first = self.header(target.ident)[0].spec
        out = []
        for offset in self.list_offsets(first):
            e = self.entry_at(offset, directory.path)
            if e.name not in (".", ".."):
                out.append(e)
        return out

    def data(self, entry: FsEntry) -> Iterator[bytes]:
        e = self.resolve(entry)
        header, _, data_offset = self.header(e.ident)
        if header.type not in (REGULAR, SYMLINK):
            raise FormatError(FMT, e.ident, f"{e.path!r} is a {e.kind}, which has no data")
        pos, left = data_offset, header.size_bytes
        while left:
            n = min(left, CHUNK)
            yield self.fs.read(pos, n)
            pos += n
            left -= n

    def extents(self, entry: FsEntry) -> list[tuple[int, int]]:
        e = self.resolve(entry)
        header, _, data_offset = self.header(e.ident)
        if header.type != REGULAR:
            raise FormatError(FMT, e.ident, f"{e.path!r} is a {e.kind}, not a regular file")
        return [(data_offset, header.size_bytes)] if header.size_bytes else []

    def read(self, entry: FsEntry) -> bytes:
        return b"".join(self.data(entry))

    def problems(self) -> list[Problem]:
        """Every checksum and structural problem found, with its offset."""
        problems = []
        first = self.fs.read(0, min(CHECKSUM_SPAN, self.full_size) & ~3)
        if checksum(first) != 0:
            problems.append(Problem(12, "superblock checksum does not sum to zero over the "
                                    f"first {len(first)} bytes"))
        try:
            seen: set[int] = set()
            dirs = [self._root, *(e for e in self.walk() if e.kind == "dir")]
            for d in dirs:
                for offset in self.list_offsets(self.header(d.ident)[0].spec):
                    if offset in seen:
                        continue
                    seen.add(offset)
                    header, raw, data_offset = self.header(offset)
                    if checksum(self.fs.read(offset, data_offset - offset)) != 0:
                        name = raw.decode("utf-8", "surrogateescape")
                        problems.append(Problem(offset + 12, f"header checksum of {name!r} "
                                                "does not sum to zero"))
                    if header.type == HARDLINK:
                        self._resolve_offset(offset)
        except FormatError as exc:
            problems.append(Problem(exc.offset or 0, exc.message))
        return problems

    def identity(self) -> dict[str, str]:
        return {"type": "romfs", **({"label": self.volume} if self.volume else {})}

    def summary(self) -> dict[str, object]:
        return {
            "volume": self.volume,
            "full_size": self.full_size,
            "image_size": self.available,
            "checksum": f"0x{self.stored_checksum:08x}",
            "checksum_span": min(CHECKSUM_SPAN, self.full_size),
        }


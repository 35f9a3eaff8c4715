"""romfs reader: tolerant of any bytes, every problem a FormatError with its offset.

Reads what the kernel reads (fs/romfs/super.c): the superblock, then header chains limited to
the superblock's size. Every chain is walked with a visited set, so loops end in an error.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dfsbuild.errors import FormatError
from dfsbuild.formats.romfs import (
    CHECKSUM_SPAN,
    DIRECTORY,
    HARDLINK,
    MAGIC,
    REGULAR,
    SYMLINK,
    TYPE_NAMES,
    RomfsHeader,
    checksum,
    pad16,
)

FMT = "romfs"
MAX_NAME_READ = 1024
MAX_LINK_HOPS = 64
CHUNK = 1 << 20
# What the kernel shows for each type (fs/romfs/super.c romfs_modemap, plus the exec bit).
KERNEL_MODES = (0, 0o644, 0o644, 0o777, 0o600, 0o600, 0o644, 0o644)


@dataclass(frozen=True, slots=True)
class RomfsEntry:
    """One header as read."""

    offset: int
    name: str
    header: RomfsHeader
    data_offset: int
    name_span: int      # bytes of the padded name

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.header.type]

    @property
    def mode(self) -> int:
        base = KERNEL_MODES[self.header.type]
        if self.header.executable and self.header.type in (DIRECTORY, REGULAR):
            base |= 0o111
        return base


@dataclass(frozen=True, slots=True)
class Problem:
    offset: int
    message: str


class RomfsReader:
    """A romfs image inside ``f`` starting at byte ``base``."""

    def __init__(self, f: BinaryIO, base: int = 0, length: int | None = None) -> None:
        self.f = f
        self.base = base
        self.available = f.seek(0, 2) - base
        if length is not None:
            self.available = min(self.available, length)
        head = self._read(0, 16, bounded=False)
        if head[:8] != MAGIC:
            raise FormatError(FMT, 0, f"expected magic {MAGIC!r}, found {head[:8]!r}")
        self.full_size, self.stored_checksum = struct.unpack(">II", head[8:16])
        if self.full_size < 16:
            raise FormatError(FMT, 8, f"full size {self.full_size} is smaller than the "
                              "superblock")
        if self.full_size > self.available:
            raise FormatError(FMT, 8, f"full size {self.full_size} passes the end of the "
                              f"image ({self.available} bytes): truncated?")
        raw = self._read_name(16)
        self.volume = raw.decode("utf-8", "surrogateescape")
        self.root_offset = 16 + pad16(len(raw) + 1)
        self.root = self.entry(self.root_offset)

    # -- low level -------------------------------------------------------------------------
    def _read(self, offset: int, n: int, bounded: bool = True) -> bytes:
        limit = self.full_size if bounded else self.available
        if offset < 0 or offset + n > limit:
            raise FormatError(FMT, offset, f"{n} bytes at {offset} pass the end of the "
                              f"filesystem ({limit} bytes)")
        self.f.seek(self.base + offset)
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError(FMT, offset, "unexpected end of the image")
        return data

    def _read_name(self, offset: int) -> bytes:
        name = b""
        pos = offset
        while True:
            chunk = self._read(pos, 16, bounded=False)
            nul = chunk.find(b"\0")
            if nul >= 0:
                return name + chunk[:nul]
            name += chunk
            pos += 16
            if len(name) >= MAX_NAME_READ:
                raise FormatError(FMT, offset, f"no NUL within {MAX_NAME_READ} bytes of a name")

    def entry(self, offset: int) -> RomfsEntry:
        if offset & 15:
            raise FormatError(FMT, offset, "header offset is not 16-byte aligned")
        header = RomfsHeader.unpack(self._read(offset, 16))
        raw = self._read_name(offset + 16)
        span = pad16(len(raw) + 1)
        if offset + 16 + span > self.full_size:
            raise FormatError(FMT, offset, "name passes the end of the filesystem")
        data_offset = offset + 16 + span
        if header.type in (REGULAR, SYMLINK) and data_offset + header.size_bytes > self.full_size:
            raise FormatError(FMT, offset + 8, f"data of {header.size_bytes} bytes at "
                              f"{data_offset} passes the end of the filesystem "
                              f"({self.full_size} bytes)")
        return RomfsEntry(offset, raw.decode("utf-8", "surrogateescape"), header, data_offset,
                          span)

    # -- directories -----------------------------------------------------------------------
    def resolve(self, e: RomfsEntry) -> RomfsEntry:
        """Follow hard links to the header that holds the object."""
        seen = {e.offset}
        while e.header.type == HARDLINK:
            e = self.entry(e.header.spec)
            if e.offset in seen or len(seen) > MAX_LINK_HOPS:
                raise FormatError(FMT, e.offset, "hard links form a loop")
            seen.add(e.offset)
        return e

    def list_dir(self, d: RomfsEntry) -> list[RomfsEntry]:
        """The entries of directory ``d`` in stored order, "." and ".." included."""
        d = self.resolve(d)
        if d.header.type != DIRECTORY:
            raise FormatError(FMT, d.offset, f"{d.name!r} is a {d.type_name}, not a directory")
        out = []
        seen: set[int] = set()
        offset = d.header.spec
        while offset:
            if offset in seen:
                raise FormatError(FMT, offset, "the 'next' chain of a directory loops")
            if offset >= self.full_size:
                raise FormatError(FMT, offset, "'next' points past the end of the filesystem")
            seen.add(offset)
            e = self.entry(offset)
            out.append(e)
            offset = e.header.next_offset
        return out

    def children(self, d: RomfsEntry) -> list[RomfsEntry]:
        """Entries of ``d`` without "." and ".."."""
        return [e for e in self.list_dir(d) if e.name not in (".", "..")]

    def walk(self) -> Iterator[tuple[str, RomfsEntry]]:
        """Every entry below the root as (path, entry), pre-order; directories bounded."""
        visited: set[int] = set()

        def rec(d: RomfsEntry, prefix: str) -> Iterator[tuple[str, RomfsEntry]]:
            target = self.resolve(d)
            if target.offset in visited:
                raise FormatError(FMT, d.offset, "a directory contains itself")
            visited.add(target.offset)
            for e in self.children(target):
                path = f"{prefix}{e.name}"
                yield path, e
                if e.header.type == DIRECTORY:
                    yield from rec(e, path + "/")

        yield from rec(self.root, "")

    def lookup(self, path: str) -> RomfsEntry:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            for e in self.children(node):
                if e.name == part:
                    node = e
                    break
            else:
                raise FileNotFoundError(path)
        return node

    # -- data ------------------------------------------------------------------------------
    def iter_data(self, e: RomfsEntry) -> Iterator[bytes]:
        e = self.resolve(e)
        if e.header.type not in (REGULAR, SYMLINK):
            raise FormatError(FMT, e.offset, f"{e.name!r} is a {e.type_name}, which has no data")
        pos, left = e.data_offset, e.header.size_bytes
        while left:
            n = min(left, CHUNK)
            yield self._read(pos, n)
            pos += n
            left -= n

    def read(self, e: RomfsEntry) -> bytes:
        return b"".join(self.iter_data(e))

    # -- checks ----------------------------------------------------------------------------
    def verify(self) -> list[Problem]:
        """Every checksum and structural problem found, with its offset."""
        problems = []
        first = self._read(0, min(CHECKSUM_SPAN, self.full_size) & ~3)
        if checksum(first) != 0:
            problems.append(Problem(12, "superblock checksum does not sum to zero over the "
                                    f"first {len(first)} bytes"))
        try:
            seen: set[int] = set()
            for e in [self.root, *(e for _, e in self.walk())]:
                for item in self.list_dir(e) if e.header.type == DIRECTORY else [e]:
                    if item.offset in seen:
                        continue
                    seen.add(item.offset)
                    covered = self._read(item.offset, 16 + item.name_span)
                    if checksum(covered) != 0:
                        problems.append(Problem(item.offset + 12, f"header checksum of "
                                                f"{item.name!r} does not sum to zero"))
                    if item.header.type == HARDLINK:
                        self.resolve(item)
        except FormatError as exc:
            problems.append(Problem(exc.offset or 0, exc.message))
        return problems

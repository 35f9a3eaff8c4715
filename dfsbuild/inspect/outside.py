"""The bytes of a disk outside its partitions and its table's own structures: boot loaders
at fixed offsets (regions), boot code, leftovers. ``diff`` compares them between two disks,
``inspect`` and ``ls`` show where a disk holds data there. Holes of the image file are
skipped (a 16 GiB card with 100 MiB used reads in a moment)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from dfsbuild.fileio.copy import data_extents
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables.base import DiskTable

BLOCK = 1 << 16
SECTOR = 512


def gaps(tables: Sequence[DiskTable], size: int) -> list[tuple[int, int]]:
    """[start, end) of ``[0, size)`` outside every partition and table structure of
    ``tables`` and past each table's boot code."""
    spans = sorted([*((p.start_lba * t.sector_size, (p.last_lba + 1) * t.sector_size)
                      for t in tables for p in t.partitions),
                    *((at, at + n) for t in tables for at, n in t.structures),
                    *((0, t.boot_code) for t in tables if t.boot_code)])
    out: list[tuple[int, int]] = []
    pos = 0
    for s, e in spans:
        if s > pos:
            out.append((pos, min(s, size)))
        pos = max(pos, e)
        if pos >= size:
            break
    if pos < size:
        out.append((pos, size))
    return [(s, e) for s, e in out if e > s]


def runs(sources: Sequence[ByteSource], where: list[tuple[int, int]],
         differ: Callable[[list[bytes]], bool]) -> Iterator[tuple[int, int]]:
    """[start, end) runs of 512-byte sectors within ``where`` for which ``differ`` (given
    each source's bytes there) is true, merged; blocks that are a hole in every source are
    not read."""
    run: list[int] | None = None
    for start, end in where:
        for at in _blocks(sources, start, end):
            n = min(BLOCK, end - at)
            data = [src.read(at, n) for src in sources]
            if not differ(data):
                continue
            for off in range(0, n, SECTOR):
                if not differ([d[off:off + SECTOR] for d in data]):
                    continue
                lo, hi = at + off, at + min(off + SECTOR, n)
                if run is not None and run[1] == lo:
                    run[1] = hi
                    continue
                if run is not None:
                    yield run[0], run[1]
                run = [lo, hi]
    if run is not None:
        yield run[0], run[1]


def _blocks(sources: Sequence[ByteSource], start: int, end: int) -> Iterator[int]:
    spans = sorted(s for src in sources for s in _data(src, start, end))
    at = start
    for s, e in spans:
        at = max(at, s - (s - start) % BLOCK)
        while at < e:
            yield at
            at += BLOCK


def _data(src: ByteSource, start: int, end: int) -> list[tuple[int, int]]:
    """Where the file under ``src`` holds data in ``[start, end)`` (all of it when it
    cannot say)."""
    try:
        fd = src.f.fileno()
    except (AttributeError, OSError, ValueError):
        return [(start, end)]
    out = []
    kept = os.lseek(fd, 0, os.SEEK_CUR)    # the reader's buffered file keeps its offset
    try:
        for s, e in data_extents(fd, src.base + end):
            s, e = max(s - src.base, start), min(e - src.base, end)
            if e > s:
                out.append((s, e))
    finally:
        os.lseek(fd, kept, os.SEEK_SET)
    return out


def data_outside(src: ByteSource, table: DiskTable) -> list[tuple[int, int]]:
    """Where a disk holds non-zero bytes outside its partitions and table structures."""
    return list(runs([src], gaps([table], src.size), lambda d: any(d[0])))

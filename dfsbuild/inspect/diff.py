"""``dfsbuild diff A B``: what differs between two images or two disks.

Disks, the whole of them: the disk's size, its id, its table's fields, the boot code (the
first 440 bytes of an MBR or protective MBR), and every byte outside the partitions (regions
such as a boot loader at 8 KiB, table structures; holes both files share are skipped); then
partitions matched by name where the table stores names, else by number, each added,
removed, moved (start), resized, retyped, renumbered, re-flagged (bootable) or with other
attributes; then the files of every partition both disks hold with a filesystem dfsbuild
reads. Filesystems: files by path, added, removed or changed (kind, size, mode, link target,
device numbers, contents by sha256).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from dfsbuild.fileio.copy import data_extents
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader
from dfsbuild.inspect.detect import filesystem_type, open_filesystem
from dfsbuild.tables.base import DiskPartition, DiskTable


def _key(p: DiskPartition) -> str:
    return p.name or str(p.number)


def disk_changes(a_src: ByteSource, a: DiskTable, b_src: ByteSource,
                 b: DiskTable) -> list[dict[str, object]]:
    """What differs in the disks themselves (``partition`` None): size, id, table fields,
    boot code, and the byte ranges outside every partition."""
    found: list[dict[str, object]] = []
    for change, x, y in (("size", a_src.size, b_src.size), ("disk id", a.id, b.id)):
        if x != y:
            found.append({"partition": None, "change": change, "a": x, "b": y})
    for name in sorted({*a.extra, *b.extra}):
        if a.extra.get(name) != b.extra.get(name):
            found.append({"partition": None, "change": f"table {name}",
                          "a": a.extra.get(name), "b": b.extra.get(name)})
    if a.label == b.label and a.label in ("dos", "gpt") and \
            a_src.read_upto(0, BOOT_CODE) != b_src.read_upto(0, BOOT_CODE):
        found.append({"partition": None, "change": "boot code"})
    for start, end in _outside(a_src, a, b_src, b):
        found.append({"partition": None, "change": "bytes", "at": [start, end]})
    return found


BOOT_CODE = 440          # bytes of boot code before an MBR's disk signature
_BLOCK = 1 << 16


def _outside(a_src: ByteSource, a: DiskTable, b_src: ByteSource,
             b: DiskTable) -> Iterator[tuple[int, int]]:
    """[start, end) ranges outside every partition and table structure of either disk (past
    the boot code) whose bytes differ, to the 512-byte sector."""
    spans = sorted([*((p.start_lba * t.sector_size, (p.last_lba + 1) * t.sector_size)
                      for t in (a, b) for p in t.partitions),
                    *((at, at + n) for t in (a, b) for at, n in t.structures)])
    end = min(a_src.size, b_src.size)
    pos = BOOT_CODE
    gaps: list[tuple[int, int]] = []
    for s, e in spans:
        if s > pos:
            gaps.append((pos, min(s, end)))
        pos = max(pos, e)
    if pos < end:
        gaps.append((pos, end))
    run: list[int] | None = None
    for gap_start, gap_end in gaps:
        for at in _data_blocks(a_src, b_src, gap_start, gap_end):
            n = min(_BLOCK, gap_end - at)
            x, y = a_src.read(at, n), b_src.read(at, n)
            if x == y:
                continue
            for off in range(0, n, 512):
                if x[off:off + 512] == y[off:off + 512]:
                    continue
                lo, hi = at + off, at + min(off + 512, n)
                if run is not None and run[1] == lo:
                    run[1] = hi
                else:
                    if run is not None:
                        yield run[0], run[1]
                    run = [lo, hi]
    if run is not None:
        yield run[0], run[1]


def _data_blocks(a_src: ByteSource, b_src: ByteSource, start: int,
                 end: int) -> Iterator[int]:
    """Offsets of the blocks of ``[start, end)`` where either file may hold data (blocks
    that are a hole in both are skipped)."""
    spans = [*_data(a_src, start, end), *_data(b_src, start, end)]
    spans.sort()
    at = start
    for s, e in spans:
        at = max(at, s - (s - start) % _BLOCK)
        while at < e:
            yield at
            at += _BLOCK


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


def table_changes(a: DiskTable, b: DiskTable) -> list[dict[str, object]]:
    """One object per partition that differs: ``partition``, ``change`` and the fields."""
    old = {_key(p): p for p in a.partitions}
    new = {_key(p): p for p in b.partitions}
    found: list[dict[str, object]] = []
    if a.label != b.label:
        found.append({"partition": None, "change": "table", "a": a.label, "b": b.label})
    for key in [*old, *(k for k in new if k not in old)]:
        p, q = old.get(key), new.get(key)
        if p is None or q is None:
            found.append({"partition": key, "change": "added" if p is None else "removed"})
            continue
        for change, x, y in (("moved", p.start_lba, q.start_lba),
                             ("resized", p.size_sectors, q.size_sectors),
                             ("retyped", p.type, q.type), ("renumbered", p.number, q.number),
                             ("bootable", p.bootable, q.bootable)):
            if x != y:
                found.append({"partition": key, "change": change, "a": x, "b": y})
        for name in sorted({*p.extra, *q.extra}):
            if p.extra.get(name) != q.extra.get(name):
                found.append({"partition": key, "change": name, "a": p.extra.get(name),
                              "b": q.extra.get(name)})
    return found


def _files(reader: FsReader) -> dict[str, FsEntry]:
    return {e.path: e for e in reader.walk() if e.path}


def _sha(reader: FsReader, entry: FsEntry) -> str:
    h = hashlib.sha256()
    for chunk in reader.data(entry):
        h.update(chunk)
    return h.hexdigest()


def file_changes(a: FsReader, b: FsReader) -> Iterator[dict[str, object]]:
    """Per path: added, removed, or changed with the fields that differ."""
    old, new = _files(a), _files(b)
    for path in sorted({*old, *new}, key=lambda s: s.encode("utf-8", "surrogateescape")):
        e, f = old.get(path), new.get(path)
        if e is None:
            assert f is not None
            yield {"path": path, "change": "added", "kind": f.kind}
            continue
        if f is None:
            yield {"path": path, "change": "removed", "kind": e.kind}
            continue
        fields: dict[str, object] = {}
        e, f = a.resolve(e), b.resolve(f)
        for name, x, y in (("kind", e.kind, f.kind), ("size", e.size_bytes, f.size_bytes),
                           ("mode", f"{e.mode:04o}", f"{f.mode:04o}"),
                           ("target", e.target, f.target),
                           ("device", (e.major, e.minor), (f.major, f.minor))):
            if x != y:
                fields[name] = [x, y]
        if e.kind == f.kind == "file" and "size" not in fields and _sha(a, e) != _sha(b, f):
            fields["contents"] = True
        if fields:
            yield {"path": path, "change": "changed", **fields}


def readable(src: ByteSource) -> bool:
    """True when a filesystem dfsbuild reads starts here."""
    return filesystem_type(src) is not None


def partition_files(a_src: ByteSource, a: DiskTable, b_src: ByteSource, b: DiskTable,
                    a_name: str, b_name: str) -> Iterator[dict[str, object]]:
    """File changes of every partition both disks hold (matched as ``table_changes``)."""
    new = {_key(p): p for p in b.partitions}
    for p in a.partitions:
        q = new.get(_key(p))
        if q is None:
            continue
        pa = a_src.sub(p.start_lba * a.sector_size, p.size_sectors * a.sector_size)
        pb = b_src.sub(q.start_lba * b.sector_size, q.size_sectors * b.sector_size)
        if not (readable(pa) and readable(pb)):
            continue
        ra = open_filesystem(pa, f"{a_name}:{p.number}", True)
        rb = open_filesystem(pb, f"{b_name}:{q.number}", True)
        for change in file_changes(ra, rb):
            yield {"partition": _key(p), **change}

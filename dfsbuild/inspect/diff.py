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
from collections.abc import Iterator

from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader
from dfsbuild.inspect.detect import filesystem_type, open_filesystem
from dfsbuild.inspect.outside import gaps, runs
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
    if a.boot_code and a.boot_code == b.boot_code and \
            a_src.read_upto(0, a.boot_code) != b_src.read_upto(0, b.boot_code):
        found.append({"partition": None, "change": "boot code"})
    where = gaps([a, b], min(a_src.size, b_src.size))
    for start, end in runs([a_src, b_src], where, lambda d: d[0] != d[1]):
        found.append({"partition": None, "change": "bytes", "at": [start, end]})
    return found


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

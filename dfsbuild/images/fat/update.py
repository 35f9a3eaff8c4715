"""Replacing and removing one file of a FAT in place ("upgrading is copying a file").

Order of writes, so that an interruption never leaves a file pointing at half-written data:
the new contents go into free clusters (the file's own clusters are never overwritten: its
reserve right after it, or the free run right before it, or the first free run that holds
it), then every FAT copy links the new chain, then the directory entry switches to it, then
the old chain is freed and FSInfo updated. An interruption before the switch leaves the old
file whole (at worst clusters in use by no file, which fsck.fat reclaims); after it, the new
file whole. Each step is flushed to the disk before the next.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import BinaryIO

from dfsbuild.errors import DfsbuildError, FormatError, InputError
from dfsbuild.fileio.copy import copy_range
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.fat.names import ShortNames, fits_short, fold, name_problem
from dfsbuild.images.fat.read import FatReader, Slot
from dfsbuild.images.fat.records import (
    ATTR_ARCHIVE,
    ATTR_DIR,
    DELETED,
    ENTRY,
    DirEntry,
    FsInfo,
    eoc,
    fat_datetime,
    lfn_entries,
    read_entry,
    write_entry,
)


class UpdateError(DfsbuildError):
    pass


class FatUpdater:
    """A FAT open for writing: ``[base, base + size)`` of the file ``f`` (opened r+b)."""

    def __init__(self, f: BinaryIO, src: ByteSource, where: str) -> None:
        self.fd = f.fileno()
        self.base = src.base
        self.where = where
        self.reader = FatReader(src)
        g = self.g = self.reader.geometry
        claimed = g.total_sectors * g.sector_size
        if claimed > src.size:
            # The kernel writes through the partition's block device and cannot pass its
            # end; a FAT that claims more than its region would have us write past it.
            raise UpdateError(f"{where}: the boot sector counts {g.total_sectors} sectors of "
                              f"{g.sector_size} bytes ({claimed} bytes), but the filesystem's "
                              f"region holds {src.size} bytes; nothing changed",
                              "the boot sector or the partition table is wrong: check both "
                              "(dfsbuild inspect, fsck.fat -n)")
        self.end = claimed                      # no byte is written at or past this offset
        self.fat = bytearray(self.reader.src.read(g.fat_start, g.fat_sectors * g.sector_size))
        self.dirty: set[int] = set()            # FAT sectors changed and not yet written
        self.notes: list[str] = []              # what was left alone, for the report

    # -- low level ---------------------------------------------------------------------------
    def _bounded(self, offset: int, n: int) -> int:
        """The file offset of ``n`` bytes at ``offset`` of the filesystem; every write asks
        here first, so none passes the end of the filesystem's region."""
        if offset < 0 or n < 0 or offset + n > self.end:
            raise FormatError("fat", offset, f"a write of {n} bytes would pass the end of the "
                              f"filesystem ({self.end} bytes)")
        return self.base + offset

    def _pwrite(self, offset: int, data: bytes) -> None:
        os.pwrite(self.fd, data, self._bounded(offset, len(data)))

    def _sync(self) -> None:
        os.fsync(self.fd)

    def _set(self, cluster: int, value: int) -> None:
        write_entry(self.fat, self.g.bits, cluster, value)
        at = cluster * self.g.bits // 8
        self.dirty.update({at // self.g.sector_size, (at + 1) // self.g.sector_size})

    def _flush_fat(self) -> None:
        g = self.g
        for sector in sorted(self.dirty):
            data = bytes(self.fat[sector * g.sector_size:(sector + 1) * g.sector_size])
            for copy in range(g.fats):
                self._pwrite(g.fat_start + (copy * g.fat_sectors + sector) * g.sector_size, data)
        self.dirty.clear()
        self._sync()

    def free_runs(self) -> Iterator[tuple[int, int]]:
        start = None
        for c in range(2, self.g.clusters + 2):
            if read_entry(self.fat, self.g.bits, c) == 0:
                if start is None:
                    start = c
            elif start is not None:
                yield start, c - start
                start = None
        if start is not None:
            yield start, self.g.clusters + 2 - start

    def _link(self, clusters: list[int]) -> None:
        for a, b in itertools.pairwise(clusters):
            self._set(a, b)
        if clusters:
            self._set(clusters[-1], eoc(self.g.bits))

    def _update_fsinfo(self) -> None:
        b = self.reader.boot
        if self.g.bits != 32 or not b.fsinfo_sector:
            return
        free_runs = list(self.free_runs())
        free = sum(n for _, n in free_runs)
        nxt = free_runs[-1][0] if free_runs else 0xFFFFFFFF
        at = b.fsinfo_sector * self.g.sector_size
        # Only a sector that is an FSInfo (its three signatures, inside the reserved area) is
        # rewritten, as the kernel does: a hostile BPB may point at a FAT sector.
        if b.fsinfo_sector >= b.reserved or self.reader.fsinfo() is None:
            self.notes.append(f"FSInfo not updated: sector {b.fsinfo_sector} named by the "
                              "boot sector is not an FSInfo sector")
            return
        self._pwrite(at, FsInfo(free, nxt).pack(self.g.sector_size)[:512])
        self._sync()

    # -- placing -----------------------------------------------------------------------------
    def _choose(self, need: int, old: list[int], fragment: bool) -> list[int]:
        if need == 0:
            return []
        runs = list(self.free_runs())
        if old:
            after = old[-1] + 1
            for start, count in runs:
                if start == after and count >= need:
                    return list(range(start, start + need))          # its reserve
                if start + count == old[0] and count >= need:
                    return list(range(old[0] - need, old[0]))        # the run before it
        for start, count in runs:
            if count >= need:
                return list(range(start, start + need))
        free = sum(n for _, n in runs)
        if fragment and free >= need:
            out: list[int] = []
            for start, count in runs:
                out.extend(range(start, start + min(count, need - len(out))))
                if len(out) == need:
                    return out
        cb = self.g.cluster_bytes
        if free >= need:
            raise UpdateError(f"{self.where}: no run of {need} free clusters ({need * cb} "
                              f"bytes) in one piece; {free} clusters are free in pieces",
                              "pass --fragment to allow a fragmented file, or give the file a "
                              "reserve in the layout")
        raise UpdateError(f"{self.where}: {need} clusters ({need * cb} bytes) needed, "
                          f"{free} free (the old contents stay until the new are written)",
                          f"give the image room where it is made: free = \"{_mib(need * cb)}\" "
                          f"in its layout (mkfs: --free {_mib(need * cb)}) with size = "
                          "\"auto\", or a larger size")

    def _write_data(self, clusters: list[int], source: str, size: int) -> None:
        g = self.g
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"{source}: cannot open: {exc.strerror}") from None
        try:
            done = 0
            for start, count in _runs(clusters):
                n = min(count * g.cluster_bytes, size - done)
                at = self._bounded(g.cluster_offset(start), count * g.cluster_bytes)
                copy_range(src, self.fd, n, at, source, src_offset=done, last=done + n == size)
                done += n
            slack = len(clusters) * g.cluster_bytes - size
            if slack:
                self._pwrite(g.cluster_offset(clusters[-1]) + g.cluster_bytes - slack,
                             bytes(slack))
        finally:
            os.close(src)
        self._sync()

    # -- directories -------------------------------------------------------------------------
    def _directory(self, path: str) -> tuple[int, list[Slot]]:
        if not path:
            cluster = self.reader.boot.root_cluster if self.g.bits == 32 else 0
            return cluster, self.reader.slots(cluster)
        try:
            entry = self.reader.lookup(path)
        except FileNotFoundError:
            raise UpdateError(f"{self.where}: no directory {path!r}") from None
        if entry.kind != "dir":
            raise UpdateError(f"{self.where}: {path!r} is not a directory")
        first = dict(entry.extra).get("cluster")
        assert isinstance(first, int)
        return first, self.reader.slots(first)

    def _find(self, slots: list[Slot], leaf: str) -> Slot | None:
        for s in slots:
            if fold(s.name) == fold(leaf):
                return s
        return None

    def _free_slots(self, cluster: int, count: int) -> int | None:
        """Byte offset of ``count`` consecutive free entries in the directory, else None.
        Entries never straddle two pieces of a directory: when the free tail of one piece is
        too short and another piece follows, that tail is marked deleted (so the end mark
        moves on) and the entries go at the start of the next piece."""
        regions = self.reader.dir_regions(cluster)
        need = count * ENTRY
        for index, (start, length) in enumerate(regions):
            data = self.reader.src.read(start, length)
            run_start, run = 0, 0
            for i in range(0, length, ENTRY):
                first = data[i]
                if first == 0:
                    at = run_start if run else start + i
                    if at + need <= start + length:
                        return at
                    if index + 1 == len(regions):
                        return None
                    for slot in range(start + i, start + length, ENTRY):
                        self._pwrite(slot, bytes([DELETED]))
                    self._sync()
                    nxt_start, nxt_length = regions[index + 1]
                    return nxt_start if need <= nxt_length else None
                if first == DELETED:
                    if run == 0:
                        run_start = start + i
                    run += 1
                    if run >= count:
                        return run_start
                else:
                    run = 0
        return None

    def _grow(self, cluster: int) -> None:
        """One more zeroed cluster at the end of a directory's chain."""
        if cluster == 0:
            raise UpdateError(f"{self.where}: the FAT{self.g.bits} root directory is full "
                              f"({self.g.root_entries} entries)")
        chain = self.reader.chain(cluster)
        new = self._choose(1, [], False)[0]
        self._pwrite(self.g.cluster_offset(new), bytes(self.g.cluster_bytes))
        self._sync()
        self._set(new, eoc(self.g.bits))
        self._set(chain[-1], new)
        self._flush_fat()

    # -- commands ----------------------------------------------------------------------------
    def put(self, path: str, source: str, time: int, fragment: bool = False) -> str:
        """Replace or create the file ``path`` with the contents of ``source``; says what
        happened."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise UpdateError(f"{self.where}: name a file, not the root")
        parent, leaf = "/".join(parts[:-1]), parts[-1]
        problem = name_problem(leaf)
        if problem is not None:
            raise UpdateError(f"{self.where}: {path!r}: the name {problem}")
        try:
            size = os.stat(source).st_size
        except OSError as exc:
            raise InputError(f"{source}: {exc.strerror}") from None
        if size > 0xFFFFFFFF:
            raise UpdateError(f"{source}: {size} bytes; a FAT file holds at most 4 GiB - 1")
        cluster, slots = self._directory(parent)
        old = self._find(slots, leaf)
        if old is not None and old.entry.attr & ATTR_DIR:
            raise UpdateError(f"{self.where}: {path!r} is a directory")
        old_chain = self._old_chain(old)
        need = -(-size // self.g.cluster_bytes)
        new = self._choose(need, old_chain, fragment)
        if new:
            self._write_data(new, source, size)
            self._link(new)
            self._flush_fat()
        date, clock, cs = fat_datetime(time)
        first = new[0] if new else 0
        if old is not None:
            e = old.entry
            entry = DirEntry(e.name, e.attr | ATTR_ARCHIVE, e.case, e.ctime_cs, e.ctime,
                             e.cdate, date, clock, date, first, size)
            self._pwrite(old.offset, entry.pack())
            self._sync()
            for c in old_chain:
                self._set(c, 0)
            self._flush_fat()
            what = "replaced"
        else:
            self._create(cluster, slots, leaf, DirEntry(b"", ATTR_ARCHIVE, 0, cs, clock, date,
                                                        date, clock, date, first, size))
            what = "created"
        self._update_fsinfo()
        return "; ".join([f"{what} {path} ({size} bytes, {len(_runs(new))} run(s) of "
                          "clusters)", *self.notes])

    def _old_chain(self, old: Slot | None) -> list[int]:
        if old is None or old.entry.cluster == 0:
            return []
        return self.reader.chain(old.entry.cluster)

    def _create(self, cluster: int, slots: list[Slot], leaf: str, entry: DirEntry) -> None:
        used = {s.entry.name for s in slots}
        fit = fits_short(leaf)
        name = fit if fit is not None and fit.short not in used else \
            ShortNames(used).generate(leaf)
        raw = b"".join(lfn_entries(name.long, name.short)) if name.long else b""
        raw += DirEntry(name.short, entry.attr, name.case, entry.ctime_cs, entry.ctime,
                        entry.cdate, entry.adate, entry.mtime, entry.mdate, entry.cluster,
                        entry.size_bytes).pack()
        count = len(raw) // ENTRY
        at = self._free_slots(cluster, count)
        if at is None:
            self._grow(cluster)
            self.reader = FatReader(self.reader.src)
            at = self._free_slots(cluster, count)
            if at is None:
                raise UpdateError(f"{self.where}: no room for {count} directory entries")
        self._pwrite(at, raw)
        self._sync()

    def rm(self, path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise UpdateError(f"{self.where}: name a file, not the root")
        _cluster, slots = self._directory("/".join(parts[:-1]))
        old = self._find(slots, parts[-1])
        if old is None:
            raise UpdateError(f"{self.where}: no file {path!r}")
        if old.entry.attr & ATTR_DIR:
            raise UpdateError(f"{self.where}: {path!r} is a directory; rm removes files")
        chain = self._old_chain(old)
        for at in range(old.first, old.offset + ENTRY, ENTRY):   # long names, then the entry
            self._pwrite(at, bytes([DELETED]))
        self._sync()
        for c in chain:
            self._set(c, 0)
        self._flush_fat()
        self._update_fsinfo()
        return "; ".join([f"removed {path} ({old.entry.size_bytes} bytes)", *self.notes])


def _runs(clusters: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in clusters:
        if out and out[-1][0] + out[-1][1] == c:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((c, 1))
    return out


def _mib(n: int) -> str:
    """``n`` bytes rounded up to whole MiB, as a layout size."""
    return f"{-(-n // (1 << 20))}MiB"

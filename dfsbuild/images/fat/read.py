"""FAT reader: tolerant of any bytes. The boot sector decides the geometry (the type from the
cluster count alone, formats.md §6.1); chains are walked with a visited set and a bound; long
names are used only when their checksum and order are right. What is wrong but readable is a
Problem with its byte offset; what cannot be read is a FormatError."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader, Problem
from dfsbuild.images.fat.geometry import Geometry
from dfsbuild.images.fat.names import display_short
from dfsbuild.images.fat.records import (
    ATTR_DIR,
    ATTR_LFN,
    ATTR_RO,
    ATTR_VOLUME,
    DELETED,
    ENTRY,
    FMT,
    NO_NAME,
    BootSector,
    DirEntry,
    FsInfo,
    bad_cluster,
    decode_datetime,
    fat_type,
    lfn_checksum,
    lfn_part,
    looks_like_fat,
    read_entry,
)

CHUNK = 1 << 20
MAX_DIR_ENTRIES = 65536 * 2        # entries one directory may have (FAT allows 65536)


@dataclass(frozen=True, slots=True)
class Slot:
    """One directory entry as found: where it is, the name it stands for, the entry."""

    offset: int                 # byte offset of the short entry in the filesystem
    first: int                  # byte offset of its first long-name entry (or the entry)
    name: str
    entry: DirEntry


class FatReader(FsReader):
    format = FMT

    def __init__(self, src: ByteSource) -> None:
        self.src = src.named(FMT)
        head = self.src.read_upto(0, 512)
        if not looks_like_fat(head):
            raise FormatError(FMT, 0, "no FAT boot sector (jump, BPB and 55 AA expected)")
        self.boot = b = BootSector.unpack(head)
        ss = b.bytes_per_sector
        if b.total_sectors == 0 or b.fat_sectors == 0:
            raise FormatError(FMT, 19, "total sectors or FAT size is zero")
        if (b.root_entries * ENTRY) % ss:
            raise FormatError(FMT, 17, f"{b.root_entries} root entries are not a whole "
                              "number of sectors")
        root_sectors = b.root_entries * ENTRY // ss
        meta = b.reserved + b.fats * b.fat_sectors + root_sectors
        if meta >= b.total_sectors:
            raise FormatError(FMT, 14, f"reserved sectors, FATs and root directory ({meta} "
                              f"sectors) fill the whole volume ({b.total_sectors})")
        clusters = (b.total_sectors - meta) // b.sectors_per_cluster
        bits = fat_type(clusters)
        if b.fat32 and bits != 32:
            bits = 32                      # FATSz16 == 0 means FAT32 to every driver
        if not b.fat32 and bits == 32:
            raise FormatError(FMT, 22, f"{clusters} clusters need FAT32, but the boot sector "
                              "has a FAT12/16 BPB")
        capacity = b.fat_sectors * ss * 8 // bits
        self.problem_list: list[Problem] = []
        if capacity < clusters + 2:
            self.problem_list.append(Problem(22, f"the FAT holds {capacity} entries for "
                                             f"{clusters} clusters"))
            clusters = max(0, capacity - 2)
        self.geometry = Geometry(ss, b.total_sectors, b.sectors_per_cluster, b.reserved, b.fats,
                                 b.root_entries, b.fat_sectors, bits, clusters, b.media,
                                 b.sectors_per_track, b.heads)
        g = self.geometry
        if g.fat_start + g.fat_sectors * ss > self.src.size:
            raise FormatError(FMT, g.fat_start, "the FAT passes the end of the image")
        self.fat = self.src.read(g.fat_start, min(g.fat_sectors * ss, (clusters + 2) * 4))
        self.end_mark = bad_cluster(bits)
        if self.src.size < g.total_sectors * ss:
            self.problem_list.append(Problem(32, f"the image holds {self.src.size} bytes, the "
                                             f"boot sector counts {g.total_sectors * ss}"))
        if bits == 32 and not 2 <= b.root_cluster < clusters + 2:
            raise FormatError(FMT, 44, f"root cluster {b.root_cluster} is not a cluster")
        self._label_entry: bytes | None = None
        self._root = FsEntry("", "", "dir", 0o755, ident=self._root_ident(),
                             extra=(("cluster", b.root_cluster),))
        self._root_slots: list[Slot] | None = None

    # -- clusters ----------------------------------------------------------------------------
    def _root_ident(self) -> int:
        return self.boot.root_cluster if self.geometry.bits == 32 else 0

    def next_cluster(self, n: int) -> int:
        return read_entry(self.fat, self.geometry.bits, n)

    def chain(self, start: int, limit: int | None = None) -> list[int]:
        """The clusters of a chain, checked: in range, not free or bad, no loop."""
        g = self.geometry
        out: list[int] = []
        seen: set[int] = set()
        n = start
        bound = g.clusters if limit is None else min(g.clusters, limit)
        while True:
            if not 2 <= n < g.clusters + 2:
                raise FormatError(FMT, g.fat_start, f"cluster {n} in the chain from {start} is "
                                  "not a data cluster")
            if n in seen:
                raise FormatError(FMT, g.fat_start, f"the chain from cluster {start} loops "
                                  f"back to {n}")
            seen.add(n)
            out.append(n)
            if len(out) > bound:
                raise FormatError(FMT, g.fat_start, f"the chain from cluster {start} is "
                                  f"longer than {bound} clusters")
            nxt = self.next_cluster(n)
            if nxt >= self.end_mark + 1:
                return out
            if nxt == self.end_mark:
                raise FormatError(FMT, g.fat_start, f"cluster {n} of the chain from {start} "
                                  "is marked bad")
            if nxt == 0:
                raise FormatError(FMT, g.fat_start, f"the chain from cluster {start} runs "
                                  f"into free cluster {n}'s successor (0)")
            n = nxt

    def cluster_runs(self, clusters: list[int]) -> list[tuple[int, int]]:
        """(byte offset, length) of each run of consecutive clusters."""
        g = self.geometry
        out: list[tuple[int, int]] = []
        for c in clusters:
            off = g.cluster_offset(c)
            if out and out[-1][0] + out[-1][1] == off:
                out[-1] = (out[-1][0], out[-1][1] + g.cluster_bytes)
            else:
                out.append((off, g.cluster_bytes))
        return out

    # -- directories -------------------------------------------------------------------------
    def dir_regions(self, cluster: int) -> list[tuple[int, int]]:
        """Byte ranges holding a directory (the fixed root when ``cluster`` is 0)."""
        g = self.geometry
        if cluster == 0 and g.bits != 32:
            return [(g.root_start, g.root_sectors * g.sector_size)]
        limit = MAX_DIR_ENTRIES * ENTRY // g.cluster_bytes + 1
        return self.cluster_runs(self.chain(cluster, limit))

    def slots(self, cluster: int) -> list[Slot]:
        """Live entries of a directory (without "." and ".." and the volume label)."""
        found: list[Slot] = []
        pending: list[tuple[int, bytes]] = []           # long-name entries so far
        for start, length in self.dir_regions(cluster):
            for pos in range(start, start + length, CHUNK):
                data = self.src.read(pos, min(CHUNK, start + length - pos))
                for i in range(0, len(data) - ENTRY + 1, ENTRY):
                    raw = data[i:i + ENTRY]
                    at = pos + i
                    if raw[0] == 0:
                        return found
                    if raw[0] == DELETED:
                        pending = []
                        continue
                    if raw[11] == ATTR_LFN:
                        pending.append((at, raw))
                        continue
                    entry = DirEntry.unpack(raw)
                    long = self._long_name(pending, entry.name, at)
                    first = pending[0][0] if pending and long is not None else at
                    pending = []
                    if entry.attr & ATTR_VOLUME:
                        if cluster == self._root_ident() and self._label_entry is None:
                            self._label_entry = entry.name
                        continue
                    if entry.name[:2] in (b". ", b"..") and entry.attr & ATTR_DIR:
                        continue
                    name = long if long is not None else display_short(entry.name, entry.case)
                    found.append(Slot(at, first, name, entry))
        return found

    def _long_name(self, pending: list[tuple[int, bytes]], short: bytes, at: int) -> str | None:
        if not pending:
            return None
        check = lfn_checksum(short)
        count = len(pending)
        ok = pending[0][1][0] == 0x40 | count and all(
            raw[0] & 0x3F == count - i and raw[13] == check for i, (_, raw) in
            enumerate(pending))
        if not ok:
            self.problem_list.append(Problem(pending[0][0], "long name entries do not match "
                                             f"the short entry at {at} (checksum or order)"))
            return None
        units = b"".join(lfn_part(raw) for _, raw in reversed(pending))
        end = len(units)
        for i in range(0, len(units), 2):
            if units[i:i + 2] == b"\0\0":
                end = i
                break
        return units[:end].decode("utf-16-le", "surrogatepass")

    def _entry(self, parent: FsEntry, slot: Slot) -> FsEntry:
        e = slot.entry
        path = f"{parent.path}/{slot.name}" if parent.path else slot.name
        is_dir = bool(e.attr & ATTR_DIR)
        mode = (0o555 if is_dir else 0o444) if e.attr & ATTR_RO else (0o755 if is_dir else 0o644)
        extra: list[tuple[str, object]] = [
            ("cluster", e.cluster), ("entry_offset", slot.offset),
            ("short_name", display_short(e.name, 0)), ("attributes", f"0x{e.attr:02x}"),
            ("modified", decode_datetime(e.mdate, e.mtime))]
        return FsEntry(path, slot.name, "dir" if is_dir else "file", mode,
                       0 if is_dir else e.size_bytes,
                       ident=e.cluster if is_dir else slot.offset, extra=tuple(extra))

    def root(self) -> FsEntry:
        return self._root

    def children(self, directory: FsEntry) -> list[FsEntry]:
        cluster = dict(directory.extra).get("cluster", 0) if directory.path else \
            self._root_ident()
        assert isinstance(cluster, int)
        if directory.path and cluster == 0:
            raise FormatError(FMT, None, f"directory {directory.path!r} has no cluster")
        return [self._entry(directory, s) for s in self.slots(cluster)]

    def file_clusters(self, entry: FsEntry) -> list[int]:
        cluster = dict(entry.extra).get("cluster", 0)
        assert isinstance(cluster, int)
        if entry.kind == "dir":
            return self.chain(cluster) if cluster else []
        if entry.size_bytes == 0 or cluster == 0:
            if entry.size_bytes:
                raise FormatError(FMT, None, f"{entry.path!r}: {entry.size_bytes} bytes but no "
                                  "cluster")
            return []
        need = -(-entry.size_bytes // self.geometry.cluster_bytes)
        clusters = self.chain(cluster, need + 1)
        if len(clusters) < need:
            raise FormatError(FMT, None, f"{entry.path!r}: {entry.size_bytes} bytes need "
                              f"{need} clusters, its chain has {len(clusters)}")
        return clusters

    def extents(self, entry: FsEntry) -> list[tuple[int, int]]:
        """(byte offset, length) runs holding exactly the file's bytes."""
        left = entry.size_bytes
        out = []
        for off, length in self.cluster_runs(self.file_clusters(entry)):
            if left <= 0:
                break
            out.append((off, min(length, left)))
            left -= length
        return out

    def data(self, entry: FsEntry) -> Iterator[bytes]:
        for off, length in self.extents(entry):
            for pos in range(off, off + length, CHUNK):
                yield self.src.read(pos, min(CHUNK, off + length - pos))

    def detail(self, entry: FsEntry) -> dict[str, object]:
        try:
            clusters = self.file_clusters(entry)
        except FormatError as exc:
            return {"problem": str(exc)}
        runs: list[list[int]] = []
        for c in clusters:
            if runs and runs[-1][0] + runs[-1][1] == c:
                runs[-1][1] += 1
            else:
                runs.append([c, 1])
        return {"offset": self.geometry.cluster_offset(clusters[0]) if clusters else None,
                "clusters": runs, "contiguous": len(runs) <= 1}

    # -- facts -------------------------------------------------------------------------------
    def label(self) -> str | None:
        """The label blkid reports: the root directory's volume-label entry."""
        if self._root_slots is None:
            self._root_slots = self.slots(self._root_ident())
        raw = self._label_entry
        if raw is None:
            return None
        raw = b"\xe5" + raw[1:] if raw[:1] == b"\x05" else raw
        text = raw.rstrip(b" ").decode("cp850")
        return text or None

    def boot_label(self) -> str | None:
        raw = self.boot.label
        if raw == NO_NAME or self.boot.boot_sig != 0x29:
            return None
        return raw.rstrip(b" ").decode("cp850") or None

    def identity(self) -> dict[str, str]:
        label = self.label()
        return {"type": "vfat", "uuid": self.serial(), **({"label": label} if label else {})}

    def serial(self) -> str:
        v = self.boot.volume_id
        return f"{v >> 16:04X}-{v & 0xFFFF:04X}"

    def fsinfo(self) -> FsInfo | None:
        b = self.boot
        if self.geometry.bits != 32 or not b.fsinfo_sector:
            return None
        data = self.src.read_upto(b.fsinfo_sector * self.geometry.sector_size, 512)
        return FsInfo.unpack(data) if len(data) == 512 else None

    def free_clusters(self) -> int:
        return sum(1 for n in range(2, self.geometry.clusters + 2) if self.next_cluster(n) == 0)

    def problems(self) -> list[Problem]:
        out = list(self.problem_list)
        g, b = self.geometry, self.boot
        owner: dict[int, str] = {}
        for entry in self.walk():
            clusters = self.file_clusters(entry)
            for c in clusters:
                if c in owner:
                    out.append(Problem(g.cluster_offset(c), f"cluster {c} belongs to both "
                                       f"{owner[c]!r} and {entry.path!r}"))
                owner[c] = entry.path
            need = -(-entry.size_bytes // g.cluster_bytes)
            if entry.kind == "file" and len(clusters) > need:
                out.append(Problem(g.fat_start, f"{entry.path!r}: chain of {len(clusters)} "
                                   f"clusters for {entry.size_bytes} bytes"))
        if g.bits == 32:
            for c in self.chain(b.root_cluster):
                owner.setdefault(c, "/")
        first = self.src.read(g.fat_start, g.fat_sectors * g.sector_size)
        for i in range(1, g.fats):
            other = self.src.read(g.fat_start + i * g.fat_sectors * g.sector_size,
                                  g.fat_sectors * g.sector_size)
            if other != first:
                out.append(Problem(g.fat_start + i * g.fat_sectors * g.sector_size,
                                   f"FAT copy {i + 1} differs from the first"))
        lost = sum(1 for n in range(2, g.clusters + 2)
                   if self.next_cluster(n) != 0 and n not in owner)
        if lost:
            out.append(Problem(g.fat_start, f"{lost} clusters in use by no file (lost)"))
        info = self.fsinfo()
        if info is not None and info.free != 0xFFFFFFFF and info.free != self.free_clusters():
            out.append(Problem(b.fsinfo_sector * g.sector_size + 488, f"FSInfo counts "
                               f"{info.free} free clusters, the FAT {self.free_clusters()}"))
        if b.dirty & 1:
            out.append(Problem(65 if g.bits == 32 else 37, "the volume is marked dirty"))
        return out

    def summary(self) -> dict[str, object]:
        g, b = self.geometry, self.boot
        info = self.fsinfo()
        facts: dict[str, object] = {
            "fat": g.bits,
            "label": self.label(),
            "boot_label": self.boot_label(),
            "serial": self.serial(),
            "oem": b.oem.decode("latin-1").rstrip(),
            "bytes_per_sector": g.sector_size,
            "sectors_per_cluster": g.sectors_per_cluster,
            "cluster_size": g.cluster_bytes,
            "reserved_sectors": g.reserved,
            "fats": g.fats,
            "root_entries": g.root_entries,
            "total_sectors": g.total_sectors,
            "fat_sectors": g.fat_sectors,
            "clusters": g.clusters,
            "free_clusters": self.free_clusters(),
            "media": f"0x{g.media:02x}",
            "hidden_sectors": b.hidden,
            "sectors_per_track": g.sectors_per_track,
            "heads": g.heads,
            "data_offset": g.data_start,
        }
        if g.bits == 32:
            facts["root_cluster"] = b.root_cluster
            facts["fsinfo"] = None if info is None else {"free": info.free,
                                                         "next_free": info.next_free}
        return facts

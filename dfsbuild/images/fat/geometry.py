"""Where a FAT's structures go for a given size: the choices mkfs.fat 4.2 makes for an image
file of that size (formats.md §6.4), with every key of the layout able to override them."""

from __future__ import annotations

from dataclasses import dataclass

from dfsbuild.images.fat.records import (
    MAX_CLUST_12,
    MAX_CLUST_16,
    MAX_CLUST_32,
    MIN_CLUST_16,
    MIN_CLUST_32,
)

FLOPPIES = {            # KiB -> (sectors/track, heads, media, sectors/cluster, root entries)
    360: (9, 2, 0xFD, 2, 112),
    720: (9, 2, 0xF9, 2, 112),
    1200: (15, 2, 0xF9, 1, 224),
    1440: (18, 2, 0xF0, 1, 224),
    2880: (36, 2, 0xF0, 2, 224),
}


@dataclass(frozen=True, slots=True)
class Geometry:
    sector_size: int
    total_sectors: int
    sectors_per_cluster: int
    reserved: int
    fats: int
    root_entries: int
    fat_sectors: int
    bits: int
    clusters: int                 # valid cluster numbers are 2 .. clusters + 1
    media: int
    sectors_per_track: int
    heads: int

    @property
    def cluster_bytes(self) -> int:
        return self.sector_size * self.sectors_per_cluster

    @property
    def root_sectors(self) -> int:
        return -(-self.root_entries * 32 // self.sector_size)

    @property
    def fat_start(self) -> int:          # bytes
        return self.reserved * self.sector_size

    @property
    def root_start(self) -> int:         # bytes (FAT12/16 fixed root)
        return (self.reserved + self.fats * self.fat_sectors) * self.sector_size

    @property
    def data_start(self) -> int:         # bytes: cluster 2
        return self.root_start + self.root_sectors * self.sector_size

    def cluster_offset(self, cluster: int) -> int:
        return self.data_start + (cluster - 2) * self.cluster_bytes


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the layout fixes; None lets the defaults decide."""

    bits: int | None = None
    cluster_bytes: int | None = None
    sector_size: int = 512
    reserved: int | None = None
    fats: int = 2
    root_entries: int | None = None


class NoGeometry(ValueError):
    pass


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def choose(size_bytes: int, want: Wanted) -> Geometry:
    """The geometry mkfs.fat would pick for an image file of ``size_bytes``; NoGeometry
    (saying why) when no FAT of the wanted kind fits."""
    ss = want.sector_size
    sectors = size_bytes // 1024 * 1024 // ss
    if sectors < 16:
        raise NoGeometry(f"{size_bytes} bytes is too small for a FAT")
    if sectors <= 524288:
        heads = 2 if sectors <= 32768 else 4 if sectors <= 65536 else 8 if sectors <= 262144 \
            else 16
        spt = 16 if sectors <= 4096 else 32
    else:
        heads = next((h for h, top in ((16, 16), (32, 32), (64, 64), (128, 128))
                      if sectors <= top * 63 * 1024), 255)
        spt = 63
    media, spc, root_default = 0xF8, 4, 512
    floppy = FLOPPIES.get(size_bytes // 1024) if size_bytes % 1024 == 0 else None
    if floppy is not None:
        spt, heads, media, spc, root_default = floppy
    bits = want.bits
    if bits is None and size_bytes >= 512 << 20:
        bits = 32
    if bits == 32:
        n = size_bytes // ss
        spc = 64 if n > 32 * 1024 * 1024 * 2 else 32 if n > 16 * 1024 * 1024 * 2 else \
            16 if n > 8 * 1024 * 1024 * 2 else 8 if n > 260 * 1024 * 2 else 1
    if want.cluster_bytes is not None:
        if want.cluster_bytes % ss:
            raise NoGeometry(f"a cluster of {want.cluster_bytes} bytes is not a whole number "
                             f"of {ss}-byte sectors")
        spc = want.cluster_bytes // ss
    reserved = want.reserved if want.reserved is not None else (32 if bits == 32 else 1)
    root_entries = 0 if bits == 32 else (want.root_entries or root_default)
    align = sectors > 8192
    if align:
        sectors = sectors // spt * spt
    root_sectors = _cdiv(root_entries * 32, ss)
    fats = want.fats
    max_spc = spc if want.cluster_bytes is not None else 128

    def up(n: int, to: int) -> int:
        return _cdiv(n, to) * to if align else n

    while spc <= max_spc:
        data32 = sectors - up(reserved, spc)
        data1216 = data32 - up(root_sectors, spc)
        found: dict[int, tuple[int, int]] = {}
        # FAT12
        c12 = 2 * (data1216 * ss + fats * 3) // (2 * spc * ss + fats * 3)
        len12 = up(_cdiv(((c12 + 2) * 3 + 1) >> 1, ss), spc)
        c12 = (data1216 - fats * len12) // spc
        if 0 < c12 <= min(len12 * 2 * ss // 3, MAX_CLUST_12):
            found[12] = (c12, len12)
        # FAT16
        c16 = (data1216 * ss + fats * 4) // (spc * ss + fats * 2)
        len16 = up(_cdiv((c16 + 2) * 2, ss), spc)
        c16 = (data1216 - fats * len16) // spc
        if MIN_CLUST_16 <= c16 <= min(len16 * ss // 2, MAX_CLUST_16):
            found[16] = (c16, len16)
        # FAT32
        c32 = (data32 * ss + fats * 8) // (spc * ss + fats * 4)
        len32 = up(_cdiv((c32 + 2) * 4, ss), spc)
        c32 = (data32 - fats * len32) // spc
        if MIN_CLUST_32 <= c32 <= min(len32 * ss // 4, MAX_CLUST_32):
            found[32] = (c32, len32)
        choice = None
        if bits is None:
            if 12 in found or 16 in found:
                choice = 16 if found.get(16, (0, 0))[0] > found.get(12, (0, 0))[0] else 12
        elif bits in found:
            choice = bits
        if choice is not None:
            clusters, fat_sectors = found[choice]
            res = up(reserved, spc)
            root = root_entries if choice != 32 else 0
            if align and choice != 32:
                root = up(root_sectors, spc) * (ss // 32)
            return Geometry(ss, sectors, spc, res, fats, root, fat_sectors, choice, clusters,
                            media, spt, heads)
        spc <<= 1
    kind = f"FAT{bits}" if bits else "FAT12 or FAT16"
    raise NoGeometry(f"no {kind} layout fits {size_bytes} bytes with {ss}-byte sectors"
                     + (f" and {want.cluster_bytes}-byte clusters" if want.cluster_bytes
                        else ""))

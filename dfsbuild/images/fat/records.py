"""FAT on-disk structures (formats.md §6): the boot sector with its BPB, FSInfo, directory
entries, long-name entries, timestamps and FAT entries. Little-endian throughout."""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

from dfsbuild.errors import FormatError, InternalError

FMT = "fat"

# Cluster-count limits (formats.md §6.1, as mkfs.fat keeps them).
MAX_CLUST_12 = 4084
MIN_CLUST_16 = 4087
MAX_CLUST_16 = 65524
MIN_CLUST_32 = 65525
MAX_CLUST_32 = 268435446

ATTR_RO, ATTR_HIDDEN, ATTR_SYSTEM, ATTR_VOLUME, ATTR_DIR, ATTR_ARCHIVE = 1, 2, 4, 8, 16, 32
ATTR_LFN = 0x0F
CASE_LOWER_BASE, CASE_LOWER_EXT = 0x08, 0x10
DELETED = 0xE5
ENTRY = 32
NO_NAME = b"NO NAME    "
FSINFO_LEAD, FSINFO_STRUCT, FSINFO_TRAIL = 0x41615252, 0x61417272, 0xAA550000
UNKNOWN = 0xFFFFFFFF

U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
EXT_AT = 36                  # the extended BPB follows the common one
HIDDEN_AT = 28               # BPB_HiddSec: sectors before the filesystem on its disk
SIGNATURE = b"\x55\xaa"       # bytes 510-511 of a boot sector
# FSInfo: a lead signature at 0; at 484 the struct signature, free count and next free; a
# trail signature at 508.
FSINFO_MID_AT, FSINFO_TRAIL_AT = 484, 508
FSINFO_MID = struct.Struct("<III")

# A tiny boot program: "int 18h" (no bootable disk: let the BIOS try the next device), then
# halt forever. Written where the jump in byte 0 lands.
BOOT_CODE = bytes([0xCD, 0x18, 0xFA, 0xF4, 0xEB, 0xFD])


def code_start(fat32: bool) -> int:
    """Where a boot sector's code starts: after the BPB and its extension."""
    return 90 if fat32 else 62


def jump_target(sector: bytes) -> int | None:
    """Where the first instruction of a boot sector jumps to (a short or near jump)."""
    if sector[0] == 0xEB:
        return 2 + sector[1]
    if sector[0] == 0xE9:
        return (3 + int.from_bytes(sector[1:3], "little", signed=True)) & 0xFFFF
    return None


def eoc(bits: int) -> int:
    """The end-of-chain value written (the largest; readers take >= bad+1 as the end)."""
    return {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[bits]


def bad_cluster(bits: int) -> int:
    return {12: 0xFF7, 16: 0xFFF7, 32: 0x0FFFFFF7}[bits]


def fat_type(clusters: int) -> int:
    """The FAT width the cluster count implies (the only thing readers go by)."""
    if clusters < 4085:
        return 12
    if clusters < 65525:
        return 16
    return 32


@dataclass(frozen=True, slots=True)
class BootSector:
    """Sector 0: jump, OEM name, BPB and the extended BPB of FAT12/16 or FAT32."""

    oem: bytes                  # 8 bytes
    bytes_per_sector: int       # 512..4096, power of two
    sectors_per_cluster: int    # power of two
    reserved: int               # sectors before the first FAT
    fats: int                   # FAT copies
    root_entries: int           # FAT12/16 fixed root directory; 0 on FAT32
    total_sectors: int
    media: int
    fat_sectors: int            # sectors per FAT
    sectors_per_track: int
    heads: int
    hidden: int                 # sectors before this volume (partition start)
    fat32: bool                 # which extended BPB follows
    drive: int
    volume_id: int
    label: bytes                # 11 bytes
    fs_type: bytes              # 8 bytes, informational
    root_cluster: int = 0       # FAT32
    fsinfo_sector: int = 0      # FAT32
    backup_sector: int = 0      # FAT32
    ext_flags: int = 0          # FAT32
    dirty: int = 0              # byte 37 / 65 (Windows' "volume dirty" flags)
    boot_sig: int = 0x29
    code: bytes = b""           # a volume boot record whose jump and code are used

    # 0x00: jump, OEM name; the BPB: bytes per sector, sectors per cluster, reserved
    # sectors, FATs, root entries, 16-bit total, media, 16-bit FAT size, sectors per track,
    # heads, hidden sectors, 32-bit total.
    COMMON = struct.Struct("<3s8sHBHBHHBHHHII")
    # 0x24 on FAT32: FAT size, flags, version, root cluster, FSInfo sector, backup boot
    # sector, 12 reserved bytes, drive, dirty flags, boot signature, serial, label, type.
    EXT32 = struct.Struct("<IHHIHH12sBBBI11s8s")
    # 0x24 on FAT12/16: drive, dirty flags, boot signature, serial, label, type.
    EXT16 = struct.Struct("<BBBI11s8s")

    def pack(self) -> bytes:
        out = bytearray(self.bytes_per_sector)
        code_at = code_start(self.fat32)
        small = self.total_sectors if self.total_sectors < 0x10000 and not self.fat32 else 0
        try:
            self.COMMON.pack_into(
                out, 0, bytes([0xEB, code_at - 2, 0x90]), self.oem, self.bytes_per_sector,
                self.sectors_per_cluster, self.reserved, self.fats, self.root_entries, small,
                self.media, 0 if self.fat32 else self.fat_sectors, self.sectors_per_track,
                self.heads, self.hidden, 0 if small else self.total_sectors)
            if self.fat32:
                self.EXT32.pack_into(out, EXT_AT, self.fat_sectors, self.ext_flags, 0,
                                     self.root_cluster, self.fsinfo_sector, self.backup_sector,
                                     bytes(12), self.drive, self.dirty, self.boot_sig,
                                     self.volume_id, self.label, self.fs_type)
            else:
                self.EXT16.pack_into(out, EXT_AT, self.drive, self.dirty, self.boot_sig,
                                     self.volume_id, self.label, self.fs_type)
        except struct.error as exc:          # the plan checked every value: a bug
            raise InternalError(f"FAT boot sector field out of range: {exc}") from None
        if self.code:
            out[0:3] = self.code[0:3]
            out[code_at:510] = self.code[code_at:510]
        else:
            out[code_at:code_at + len(BOOT_CODE)] = BOOT_CODE
        out[510:512] = SIGNATURE
        return bytes(out)

    @classmethod
    def unpack(cls, data: bytes) -> BootSector:
        if len(data) < 512:
            raise FormatError(FMT, 0, f"boot sector of {len(data)} bytes; 512 expected")
        (_jump, oem, bps, spc, reserved, fats, root_entries, small, media, fat16, spt, heads,
         hidden, large) = cls.COMMON.unpack_from(data, 0)
        fat32_len = U32.unpack_from(data, EXT_AT)[0]
        fat32 = fat16 == 0 and fat32_len != 0
        if fat32:
            (fat_sectors, ext_flags, _ver, root_cluster, fsinfo, backup, _r, drive, dirty,
             sig, vol_id, label, fs_type) = cls.EXT32.unpack_from(data, EXT_AT)
        else:
            fat_sectors, ext_flags, root_cluster, fsinfo, backup = fat16, 0, 0, 0, 0
            drive, dirty, sig, vol_id, label, fs_type = cls.EXT16.unpack_from(data, EXT_AT)
        return cls(oem, bps, spc, reserved, fats, root_entries, small or large, media,
                   fat_sectors, spt, heads, hidden, fat32, drive, vol_id, label, fs_type,
                   root_cluster, fsinfo, backup, ext_flags, dirty, sig)


@dataclass(frozen=True, slots=True)
class FsInfo:
    """FAT32's FSInfo sector: a hint of the free cluster count and where to look first."""

    free: int
    next_free: int

    def pack(self, sector_size: int) -> bytes:
        out = bytearray(sector_size)
        U32.pack_into(out, 0, FSINFO_LEAD)
        FSINFO_MID.pack_into(out, FSINFO_MID_AT, FSINFO_STRUCT, self.free, self.next_free)
        U32.pack_into(out, FSINFO_TRAIL_AT, FSINFO_TRAIL)
        return bytes(out)

    @classmethod
    def unpack(cls, data: bytes) -> FsInfo | None:
        """None when the signatures are missing."""
        lead, = U32.unpack_from(data, 0)
        mid, free, nxt = FSINFO_MID.unpack_from(data, FSINFO_MID_AT)
        trail, = U32.unpack_from(data, FSINFO_TRAIL_AT)
        if (lead, mid, trail) != (FSINFO_LEAD, FSINFO_STRUCT, FSINFO_TRAIL):
            return None
        return cls(free, nxt)


@dataclass(frozen=True, slots=True)
class DirEntry:
    """A 32-byte short directory entry."""

    name: bytes                 # 11 bytes, 8+3 space padded
    attr: int
    case: int = 0               # NT case bits
    ctime_cs: int = 0
    ctime: int = 0
    cdate: int = 0
    adate: int = 0
    mtime: int = 0
    mdate: int = 0
    cluster: int = 0
    size_bytes: int = 0

    STRUCT = struct.Struct("<11sBBBHHHHHHHI")

    def pack(self) -> bytes:
        return self.STRUCT.pack(self.name, self.attr, self.case, self.ctime_cs, self.ctime,
                                self.cdate, self.adate, self.cluster >> 16, self.mtime,
                                self.mdate, self.cluster & 0xFFFF, self.size_bytes)

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> DirEntry:
        (name, attr, case, cs, ctime, cdate, adate, high, mtime, mdate, low,
         size) = cls.STRUCT.unpack_from(data, offset)
        return cls(name, attr, case, cs, ctime, cdate, adate, mtime, mdate,
                   (high << 16) | low, size)


def lfn_checksum(short: bytes) -> int:
    s = 0
    for c in short:
        s = (((s & 1) << 7) + (s >> 1) + c) & 0xFF
    return s


def lfn_entries(name: str, short: bytes) -> list[bytes]:
    """The long-name entries for ``name``, in stored order (highest ordinal first)."""
    units = name.encode("utf-16-le")
    count = -(-len(units) // 26)
    padded = bytearray(units)
    if len(padded) < count * 26:
        padded += b"\0\0"
        padded += b"\xff" * (count * 26 - len(padded))
    check = lfn_checksum(short)
    out = []
    for i in range(count, 0, -1):
        part = padded[(i - 1) * 26:i * 26]
        order = i | (0x40 if i == count else 0)
        out.append(bytes([order]) + part[:10] + bytes([ATTR_LFN, 0, check]) + part[10:22]
                   + b"\0\0" + part[22:26])
    return out


def lfn_part(entry: bytes) -> bytes:
    """The 26 name bytes of one long-name entry."""
    return entry[1:11] + entry[14:26] + entry[28:32]


# -- time ------------------------------------------------------------------------------------

def fat_datetime(epoch: int) -> tuple[int, int, int]:
    """(date, time, 10 ms units) of a UTC time (FAT stores local time; dfsbuild writes UTC)."""
    import time
    t = time.gmtime(epoch)
    year = min(max(t.tm_year, 1980), 2107)
    date = ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    clock = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return date, clock, (t.tm_sec % 2) * 100


def decode_datetime(date: int, clock: int) -> str:
    return (f"{(date >> 9) + 1980:04d}-{(date >> 5) & 15:02d}-{date & 31:02d}T"
            f"{clock >> 11:02d}:{(clock >> 5) & 63:02d}:{(clock & 31) * 2:02d}")


# -- FAT entries -------------------------------------------------------------------------------

def pack_entries(bits: int, values: array[int]) -> bytes:
    """FAT16/32 entries as bytes (FAT12 goes through ``pack_fat12``)."""
    if bits == 16:
        return array("H", values).tobytes()
    return values.tobytes()


def pack_fat12(values: list[int]) -> bytes:
    out = bytearray((len(values) * 3 + 1) // 2)
    for i, v in enumerate(values):
        at = i * 3 // 2
        if i & 1:
            out[at] |= (v << 4) & 0xF0
            out[at + 1] = v >> 4
        else:
            out[at] = v & 0xFF
            out[at + 1] = (v >> 8) & 0x0F
    return bytes(out)


def read_entry(fat: bytes | bytearray, bits: int, n: int) -> int:
    if bits == 32:
        return int(U32.unpack_from(fat, n * 4)[0]) & 0x0FFFFFFF
    if bits == 16:
        return int(U16.unpack_from(fat, n * 2)[0])
    at = n * 3 // 2
    v = fat[at] | (fat[at + 1] << 8)
    return v >> 4 if n & 1 else v & 0xFFF


def write_entry(fat: bytearray, bits: int, n: int, value: int) -> None:
    if bits == 32:
        old = U32.unpack_from(fat, n * 4)[0]
        U32.pack_into(fat, n * 4, (old & 0xF0000000) | (value & 0x0FFFFFFF))
    elif bits == 16:
        U16.pack_into(fat, n * 2, value)
    else:
        at = n * 3 // 2
        if n & 1:
            fat[at] = (fat[at] & 0x0F) | ((value << 4) & 0xF0)
            fat[at + 1] = (value >> 4) & 0xFF
        else:
            fat[at] = value & 0xFF
            fat[at + 1] = (fat[at + 1] & 0xF0) | ((value >> 8) & 0x0F)


def looks_like_fat(head: bytes) -> bool:
    """A FAT boot sector as the kernel's msdos parser and blkid check it: a jump, a
    power-of-two sector size of 512..4096, a power-of-two cluster, reserved sectors, one or
    two FATs and a valid media byte."""
    if len(head) < 512 or head[510:512] != SIGNATURE or head[0] not in (0xEB, 0xE9):
        return False
    (_jump, oem, bytes_per_sector, per_cluster, reserved, fats, _root, _small, media,
     *_rest) = BootSector.COMMON.unpack_from(head, 0)
    if oem in (b"EXFAT   ", b"NTFS    "):
        return False
    return (bytes_per_sector in (512, 1024, 2048, 4096) and per_cluster != 0
            and not per_cluster & (per_cluster - 1) and reserved != 0 and fats in (1, 2)
            and (media == 0xF0 or media >= 0xF8))


def placed_fixes(head: bytes, start_bytes: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) that make the FAT whose boot sector is ``head`` record a partition
    start of ``start_bytes``: the hidden-sectors field of the boot sector and of FAT32's
    backup; none when the start is not a whole number of the FAT's sectors."""
    bs = BootSector.unpack(head)
    if start_bytes % bs.bytes_per_sector:
        return []
    value = U32.pack(start_bytes // bs.bytes_per_sector)
    fixes = [(HIDDEN_AT, value)]
    if bs.fat32 and bs.backup_sector:
        fixes.append((bs.backup_sector * bs.bytes_per_sector + HIDDEN_AT, value))
    return fixes

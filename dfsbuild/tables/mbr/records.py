"""MBR records: the partition sector, its 16-byte entries (classic and the 48-bit proposal), CHS.

References: OSDev wiki "Partition Table" (the partition-table seed), formats.md §4 (CHS as sfdisk
writes it for image files; EBR link rules checked against sfdisk 2.38). All integers
little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError, InternalError

SECTOR = 512                # the MBR itself is always the first 512 bytes
TABLE_OFFSET = 0x1BE
SIGNATURE_OFFSET = 0x1FE
BOOT_SIGNATURE = b"\x55\xaa"
DISK_ID_OFFSET = 0x1B8
BOOT_CODE_BYTES = DISK_ID_OFFSET   # 440 bytes of boot code before the disk signature
MAX_U32 = 0xFFFFFFFF
MAX_U48 = (1 << 48) - 1
HEADS, SECTORS_PER_TRACK = 255, 63
CHS_CLAMP = (1023, 254, 63)
LBA48_SIG1, LBA48_SIG2 = 0x14, 0xEB


def chs(lba: int) -> bytes:
    """CHS bytes for ``lba`` with 255 heads x 63 sectors, clamped as sfdisk clamps."""
    c, rem = divmod(lba, HEADS * SECTORS_PER_TRACK)
    h, s = divmod(rem, SECTORS_PER_TRACK)
    if c > 1023:
        c, h, s = CHS_CLAMP
    else:
        s += 1
    return bytes((h, s | ((c >> 2) & 0xC0), c & 0xFF))


@dataclass(frozen=True, slots=True)
class MbrEntry:
    """A 16-byte partition entry (classic, or the 48-bit LBA proposal when ``lba48``)."""

    status: int            # 0x80 active, 0x00 inactive (48-bit: 0x81 / 0x01)
    type: int              # system ID
    start_lba: int
    size_sectors: int
    lba48: bool = False
    start_chs: bytes = b"\0\0\0"
    end_chs: bytes = b"\0\0\0"

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "B"    # 0x0 boot indicator (48-bit: bit 0 set marks the form)
        "3s"   # 0x1 start CHS (48-bit: 0x14, start LBA bits 32-47)
        "B"    # 0x4 system ID
        "3s"   # 0x5 end CHS (48-bit: 0xEB, size bits 32-47)
        "I"    # 0x8 start LBA (low 32 bits)
        "I"    # 0xC sector count (low 32 bits)
    )

    @classmethod
    def classic(cls, status: int, type_: int, start_lba: int, size_sectors: int,
                chs_base: int = 0) -> MbrEntry:
        """An entry with CHS computed as sfdisk does (``chs_base`` for EBR-relative starts)."""
        first = chs_base + start_lba
        last = first + size_sectors - 1
        return cls(status, type_, start_lba, size_sectors, False, chs(first), chs(last))

    @property
    def bootable(self) -> bool:
        return self.status == 0x80

    @property
    def empty(self) -> bool:
        return self.type == 0

    def pack(self) -> bytes:
        if self.lba48:
            if not (0 <= self.start_lba <= MAX_U48 and 0 <= self.size_sectors <= MAX_U48):
                raise InternalError(f"48-bit MBR entry out of range: {self}")
            status = (0x81 if self.bootable else 0x01)
            start_hi = struct.pack("<BH", LBA48_SIG1, self.start_lba >> 32)
            size_hi = struct.pack("<BH", LBA48_SIG2, self.size_sectors >> 32)
            return self.FORMAT.pack(status, start_hi, self.type, size_hi,
                                    self.start_lba & MAX_U32, self.size_sectors & MAX_U32)
        if not (0 <= self.start_lba <= MAX_U32 and 0 <= self.size_sectors <= MAX_U32):
            raise InternalError(f"MBR entry needs more than 32 bits: {self}")
        if self.status not in (0x00, 0x80):
            raise InternalError(f"MBR boot indicator {self.status:#x}")
        return self.FORMAT.pack(self.status, self.start_chs, self.type, self.end_chs,
                                self.start_lba, self.size_sectors)

    @classmethod
    def unpack(cls, raw: bytes) -> MbrEntry:
        status, start_chs, type_, end_chs, start, size = cls.FORMAT.unpack(raw)
        if status in (0x01, 0x81) and start_chs[0] == LBA48_SIG1 and end_chs[0] == LBA48_SIG2:
            start |= int.from_bytes(start_chs[1:3], "little") << 32
            size |= int.from_bytes(end_chs[1:3], "little") << 32
            return cls(status & 0x80, type_, start, size, True, start_chs, end_chs)
        return cls(status, type_, start, size, False, start_chs, end_chs)


assert MbrEntry.FORMAT.size == 16
EMPTY = MbrEntry(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class MbrSector:
    """A 512-byte MBR or EBR."""

    disk_id: int
    entries: tuple[MbrEntry, ...]       # four, empty ones included
    boot_code: bytes = b""              # at most 440 bytes

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "440s"  # 0x000 boot code
        "I"     # 0x1B8 disk signature
        "H"     # 0x1BC reserved (0x0000)
        "64s"   # 0x1BE four partition entries
        "2s"    # 0x1FE boot signature 55 AA
    )

    def pack(self) -> bytes:
        # Partition-table seed, "MBR format": 440 bytes of code, a 32-bit signature, four
        # entries, 0x55AA.
        if len(self.entries) > 4:
            raise InternalError("an MBR holds four entries")
        if len(self.boot_code) > DISK_ID_OFFSET:
            raise InternalError("MBR boot code is limited to 440 bytes")
        if not 0 <= self.disk_id <= MAX_U32:
            raise InternalError(f"MBR disk signature {self.disk_id:#x} does not fit 32 bits")
        table = b"".join(e.pack() for e in self.entries) + EMPTY.pack() * (4 - len(self.entries))
        return self.FORMAT.pack(self.boot_code, self.disk_id, 0, table, BOOT_SIGNATURE)

    @classmethod
    def unpack(cls, raw: bytes, offset: int = 0) -> MbrSector:
        """Parse a 512-byte MBR or EBR; ``offset`` is where it sits, for messages."""
        if len(raw) < SECTOR:
            raise FormatError("mbr", offset, f"expected 512 bytes, found {len(raw)}")
        code, disk_id, _, table, signature = cls.FORMAT.unpack(raw[:SECTOR])
        if signature != BOOT_SIGNATURE:
            raise FormatError("mbr", offset + SIGNATURE_OFFSET,
                              f"expected signature 55 aa, found {signature.hex(' ')}")
        entries = tuple(MbrEntry.unpack(table[16 * i:16 * i + 16]) for i in range(4))
        return cls(disk_id, entries, code)


assert MbrSector.FORMAT.size == SECTOR


def pack_sector(entries: list[MbrEntry], disk_id: int = 0, boot_code: bytes = b"") -> bytes:
    """A 512-byte MBR/EBR: boot code, disk signature, four entries, 0x55AA."""
    return MbrSector(disk_id, tuple(entries), boot_code).pack()


def unpack_sector(raw: bytes, offset: int = 0) -> MbrSector:
    return MbrSector.unpack(raw, offset)


def valid_status(raw_entry: bytes) -> bool:
    """The boot indicator is one the kernel accepts (0x00, 0x80), or the 48-bit form's."""
    status = raw_entry[0]
    if status in (0x00, 0x80):
        return True
    return status in (0x01, 0x81) and raw_entry[1] == LBA48_SIG1 and raw_entry[5] == LBA48_SIG2

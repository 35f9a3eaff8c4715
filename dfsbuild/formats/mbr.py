"""MBR: the partition sector, CHS, EBR chains and the 48-bit entry proposal.

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
        return bool(self.status & 0x80)

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
        if status & 0x01 and start_chs[0] == LBA48_SIG1 and end_chs[0] == LBA48_SIG2:
            start |= int.from_bytes(start_chs[1:3], "little") << 32
            size |= int.from_bytes(end_chs[1:3], "little") << 32
            return cls(status & 0x80, type_, start, size, True, start_chs, end_chs)
        return cls(status, type_, start, size, False, start_chs, end_chs)


assert MbrEntry.FORMAT.size == 16
EMPTY = MbrEntry(0, 0, 0, 0)


def pack_sector(entries: list[MbrEntry], disk_id: int = 0, boot_code: bytes = b"") -> bytes:
    """A 512-byte MBR/EBR: boot code, disk signature, four entries, 0x55AA."""
    if len(entries) > 4:
        raise InternalError("an MBR holds four entries")
    if len(boot_code) > DISK_ID_OFFSET:
        raise InternalError("MBR boot code is limited to 440 bytes")
    table = b"".join(e.pack() for e in entries) + EMPTY.pack() * (4 - len(entries))
    return (boot_code.ljust(DISK_ID_OFFSET, b"\0") + struct.pack("<IH", disk_id, 0) + table
            + BOOT_SIGNATURE)


@dataclass(frozen=True, slots=True)
class MbrSector:
    disk_id: int
    entries: tuple[MbrEntry, ...]       # always four, empty ones included
    boot_code: bytes


def unpack_sector(raw: bytes, offset: int = 0) -> MbrSector:
    """Parse a 512-byte MBR or EBR; ``offset`` is where it sits, for messages."""
    if len(raw) < SECTOR:
        raise FormatError("mbr", offset, f"expected 512 bytes, found {len(raw)}")
    if raw[SIGNATURE_OFFSET:SECTOR] != BOOT_SIGNATURE:
        raise FormatError("mbr", offset + SIGNATURE_OFFSET,
                          f"expected signature 55 aa, found {raw[510:512].hex(' ')}")
    entries = tuple(MbrEntry.unpack(raw[TABLE_OFFSET + 16 * i:TABLE_OFFSET + 16 * i + 16])
                    for i in range(4))
    (disk_id,) = struct.unpack_from("<I", raw, DISK_ID_OFFSET)
    return MbrSector(disk_id, entries, raw[:DISK_ID_OFFSET])


@dataclass(frozen=True, slots=True)
class Logical:
    """One logical partition as planned: where its EBR is and where its data is."""

    ebr_lba: int
    start_lba: int
    size_sectors: int
    type: int
    bootable: bool = False


def ebr_chain(extended_lba: int, logicals: list[Logical]) -> list[tuple[int, bytes]]:
    """(LBA, sector) of every EBR. Entry 1 is relative to its own EBR; the link (entry 2)
    is relative to the extended partition's start and spans the next EBR through the end of
    the next logical partition, as sfdisk writes it."""
    out = []
    for i, lg in enumerate(logicals):
        entries = [MbrEntry.classic(0x80 if lg.bootable else 0, lg.type,
                                    lg.start_lba - lg.ebr_lba, lg.size_sectors, lg.ebr_lba)]
        if i + 1 < len(logicals):
            nxt = logicals[i + 1]
            span = nxt.start_lba + nxt.size_sectors - nxt.ebr_lba
            entries.append(MbrEntry.classic(0, 0x05, nxt.ebr_lba - extended_lba, span,
                                            extended_lba))
        out.append((lg.ebr_lba, pack_sector(entries)))
    return out

"""GPT: protective MBR, primary and backup headers and entry arrays.

References: UEFI Specification 2.10 §5.3 (GUID Partition Table format), formats.md §5 (checked
against sgdisk 1.0.9 and sfdisk 2.38). Integers little-endian; GUIDs in mixed-endian order.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError, InternalError
from dfsbuild.tables.mbr.records import MAX_U32, MbrEntry, chs, pack_sector

SIGNATURE = b"EFI PART"
REVISION = 0x00010000
HEADER_SIZE = 92
ENTRY_COUNT = 128
ENTRY_SIZE = 128
NAME_UNITS = 36


@dataclass(frozen=True, slots=True)
class GptHeader:
    """The GPT header (UEFI 2.10 §5.3.2), 92 bytes at the start of its sector."""

    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int          # inclusive
    disk_guid: uuid.UUID
    entries_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int
    header_crc: int = 0

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "8s"    # 0x00 signature "EFI PART"
        "I"     # 0x08 revision 1.0
        "I"     # 0x0C header size (92)
        "I"     # 0x10 header CRC32 (computed with this field zero)
        "4x"    # 0x14 reserved
        "Q"     # 0x18 MyLBA
        "Q"     # 0x20 AlternateLBA
        "Q"     # 0x28 FirstUsableLBA
        "Q"     # 0x30 LastUsableLBA (inclusive)
        "16s"   # 0x38 DiskGUID
        "Q"     # 0x48 PartitionEntryLBA
        "I"     # 0x50 NumberOfPartitionEntries
        "I"     # 0x54 SizeOfPartitionEntry
        "I"     # 0x58 PartitionEntryArrayCRC32
    )

    def pack(self) -> bytes:
        # UEFI 2.10 table 5.5: LBAs are 64-bit, the entry count, size and CRCs 32-bit.
        for name, value, bits in (("MyLBA", self.my_lba, 64), ("AlternateLBA", self.alternate_lba,
                                  64), ("FirstUsableLBA", self.first_usable_lba, 64),
                                  ("LastUsableLBA", self.last_usable_lba, 64),
                                  ("PartitionEntryLBA", self.entries_lba, 64),
                                  ("NumberOfPartitionEntries", self.entry_count, 32),
                                  ("SizeOfPartitionEntry", self.entry_size, 32),
                                  ("PartitionEntryArrayCRC32", self.entries_crc, 32)):
            if not 0 <= value < 1 << bits:
                raise InternalError(f"GPT header {name}={value} does not fit {bits} bits")

        def raw(crc: int) -> bytes:
            return self.FORMAT.pack(SIGNATURE, REVISION, HEADER_SIZE, crc, self.my_lba,
                                    self.alternate_lba, self.first_usable_lba,
                                    self.last_usable_lba, self.disk_guid.bytes_le,
                                    self.entries_lba, self.entry_count, self.entry_size,
                                    self.entries_crc)
        return raw(zlib.crc32(raw(0)))

    @classmethod
    def unpack(cls, raw: bytes, offset: int) -> GptHeader:
        if len(raw) < HEADER_SIZE:
            raise FormatError("gpt", offset, f"expected a {HEADER_SIZE}-byte header, found "
                              f"{len(raw)} bytes")
        if raw[:8] != SIGNATURE:
            raise FormatError("gpt", offset, f"expected signature {SIGNATURE!r}, found "
                              f"{raw[:8]!r}")
        (sig, rev, size, crc, my, alt, first, last, guid, elba, count, esize,
         ecrc) = cls.FORMAT.unpack(raw[:HEADER_SIZE])
        del sig
        if size < HEADER_SIZE or size > len(raw):
            raise FormatError("gpt", offset + 12, f"header size {size} is impossible")
        zeroed = raw[:16] + b"\0\0\0\0" + raw[20:size]
        if zlib.crc32(zeroed) != crc:
            raise FormatError("gpt", offset + 16, f"header CRC32 mismatch: stored {crc:#010x}, "
                              f"computed {zlib.crc32(zeroed):#010x}")
        if rev != REVISION:
            raise FormatError("gpt", offset + 8, f"expected revision 1.0, found {rev:#x}")
        return cls(my, alt, first, last, uuid.UUID(bytes_le=guid), elba, count, esize, ecrc,
                   crc)


assert GptHeader.FORMAT.size == HEADER_SIZE


@dataclass(frozen=True, slots=True)
class GptEntry:
    """One GPT partition entry (UEFI 2.10 §5.3.3), 128 bytes on disk."""

    type_guid: uuid.UUID
    unique_guid: uuid.UUID
    first_lba: int
    last_lba: int                 # inclusive
    attributes: int
    name: str

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "16s"   # 0x00 PartitionTypeGUID
        "16s"   # 0x10 UniquePartitionGUID
        "Q"     # 0x20 StartingLBA
        "Q"     # 0x28 EndingLBA (inclusive)
        "Q"     # 0x30 Attributes
        "72s"   # 0x38 PartitionName, 36 UTF-16LE code units
    )

    def pack(self) -> bytes:
        # UEFI 2.10 table 5.6: LBAs and attributes are 64-bit; the name 36 UTF-16 units.
        for field, value in (("StartingLBA", self.first_lba), ("EndingLBA", self.last_lba),
                             ("Attributes", self.attributes)):
            if not 0 <= value < 1 << 64:
                raise InternalError(f"GPT entry {field}={value} does not fit 64 bits")
        name = self.name.encode("utf-16-le")
        if len(name) > NAME_UNITS * 2:
            raise InternalError(f"GPT name {self.name!r} is longer than {NAME_UNITS} units")
        if self.last_lba < self.first_lba:
            raise InternalError("GPT entry ends before it starts")
        return self.FORMAT.pack(self.type_guid.bytes_le, self.unique_guid.bytes_le,
                                self.first_lba, self.last_lba, self.attributes, name)

    @classmethod
    def unpack(cls, raw: bytes) -> GptEntry:
        t, u, first, last, attrs, name = cls.FORMAT.unpack(raw[:ENTRY_SIZE])
        units = name.decode("utf-16-le", "replace").split("\0", 1)[0]
        return cls(uuid.UUID(bytes_le=t), uuid.UUID(bytes_le=u), first, last, attrs, units)

    @property
    def used(self) -> bool:
        return self.type_guid.int != 0


assert GptEntry.FORMAT.size == ENTRY_SIZE


def array_sectors(sector_size: int, entry_count: int = ENTRY_COUNT) -> int:
    """Sectors an array of ``entry_count`` entries fills (the last one padded with zeros)."""
    return -(-entry_count * ENTRY_SIZE // sector_size)


def first_usable(sector_size: int, entries_lba: int = 2, entry_count: int = ENTRY_COUNT) -> int:
    return entries_lba + array_sectors(sector_size, entry_count)


def last_usable(total_sectors: int, sector_size: int, entry_count: int = ENTRY_COUNT) -> int:
    return total_sectors - 2 - array_sectors(sector_size, entry_count)


def name_units(name: str) -> int:
    return len(name.encode("utf-16-le")) // 2


def build_gpt(total_sectors: int, sector_size: int, disk_guid: uuid.UUID,
              entries: list[GptEntry], hybrid: list[MbrEntry] | None = None,
              boot_code: bytes = b"", entries_lba: int = 2,
              entry_count: int = ENTRY_COUNT) -> list[tuple[int, bytes]]:
    """(LBA, bytes) of every structure: protective (or hybrid) MBR, both headers and arrays.
    The primary array starts at ``entries_lba``; the CRC covers ``entry_count`` entries."""
    if len(entries) > entry_count:
        raise InternalError(f"more than {entry_count} GPT entries")
    array = b"".join(e.pack() for e in entries).ljust(entry_count * ENTRY_SIZE, b"\0")
    crc = zlib.crc32(array)
    n = array_sectors(sector_size, entry_count)
    array = array.ljust(n * sector_size, b"\0")
    last = total_sectors - 1
    first_use = first_usable(sector_size, entries_lba, entry_count)
    last_use = last_usable(total_sectors, sector_size, entry_count)
    primary = GptHeader(1, last, first_use, last_use, disk_guid, entries_lba, entry_count,
                        ENTRY_SIZE, crc)
    backup = GptHeader(last, 1, first_use, last_use, disk_guid, last - n, entry_count,
                       ENTRY_SIZE, crc)
    protective_size = min(total_sectors - 1, MAX_U32)
    protective = MbrEntry(0, 0xEE, 1, protective_size, False, bytes((0, 2, 0)),
                          chs(protective_size))
    if hybrid:
        first_hybrid = min(e.start_lba for e in hybrid)
        cover = MbrEntry.classic(0, 0xEE, 1, first_hybrid - 1)
        mbr_entries = [cover, *hybrid]
    else:
        mbr_entries = [protective]

    def sector(data: bytes) -> bytes:
        return data.ljust(sector_size, b"\0")

    return [
        (0, sector(pack_sector(mbr_entries, 0, boot_code))),
        (1, sector(primary.pack())),
        (entries_lba, array),
        (last - n, array),
        (last, sector(backup.pack())),
    ]

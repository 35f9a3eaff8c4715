"""eMBR 1.05: legacy MBR entry, signature block, partition header and 128-byte entries.

Reference: "The Extended MBR", version 1.05 (fysnet; seeds/embr-1.05.txt) and formats.md §3.
Integers little-endian. The CRC is the standard CRC-32 (zlib.crc32) over the 32-byte header
and ``entry_count`` entries, with the header's CRC field zero.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError, InternalError
from dfsbuild.tables.mbr.records import MAX_U32, MbrEntry, chs, pack_sector

SIG_BLOCK_OFFSET = 0x1F2
SIG_BLOCK = b"EmbrrbmE"            # 'EmbrrbmE' = 0x456D627272626D45 little-endian
HEADER_MAGIC0 = b"EMBR"            # 0x52424D45
HEADER_MAGIC1 = b"RBME"            # 0x454D4252
ENTRY_MAGIC = b"eMBR"              # 0x52424D65
VERSION_1_05 = 0x25                # major 1 (3 bits), minor 5 (5 bits)
MBR_TYPE = 0xE0
EPOCH_1980 = 315532800             # Unix time of 1980-01-01T00:00:00Z
LEGACY_LIMIT = 65536               # (1 + remaining) * sector size, legacy firmware
FLAG_VALID, FLAG_HIDDEN = 1, 2
NAME_BYTES = 64

# LBA 0 and LBA 1 boot code when the layout gives none: 16-bit real mode, position
# independent; prints its message through BIOS int 10h and halts.
#   push cs; pop ds; call +0; pop si; add si, 0x16; cld
#   loop: lodsb; test al,al; jz halt; mov ah,0x0e; xor bx,bx; int 0x10; jmp loop
#   halt: cli; hlt; jmp halt
STUB = bytes.fromhex("0e1fe800005e83c616fcac84c07408b40e31dbcd10ebf3faf4ebfd")
STUB_MESSAGE = b"eMBR disk: this build carries no eMBR boot loader.\r\n\0"
DEFAULT_BOOT_CODE = STUB + STUB_MESSAGE
assert len(STUB) == 0x1B


@dataclass(frozen=True, slots=True)
class EmbrSignatureBlock:
    """LBA 1 bytes 0x1F2..0x1FF: where the header is and how far the eMBR area reaches."""

    header_lba: int           # sect_offset: LBA of the partition header
    remaining: int            # sectors after LBA 1 up to the end of the entry list

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "8s"    # 0x1F2 signature "EmbrrbmE"
        "H"     # 0x1FA sect_offset
        "H"     # 0x1FC remaining
        "2s"    # 0x1FE 55 AA
    )

    def pack(self) -> bytes:
        # eMBR 1.05, "LBA 1": sect_offset and remaining are 16-bit.
        for name, value in (("sect_offset", self.header_lba), ("remaining", self.remaining)):
            if not 0 <= value <= 0xFFFF:
                raise InternalError(f"eMBR {name}={value} does not fit 16 bits")
        return self.FORMAT.pack(SIG_BLOCK, self.header_lba, self.remaining, b"\x55\xaa")

    @classmethod
    def unpack(cls, raw: bytes, offset: int) -> EmbrSignatureBlock:
        sig, header_lba, remaining, tail = cls.FORMAT.unpack(raw[:14])
        if sig != SIG_BLOCK:
            raise FormatError("embr", offset, f"expected signature {SIG_BLOCK!r}, found {sig!r}")
        if tail != b"\x55\xaa":
            raise FormatError("embr", offset + 12, f"expected 55 aa, found {tail.hex(' ')}")
        return cls(header_lba, remaining)


assert EmbrSignatureBlock.FORMAT.size == 14


@dataclass(frozen=True, slots=True)
class EmbrHeader:
    """Partition header block, 32 bytes."""

    crc: int
    entry_count: int
    boot_delay: int           # seconds
    version: int
    total_sectors: int        # LBA 0 .. last used sector

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "4s"    # 0x00 magic0 "EMBR"
        "I"     # 0x04 CRC-32 of header + entries
        "H"     # 0x08 entry count
        "B"     # 0x0A boot delay
        "B"     # 0x0B version (0x25 = 1.05)
        "Q"     # 0x0C total sectors
        "8x"    # 0x14 reserved
        "4s"    # 0x1C magic1 "RBME"
    )

    def pack(self) -> bytes:
        # eMBR 1.05, "partition header": 16-bit count, 8-bit delay and version, 64-bit total.
        for name, value, bits in (("crc", self.crc, 32), ("entry count", self.entry_count, 16),
                                  ("boot delay", self.boot_delay, 8),
                                  ("version", self.version, 8),
                                  ("total sectors", self.total_sectors, 64)):
            if not 0 <= value < 1 << bits:
                raise InternalError(f"eMBR header {name}={value} does not fit {bits} bits")
        return self.FORMAT.pack(HEADER_MAGIC0, self.crc, self.entry_count, self.boot_delay,
                                self.version, self.total_sectors, HEADER_MAGIC1)

    @classmethod
    def unpack(cls, raw: bytes, offset: int) -> EmbrHeader:
        m0, crc, count, delay, version, total, m1 = cls.FORMAT.unpack(raw[:32])
        if m0 != HEADER_MAGIC0:
            raise FormatError("embr", offset, f"expected header magic {HEADER_MAGIC0!r}, "
                              f"found {m0!r}")
        if m1 != HEADER_MAGIC1:
            raise FormatError("embr", offset + 0x1C, f"expected header magic "
                              f"{HEADER_MAGIC1!r}, found {m1!r}")
        return cls(crc, count, delay, version, total)


assert EmbrHeader.FORMAT.size == 32


@dataclass(frozen=True, slots=True)
class EmbrEntry:
    """eMBR 1.05 partition entry, 128 bytes."""

    flags: int
    base_lba: int
    size_sectors: int
    name: str                 # UTF-8, NUL-terminated within 64 bytes
    created: int              # seconds since 1980-01-01
    booted: int               # seconds since 1980-01-01; 0 = never
    os_signature: int

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        "<"
        "I"      # 0x00 flags: bit 0 valid, bit 1 hidden
        "4s"     # 0x04 magic "eMBR" (zero when not valid)
        "Q"      # 0x08 base LBA
        "Q"      # 0x10 sector count
        "64s"    # 0x18 name
        "Q"      # 0x58 created
        "Q"      # 0x60 last booted
        "Q"      # 0x68 OS signature
        "16x"    # 0x70 reserved
    )

    @property
    def valid(self) -> bool:
        return bool(self.flags & FLAG_VALID)

    def pack(self) -> bytes:
        name = self.name.encode()
        if len(name) >= NAME_BYTES:
            raise InternalError(f"eMBR name {self.name!r} needs {len(name)} bytes; 63 fit")
        # eMBR 1.05, "partition entry": 64-bit LBA, count, times and signature.
        for field, value in (("base LBA", self.base_lba), ("sectors", self.size_sectors),
                             ("created", self.created), ("booted", self.booted),
                             ("OS signature", self.os_signature),
                             ("end", self.base_lba + self.size_sectors)):
            if not 0 <= value < 1 << 64:
                raise InternalError(f"eMBR entry {field}={value} does not fit 64 bits")
        magic = ENTRY_MAGIC if self.valid else b"\0\0\0\0"
        return self.FORMAT.pack(self.flags, magic, self.base_lba, self.size_sectors, name,
                                self.created, self.booted, self.os_signature)

    @classmethod
    def unpack(cls, raw: bytes, offset: int) -> EmbrEntry:
        flags, magic, base, size, name, created, booted, os_sig = cls.FORMAT.unpack(raw)
        if flags & FLAG_VALID and magic != ENTRY_MAGIC:
            raise FormatError("embr", offset + 4, f"valid entry without magic "
                              f"{ENTRY_MAGIC!r}: found {magic!r}")
        text = name.split(b"\0", 1)[0].decode("utf-8", "replace")
        return cls(flags, base, size, text, created, booted, os_sig)


assert EmbrEntry.FORMAT.size == 128


@dataclass(frozen=True, slots=True)
class EmbrGeometry:
    """Where the eMBR structures sit, in sectors."""

    header_lba: int           # sect_offset
    remaining: int            # sectors after LBA 1 up to the end of the entry list
    entry_count: int

    @property
    def last_lba(self) -> int:
        return 1 + self.remaining


def geometry(entry_count: int, sector_size: int, boot_code_sectors: int = 1) -> EmbrGeometry:
    """Header right after the boot code (which starts at LBA 1, at least one sector)."""
    header_lba = 1 + max(boot_code_sectors, 1)
    block = -(-(32 + entry_count * 128) // sector_size)
    return EmbrGeometry(header_lba, header_lba + block - 2, entry_count)


def build_embr(total_sectors: int, sector_size: int, geo: EmbrGeometry,
               entries: list[EmbrEntry], boot_delay: int, boot_code: bytes,
               mbr_boot_code: bytes) -> list[tuple[int, bytes]]:
    """(LBA, bytes) of the legacy MBR, the boot code with its signature block, the header
    and the entries."""
    padded = [*entries, *[EmbrEntry(0, 0, 0, "", 0, 0, 0)] * (geo.entry_count - len(entries))]
    body = b"".join(e.pack() for e in padded)
    used = [e.base_lba + e.size_sectors for e in entries if e.valid]
    total = max([*used, geo.last_lba + 1])
    header = EmbrHeader(0, geo.entry_count, boot_delay, VERSION_1_05, total)
    crc = zlib.crc32(header.pack() + body)
    header = EmbrHeader(crc, geo.entry_count, boot_delay, VERSION_1_05, total)
    covered = total_sectors - 1
    if covered > MAX_U32:
        legacy = MbrEntry(0x80, MBR_TYPE, 1, MAX_U32, False, bytes((0, 2, 0)),
                          bytes((0xFF, 0xFF, 0xFE)))
    else:
        legacy = MbrEntry(0x80, MBR_TYPE, 1, covered, False, bytes((0, 2, 0)), chs(covered))
    code_area = (geo.header_lba - 1) * sector_size
    code = bytearray(boot_code.ljust(code_area, b"\0"))
    code[SIG_BLOCK_OFFSET:0x200] = EmbrSignatureBlock(geo.header_lba, geo.remaining).pack()
    table = (header.pack() + body).ljust((geo.last_lba + 1 - geo.header_lba) * sector_size,
                                         b"\0")
    return [
        (0, pack_sector([legacy], 0, mbr_boot_code).ljust(sector_size, b"\0")),
        (1, bytes(code)),
        (geo.header_lba, table),
    ]

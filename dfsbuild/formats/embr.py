"""eMBR 1.05: legacy MBR entry, signature block, partition header and 128-byte entries.

Reference: "The Extended MBR", version 1.05 (fysnet; seeds/embr-1.05.txt) and formats.md §3.
Integers little-endian. The CRC is the standard CRC-32 (zlib.crc32) over the 32-byte header
and ``entry_count`` entries, with the header's CRC field zero.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError, InternalError
from dfsbuild.formats.mbr import MAX_U32, MbrEntry, chs, pack_sector

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
        if not 0 <= self.entry_count <= 0xFFFF or not 0 <= self.boot_delay <= 0xFF:
            raise InternalError("eMBR header field out of range")
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
        if self.base_lba + self.size_sectors > (1 << 64) - 1:
            raise InternalError("eMBR partition passes 2^64 - 1 sectors")
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
    if geo.header_lba > 0xFFFF or geo.remaining > 0xFFFF:
        raise InternalError("eMBR sect_offset/remaining exceed 16 bits")
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
    block = SIG_BLOCK + struct.pack("<HH", geo.header_lba, geo.remaining) + b"\x55\xaa"
    code[SIG_BLOCK_OFFSET:0x200] = block
    table = (header.pack() + body).ljust((geo.last_lba + 1 - geo.header_lba) * sector_size,
                                         b"\0")
    return [
        (0, pack_sector([legacy], 0, mbr_boot_code).ljust(sector_size, b"\0")),
        (1, bytes(code)),
        (geo.header_lba, table),
    ]


@dataclass(frozen=True, slots=True)
class EmbrTable:
    header_lba: int
    remaining: int
    header: EmbrHeader
    entries: tuple[EmbrEntry, ...]
    crc_ok: bool


def parse_embr(read: Callable[[int, int], bytes], sector_size: int) -> EmbrTable:
    """``read(offset, n) -> bytes``: parse the eMBR structures after a 0xE0 legacy entry."""
    lba1 = read(sector_size, 512)
    if lba1[SIG_BLOCK_OFFSET:SIG_BLOCK_OFFSET + 8] != SIG_BLOCK:
        raise FormatError("embr", sector_size + SIG_BLOCK_OFFSET,
                          f"expected signature {SIG_BLOCK!r}, found "
                          f"{lba1[SIG_BLOCK_OFFSET:SIG_BLOCK_OFFSET + 8]!r}")
    header_lba, remaining, legacy_sig = struct.unpack_from("<HHH", lba1, 0x1FA)
    if legacy_sig != 0xAA55:
        raise FormatError("embr", sector_size + 0x1FE, f"expected 55 aa, found "
                          f"{legacy_sig:#06x}")
    if header_lba < 2 or header_lba > 1 + remaining:
        raise FormatError("embr", sector_size + 0x1FA, f"header LBA {header_lba} is outside "
                          f"LBA 2..{1 + remaining}")
    at = header_lba * sector_size
    raw_header = read(at, 32)
    header = EmbrHeader.unpack(raw_header, at)
    body = read(at + 32, header.entry_count * 128)
    zeroed = raw_header[:4] + bytes(4) + raw_header[8:]
    entries = tuple(EmbrEntry.unpack(body[i * 128:(i + 1) * 128], at + 32 + i * 128)
                    for i in range(header.entry_count))
    return EmbrTable(header_lba, remaining, header, entries,
                     zlib.crc32(zeroed + body) == header.crc)

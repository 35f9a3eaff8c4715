"""Reading an eMBR 1.05 table: legacy entry 0xE0 at LBA 1, the signature block (at 512- or
4096-byte sectors, whichever the bytes show), the header, the entries and their CRC-32."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables.base import DiskPartition, DiskTable
from dfsbuild.tables.embr.records import (
    FLAG_HIDDEN,
    MBR_TYPE,
    SIG_BLOCK,
    SIG_BLOCK_OFFSET,
    VERSION_1_05,
    EmbrEntry,
    EmbrHeader,
    EmbrSignatureBlock,
)
from dfsbuild.tables.mbr.records import (
    BOOT_SIGNATURE,
    SECTOR,
    SIGNATURE_OFFSET,
    TABLE_OFFSET,
    MbrEntry,
)

SECTOR_SIZES = (512, 4096)


@dataclass(frozen=True, slots=True)
class EmbrTable:
    header_lba: int
    remaining: int
    header: EmbrHeader
    entries: tuple[EmbrEntry, ...]
    crc_ok: bool


def detect_embr(src: ByteSource) -> bool:
    head = src.read_upto(0, SECTOR)
    if len(head) < SECTOR or head[SIGNATURE_OFFSET:SECTOR] != BOOT_SIGNATURE:
        return False
    first = MbrEntry.unpack(head[TABLE_OFFSET:TABLE_OFFSET + 16])
    if first.type != MBR_TYPE or first.start_lba != 1:
        return False
    # An MBR may hold any partition of type 0xE0 at LBA 1: only the signature block says eMBR.
    return any(src.read_upto(ss + SIG_BLOCK_OFFSET, 8) == SIG_BLOCK for ss in SECTOR_SIZES)


def sector_size_of(src: ByteSource, given: int | None) -> int:
    sizes = (given,) if given else SECTOR_SIZES
    for ss in sizes:
        if src.read_upto(ss + SIG_BLOCK_OFFSET, 8) == SIG_BLOCK:
            return ss
    return sizes[0]


def parse_embr(src: ByteSource, ss: int) -> EmbrTable:
    """The eMBR structures after a 0xE0 legacy entry, with ``ss``-byte sectors."""
    block = EmbrSignatureBlock.unpack(src.read(ss + SIG_BLOCK_OFFSET, 14), ss + SIG_BLOCK_OFFSET)
    header_lba, remaining = block.header_lba, block.remaining
    if header_lba < 2 or header_lba > 1 + remaining:
        raise FormatError("embr", ss + 0x1FA, f"header LBA {header_lba} is outside "
                          f"LBA 2..{1 + remaining}")
    at = header_lba * ss
    raw_header = src.read(at, 32)
    header = EmbrHeader.unpack(raw_header, at)
    body = src.read(at + 32, header.entry_count * 128)   # bounded by the image
    zeroed = raw_header[:4] + bytes(4) + raw_header[8:]
    entries = tuple(EmbrEntry.unpack(body[i * 128:(i + 1) * 128], at + 32 + i * 128)
                    for i in range(header.entry_count))
    return EmbrTable(header_lba, remaining, header, entries,
                     zlib.crc32(zeroed + body) == header.crc)


def read_embr(src: ByteSource, sector_size: int | None) -> DiskTable:
    src = src.named("embr")
    ss = sector_size_of(src, sector_size)
    table = parse_embr(src, ss)
    problems = []
    if not table.crc_ok:
        problems.append((table.header_lba * ss + 4, "eMBR header CRC-32 mismatch"))
    if table.header.version < VERSION_1_05:
        problems.append((table.header_lba * ss + 0x0B, f"version {table.header.version:#x} "
                         "is older than 1.05 (0x25)"))
    parts = []
    for i, e in enumerate(table.entries):
        if not e.valid:
            continue
        hidden = bool(e.flags & FLAG_HIDDEN)
        dump = [f'name="{e.name}"'] if e.name else []
        if hidden:
            dump.append("hidden")
        if e.os_signature:
            dump.append(f"os-signature=0x{e.os_signature:016x}")
        parts.append(DiskPartition(i + 1, e.base_lba, e.size_sectors, "embr", False, e.name,
                                   {"name": e.name, "hidden": hidden, "created": e.created,
                                    "booted": e.booted, "os_signature": e.os_signature,
                                    "flags": e.flags}, dump))
    extra = {"header_lba": table.header_lba, "remaining": table.remaining,
             "entry_count": table.header.entry_count, "boot_delay": table.header.boot_delay,
             "version": f"0x{table.header.version:02x}",
             "total_sectors": table.header.total_sectors, "crc_ok": table.crc_ok}
    trailer = ["", f"embr: header at LBA {table.header_lba}, remaining {table.remaining}, "
               f"{table.header.entry_count} entries, boot delay {table.header.boot_delay}s, "
               f"version {extra['version']}, total sectors {table.header.total_sectors}, CRC "
               f"{'ok' if table.crc_ok else 'BAD'}"]
    return DiskTable("embr", f"0x{table.header.crc:08x}", ss, parts, problems, extra, [],
                     trailer)

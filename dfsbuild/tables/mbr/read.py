"""Reading an MBR and its EBR chain as sfdisk and the kernel read them.

A sector is taken for an MBR only when it ends in 55 AA and every boot indicator is one the
kernel accepts (0x00 or 0x80; 0x01/0x81 only with the 48-bit signatures), as Linux
block/partitions/msdos.c does; filesystem boot sectors are recognised before this runs.
"""

from __future__ import annotations

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables.base import DiskPartition, DiskTable
from dfsbuild.tables.mbr.ebr import walk_ebrs
from dfsbuild.tables.mbr.records import (
    BOOT_CODE_BYTES,
    BOOT_SIGNATURE,
    SECTOR,
    SIGNATURE_OFFSET,
    TABLE_OFFSET,
    MbrEntry,
    unpack_sector,
    valid_status,
)
from dfsbuild.tables.parttypes import EXTENDED_TYPES


def detect_mbr(src: ByteSource) -> bool:
    head = src.read_upto(0, SECTOR)
    if len(head) < SECTOR or head[SIGNATURE_OFFSET:SECTOR] != BOOT_SIGNATURE:
        return False
    return all(valid_status(head[TABLE_OFFSET + 16 * i:TABLE_OFFSET + 16 * i + 16])
               for i in range(4))


def _entry(number: int, e: MbrEntry, start: int, **extra: object) -> DiskPartition:
    info = dict(extra)
    dump = ["bootable"] if e.bootable else []
    if e.lba48:
        info["lba48"] = True
        dump.append("lba48")
    return DiskPartition(number, start, e.size_sectors, f"{e.type:x}", e.bootable,
                         extra=info, dump=dump)


def read_mbr(src: ByteSource, ss: int) -> DiskTable:
    src = src.named("mbr")
    mbr = unpack_sector(src.read(0, SECTOR), 0)
    for i in range(4):
        raw = src.read(TABLE_OFFSET + 16 * i, 16)
        if not valid_status(raw):
            raise FormatError("mbr", TABLE_OFFSET + 16 * i, f"boot indicator {raw[0]:#04x} "
                              f"of entry {i + 1} is neither 0x00 nor 0x80: not a partition table")
    parts = []
    problems: list[tuple[int, str]] = []
    extended = None
    for slot, e in enumerate(mbr.entries, 1):
        if e.empty:
            continue
        parts.append(_entry(slot, e, e.start_lba))
        if e.type in EXTENDED_TYPES:
            if extended is not None:
                problems.append((TABLE_OFFSET + 16 * (slot - 1), "a second extended partition"))
                continue
            extended = e
    if extended is not None:
        for number, found in enumerate(walk_ebrs(src, extended, ss), 5):
            parts.append(_entry(number, found.entry, found.ebr_lba + found.entry.start_lba,
                                logical=True, ebr_lba=found.ebr_lba))
    return DiskTable("dos", f"0x{mbr.disk_id:08x}", ss, parts, problems,
                     structures=[(0, ss)],           # EBRs lie inside the extended partition
                     boot_code=BOOT_CODE_BYTES)


"""A planned disk → the bytes of its partition-table structures, as (LBA, bytes). Pure."""

from __future__ import annotations

import uuid

from dfsbuild.diskplan import DiskLayout
from dfsbuild.errors import LayoutError
from dfsbuild.formats import embr, gpt
from dfsbuild.formats.mbr import MAX_U32, Logical, MbrEntry, ebr_chain, pack_sector
from dfsbuild.formats.parttypes import HYBRID_DEFAULTS

Structures = list[tuple[int, bytes]]


def table_structures(layout: DiskLayout, boot_code: bytes = b"", file: str = "") -> Structures:
    if layout.table == "mbr":
        return _mbr(layout)
    if layout.table == "gpt":
        return _gpt(layout)
    return _embr(layout, boot_code, file)


def _mbr(layout: DiskLayout) -> Structures:
    slots: dict[int, MbrEntry] = {}
    logicals = []
    for p in layout.partitions:
        assert isinstance(p.type, int)
        if p.logical:
            assert p.ebr_lba is not None
            logicals.append(Logical(p.ebr_lba, p.start_lba, p.size_sectors, p.type, p.bootable))
            continue
        status = 0x80 if p.bootable else 0
        if layout.lba48 and (p.start_lba > MAX_U32 or p.size_sectors > MAX_U32):
            slots[p.number] = MbrEntry(status, p.type, p.start_lba, p.size_sectors, True)
        else:
            slots[p.number] = MbrEntry.classic(status, p.type, p.start_lba, p.size_sectors)
    out: Structures = []
    if layout.extended is not None:
        slot, start, size = layout.extended
        slots[slot] = MbrEntry.classic(0, 0x05, start, size)
        out += ebr_chain(start, logicals)
    entries = [slots.get(i, MbrEntry(0, 0, 0, 0)) for i in range(1, 5)]
    while entries and entries[-1].empty:
        entries.pop()
    sector = pack_sector(entries, layout.disk_id).ljust(layout.sector_size, b"\0")
    return [(0, sector), *[(lba, data.ljust(layout.sector_size, b"\0")) for lba, data in out]]


def _gpt(layout: DiskLayout) -> Structures:
    entries = []
    hybrid = []
    for p in layout.partitions:
        assert isinstance(p.type, str) and p.uuid is not None
        entries.append(gpt.GptEntry(uuid.UUID(p.type), uuid.UUID(p.uuid), p.start_lba,
                                    p.last_lba, p.attributes, p.name))
        if p.hybrid:
            byte = p.mbr_type if p.mbr_type is not None else HYBRID_DEFAULTS.get(p.type, 0x83)
            hybrid.append(MbrEntry.classic(0x80 if p.bootable else 0, byte, p.start_lba,
                                           p.size_sectors))
    return gpt.build_gpt(layout.total_sectors, layout.sector_size, uuid.UUID(layout.guid),
                         entries, hybrid or None)


def check_boot_code(code: bytes, file: str) -> None:
    """Boot code for the sectors from LBA 1 must leave the signature block to dfsbuild."""
    area = code[embr.SIG_BLOCK_OFFSET:0x200]
    if area.strip(b"\0") and area[:8] != embr.SIG_BLOCK:
        raise LayoutError(file, "disk.boot-code", f"bytes 0x1f2..0x1ff of the boot code hold "
                          f"{area.hex(' ')}; they are the eMBR signature block (leave them "
                          "zero: dfsbuild fills them)")


def _embr(layout: DiskLayout, boot_code: bytes, file: str) -> Structures:
    geo = layout.embr_geometry
    assert geo is not None
    if boot_code:
        check_boot_code(boot_code, file)
    entries = [
        embr.EmbrEntry(embr.FLAG_VALID | (embr.FLAG_HIDDEN if p.hidden else 0), p.start_lba,
                       p.size_sectors, p.name, layout.created, 0, p.os_signature)
        for p in layout.partitions
    ]
    return embr.build_embr(layout.total_sectors, layout.sector_size, geo, entries,
                           layout.boot_delay, boot_code or embr.DEFAULT_BOOT_CODE,
                           embr.DEFAULT_BOOT_CODE)

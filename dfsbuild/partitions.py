"""Reading partition tables (MBR with its EBR chain, GPT, eMBR) into one model.

Readers never trust a pointer: EBR chains are walked with a visited set and a bound, GPT
headers and arrays are CRC-checked (a damaged primary is reported and the backup used), eMBR
magics and CRC are checked. Every problem names its byte offset.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from dfsbuild.errors import FormatError
from dfsbuild.formats import embr, gpt
from dfsbuild.formats.mbr import SECTOR, MbrEntry, unpack_sector
from dfsbuild.formats.parttypes import EXTENDED_TYPES

MAX_LOGICAL = 1024


@dataclass(slots=True)
class DiskPartition:
    number: int
    start_lba: int
    size_sectors: int
    type: str                    # MBR: hex byte ("83"); GPT: type GUID; eMBR: "embr"
    bootable: bool = False
    name: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def last_lba(self) -> int:
        return self.start_lba + self.size_sectors - 1


@dataclass(slots=True)
class DiskTable:
    label: str                   # dos | gpt | embr (sfdisk's names)
    id: str
    sector_size: int
    partitions: list[DiskPartition]
    problems: list[tuple[int, str]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def find(self, selector: str) -> DiskPartition:
        for p in self.partitions:
            if selector.isdigit() and p.number == int(selector):
                return p
        for p in self.partitions:
            if p.name == selector:
                return p
        names = ", ".join(f"{p.number}" + (f" ({p.name})" if p.name else "")
                          for p in self.partitions)
        raise FormatError(self.label, None, f"no partition {selector!r}; there are: "
                          f"{names or 'none'}")


class _Disk:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.size = f.seek(0, os.SEEK_END)

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset + n > self.size:
            raise FormatError("disk", offset, f"{n} bytes at {offset} pass the end of the "
                              f"image ({self.size} bytes)")
        self.f.seek(offset)
        return self.f.read(n)


def has_table(f: BinaryIO) -> bool:
    f.seek(510)
    return f.read(2) == b"\x55\xaa"


def read_table(f: BinaryIO, sector_size: int | None = None) -> DiskTable:
    disk = _Disk(f)
    mbr = unpack_sector(disk.read(0, SECTOR), 0)
    if any(e.type == 0xEE for e in mbr.entries):
        return _read_gpt(disk, mbr.entries, sector_size)
    first = mbr.entries[0]
    ss = sector_size or 512
    if first.type == embr.MBR_TYPE and first.start_lba == 1:
        return _read_embr(disk, ss)
    return _read_dos(disk, mbr.disk_id, mbr.entries, ss)


def _entry(number: int, e: MbrEntry, **extra: object) -> DiskPartition:
    info = dict(extra)
    if e.lba48:
        info["lba48"] = True
    return DiskPartition(number, e.start_lba, e.size_sectors, f"{e.type:x}", e.bootable,
                         extra=info)


def _read_dos(disk: _Disk, disk_id: int, entries: tuple[MbrEntry, ...], ss: int) -> DiskTable:
    parts = []
    problems: list[tuple[int, str]] = []
    extended = None
    for slot, e in enumerate(entries, 1):
        if e.empty:
            continue
        parts.append(_entry(slot, e))
        if e.type in EXTENDED_TYPES:
            if extended is not None:
                problems.append((0x1BE + 16 * (slot - 1), "a second extended partition"))
                continue
            extended = e
    if extended is not None:
        parts += _walk_ebrs(disk, extended, ss)
    return DiskTable("dos", f"0x{disk_id:08x}", ss, parts, problems)


def _walk_ebrs(disk: _Disk, extended: MbrEntry, ss: int) -> list[DiskPartition]:
    base = extended.start_lba
    end = base + extended.size_sectors
    ebr = base
    seen: set[int] = set()
    out = []
    number = 5
    while True:
        if ebr in seen:
            raise FormatError("mbr", ebr * ss, "the EBR chain loops")
        if len(seen) >= MAX_LOGICAL:
            raise FormatError("mbr", ebr * ss, f"more than {MAX_LOGICAL} logical partitions")
        if not base <= ebr < end:
            raise FormatError("mbr", ebr * ss, f"EBR at sector {ebr} lies outside the "
                              f"extended partition ({base}..{end - 1})")
        seen.add(ebr)
        sector = unpack_sector(disk.read(ebr * ss, SECTOR), ebr * ss)
        data, link = sector.entries[0], sector.entries[1]
        if not data.empty:
            out.append(DiskPartition(number, ebr + data.start_lba, data.size_sectors,
                                     f"{data.type:x}", data.bootable,
                                     extra={"logical": True, "ebr_lba": ebr}))
            number += 1
        if link.empty or link.type not in EXTENDED_TYPES:
            return out
        ebr = base + link.start_lba


def _read_gpt(disk: _Disk, mbr_entries: tuple[MbrEntry, ...],
              sector_size: int | None) -> DiskTable:
    sizes = [sector_size] if sector_size else [512, 4096]
    ss = next((s for s in sizes if disk.size >= 2 * s and
               disk.read(s, 8) == gpt.SIGNATURE), sizes[0])
    problems: list[tuple[int, str]] = []
    total = disk.size // ss
    header, array = None, b""
    candidates = [1]
    try:
        header = gpt.GptHeader.unpack(disk.read(ss, ss), ss)
        array = _read_array(disk, header, ss)
    except FormatError as exc:
        problems.append((exc.offset or ss, f"primary GPT: {exc.message}; using the backup"))
        header = None
        candidates = [total - 1]
    if header is None:
        for lba in candidates:
            try:
                header = gpt.GptHeader.unpack(disk.read(lba * ss, ss), lba * ss)
                array = _read_array(disk, header, ss)
            except FormatError as exc:
                raise FormatError("gpt", exc.offset, "both GPT headers are damaged: "
                                  f"{exc.message}") from None
    else:
        try:
            backup = gpt.GptHeader.unpack(disk.read(header.alternate_lba * ss, ss),
                                          header.alternate_lba * ss)
            _read_array(disk, backup, ss)
        except FormatError as exc:
            problems.append((exc.offset or 0, f"backup GPT: {exc.message}"))
    assert header is not None
    parts = []
    for i in range(header.entry_count):
        raw = array[i * header.entry_size:i * header.entry_size + gpt.ENTRY_SIZE]
        entry = gpt.GptEntry.unpack(raw)
        if not entry.used:
            continue
        parts.append(DiskPartition(
            i + 1, entry.first_lba, entry.last_lba - entry.first_lba + 1,
            str(entry.type_guid).upper(), bool(entry.attributes & 4), entry.name,
            extra={"uuid": str(entry.unique_guid).upper(), "attributes": entry.attributes}))
    hybrid = [e for e in mbr_entries if not e.empty and e.type != 0xEE]
    extra: dict[str, object] = {"firstlba": header.first_usable_lba,
                                "lastlba": header.last_usable_lba}
    if hybrid:
        extra["hybrid_mbr"] = [{"start": e.start_lba, "size": e.size_sectors,
                                "type": f"{e.type:x}", "bootable": e.bootable} for e in hybrid]
    return DiskTable("gpt", str(header.disk_guid).upper(), ss, parts, problems, extra)


def _read_array(disk: _Disk, header: gpt.GptHeader, ss: int) -> bytes:
    if header.entry_size < gpt.ENTRY_SIZE or header.entry_size % 8 or \
            header.entry_count > 4096:
        raise FormatError("gpt", header.my_lba * ss + 80, f"implausible entry array: "
                          f"{header.entry_count} entries of {header.entry_size} bytes")
    array = disk.read(header.entries_lba * ss, header.entry_count * header.entry_size)
    if zlib.crc32(array) != header.entries_crc:
        raise FormatError("gpt", header.entries_lba * ss, "partition entry array CRC32 "
                          f"mismatch: stored {header.entries_crc:#010x}, computed "
                          f"{zlib.crc32(array):#010x}")
    return array


def _read_embr(disk: _Disk, ss: int) -> DiskTable:
    table = embr.parse_embr(disk.read, ss)
    problems = []
    if not table.crc_ok:
        problems.append((table.header_lba * ss + 4, "eMBR header CRC-32 mismatch"))
    if table.header.version < embr.VERSION_1_05:
        problems.append((table.header_lba * ss + 0x0B, f"version {table.header.version:#x} "
                         "is older than 1.05 (0x25)"))
    parts = []
    for i, e in enumerate(table.entries):
        if not e.valid:
            continue
        parts.append(DiskPartition(i + 1, e.base_lba, e.size_sectors, "embr", False, e.name,
                                   extra={"hidden": bool(e.flags & embr.FLAG_HIDDEN),
                                          "created": e.created, "booted": e.booted,
                                          "os_signature": e.os_signature,
                                          "flags": e.flags}))
    extra = {"header_lba": table.header_lba, "remaining": table.remaining,
             "entry_count": table.header.entry_count, "boot_delay": table.header.boot_delay,
             "version": f"0x{table.header.version:02x}",
             "total_sectors": table.header.total_sectors, "crc_ok": table.crc_ok}
    return DiskTable("embr", f"0x{table.header.crc:08x}", ss, parts, problems, extra)

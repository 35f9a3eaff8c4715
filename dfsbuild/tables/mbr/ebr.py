"""The extended partition's EBR chain: writing it as sfdisk does, walking it as the kernel
does (link in any of the four slots, a visited set and a bound).

References: formats.md §4.3 (checked against sfdisk 2.38), Linux block/partitions/msdos.c
parse_extended().
"""

from __future__ import annotations

from dataclasses import dataclass

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables.mbr.records import SECTOR, MbrEntry, pack_sector, unpack_sector
from dfsbuild.tables.parttypes import EXTENDED_TYPES

MAX_LOGICAL = 1024


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


@dataclass(frozen=True, slots=True)
class FoundLogical:
    ebr_lba: int
    entry: MbrEntry            # start relative to the EBR


def walk_ebrs(src: ByteSource, extended: MbrEntry, ss: int) -> list[FoundLogical]:
    """Every logical partition of the chain starting at the extended partition."""
    base = extended.start_lba
    end = base + extended.size_sectors
    ebr = base
    seen: set[int] = set()
    out = []
    while True:
        if ebr in seen:
            raise FormatError("mbr", ebr * ss, "the EBR chain loops")
        if len(seen) >= MAX_LOGICAL:
            raise FormatError("mbr", ebr * ss, f"more than {MAX_LOGICAL} logical partitions")
        if not base <= ebr < end:
            raise FormatError("mbr", ebr * ss, f"EBR at sector {ebr} lies outside the "
                              f"extended partition ({base}..{end - 1})")
        seen.add(ebr)
        sector = unpack_sector(src.read(ebr * ss, SECTOR), ebr * ss)
        # As the kernel: every non-extended entry with sectors is a logical partition and the
        # first extended entry with sectors is the link, whatever their slots (DR-DOS, OS/2).
        out += [FoundLogical(ebr, e) for e in sector.entries
                if e.size_sectors and not e.empty and e.type not in EXTENDED_TYPES]
        link = next((e for e in sector.entries
                     if e.size_sectors and e.type in EXTENDED_TYPES), None)
        if link is None:
            return out
        ebr = base + link.start_lba

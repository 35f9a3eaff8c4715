"""Partition-table kinds: one registry, one package per kind.

The order is the detection order when reading an unknown disk: a GPT's protective MBR and an
eMBR's legacy entry are both valid MBRs, so they are tried first.
"""

from __future__ import annotations

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables import none
from dfsbuild.tables.base import DiskTable, TableKind
from dfsbuild.tables.embr import handler as embr
from dfsbuild.tables.gpt import handler as gpt
from dfsbuild.tables.mbr import handler as mbr

TABLE_KINDS: dict[str, TableKind] = {
    "gpt": gpt.KIND,
    "embr": embr.KIND,
    "mbr": mbr.KIND,
    "none": none.KIND,
}


def detect_table(src: ByteSource) -> TableKind | None:
    for kind in TABLE_KINDS.values():
        if kind.detect(src):
            return kind
    return None


def read_table(src: ByteSource, sector_size: int | None = None) -> DiskTable:
    """The partition table of a disk image; FormatError when none is recognised."""
    kind = detect_table(src)
    if kind is None:
        raise FormatError("disk", 0, "no partition table recognised (MBR, GPT or eMBR)")
    return kind.read(src, sector_size)

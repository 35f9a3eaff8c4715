"""What an image holds: a filesystem of a registered type, a filesystem dfsbuild recognises
but does not read yet, or a partition table. Filesystems are tried first: a FAT, exFAT or
NTFS boot sector ends in 55 AA like an MBR, and must not be read as one."""

from __future__ import annotations

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.images.base import FsReader, ImageType
from dfsbuild.tables import detect_table
from dfsbuild.tables.base import TableKind

PROBE_BYTES = 4096


def filesystem_type(src: ByteSource) -> ImageType | None:
    head = src.read_upto(0, PROBE_BYTES)
    for t in IMAGE_TYPES.values():
        if t.probe(head):
            return t
    return None


def foreign_filesystem(src: ByteSource) -> str | None:
    """A boot-sector filesystem dfsbuild has no reader for: "exfat" or "ntfs"."""
    head = src.read_upto(0, 512)
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return None
    if head[3:11] == b"EXFAT   ":
        return "exfat"
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    return None


def table_kind(src: ByteSource) -> TableKind | None:
    """The partition-table kind of a whole disk (None for a filesystem or unknown bytes)."""
    if filesystem_type(src) is not None or foreign_filesystem(src) is not None:
        return None
    return detect_table(src)


def open_filesystem(src: ByteSource, name: str, partitioned: bool) -> FsReader:
    """A reader for the filesystem in ``src``; FormatError naming what was found instead."""
    t = filesystem_type(src)
    if t is not None:
        return t.reader(src)
    foreign = foreign_filesystem(src)
    if foreign is not None:
        raise FormatError(foreign, 0, f"{name} holds a {foreign.upper()} filesystem, which "
                          "this dfsbuild recognises but cannot read yet")
    if not partitioned and detect_table(src) is not None:
        raise FormatError("image", 0, f"{name} is a partitioned disk: name a partition, as "
                          f"{name}:1 or {name}:NAME")
    found = src.read_upto(0, 8)
    known = ", ".join(t.name for t in IMAGE_TYPES.values()
                      if type(t).reader is not ImageType.reader)
    raise FormatError("image", 0, f"no filesystem recognised in {name} ({known} expected; "
                      f"the first bytes are {found.hex(' ') or '(empty)'})")


def describe_filesystem(src: ByteSource) -> str | None:
    """The filesystem's name at the start of ``src``, for partition listings."""
    t = filesystem_type(src)
    return t.name if t is not None else foreign_filesystem(src)

"""Recognising what an image file holds, and opening ``DISK:PART`` targets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from dfsbuild.errors import FormatError, InputError
from dfsbuild.formats.romfs import MAGIC as ROMFS_MAGIC
from dfsbuild.formats.romfs_read import RomfsReader
from dfsbuild.partitions import DiskPartition, DiskTable, has_table, read_table


@dataclass
class Target:
    """An opened image, or one partition of a disk image."""

    f: BinaryIO
    path: str
    base: int = 0
    length: int | None = None
    partition: DiskPartition | None = None

    def close(self) -> None:
        self.f.close()


def open_target(spec: str) -> Target:
    """``IMAGE``, or ``DISK:PART`` where PART is a partition number or name."""
    if os.path.exists(spec) or ":" not in spec:
        return Target(_open(spec), spec)
    path, _, selector = spec.rpartition(":")
    f = _open(path)
    try:
        table = read_table(f)
        part = table.find(selector)
    except BaseException:
        f.close()
        raise
    ss = table.sector_size
    return Target(f, path, part.start_lba * ss, part.size_sectors * ss, part)


def _open(path: str) -> BinaryIO:
    try:
        f = open(path, "rb")  # noqa: SIM115 - owned by the Target
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    if not f.seekable():
        f.close()
        raise InputError(f"{path}: not a seekable file (a pipe?); save the image to a file "
                         "first")
    return f


def filesystem_name(f: BinaryIO, base: int = 0) -> str | None:
    f.seek(base)
    head = f.read(16)
    if head[:8] == ROMFS_MAGIC:
        return "romfs"
    return None


def disk_table(t: Target) -> DiskTable | None:
    """The partition table of a whole-disk target (None for a bare filesystem)."""
    if t.partition is not None or filesystem_name(t.f) is not None or not has_table(t.f):
        return None
    return read_table(t.f)


def open_filesystem(t: Target) -> RomfsReader:
    """A reader for the filesystem of ``t``; FormatError if none is recognised."""
    kind = filesystem_name(t.f, t.base)
    if kind == "romfs":
        return RomfsReader(t.f, t.base, t.length)
    if t.partition is None and has_table(t.f):
        raise FormatError("image", 0, f"{t.path} is a partitioned disk: name a partition, "
                          f"as {t.path}:1 or {t.path}:NAME")
    t.f.seek(t.base)
    found = t.f.read(8)
    raise FormatError("image", t.base, "no filesystem recognised (romfs expected: magic "
                      f"{ROMFS_MAGIC!r}, found {found!r})")

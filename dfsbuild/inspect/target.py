"""Opening ``IMAGE`` and ``DISK:PART`` targets as bounded byte sources."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from dfsbuild.errors import FormatError, InputError
from dfsbuild.fileio.source import ByteSource, open_image
from dfsbuild.tables import read_table
from dfsbuild.tables.base import DiskPartition, DiskTable


@dataclass
class Target:
    """An opened image, or one partition of a disk image."""

    f: BinaryIO
    path: str
    src: ByteSource
    partition: DiskPartition | None = None
    table: DiskTable | None = None
    sector_size: int | None = None       # as given on the command line

    @property
    def name(self) -> str:
        if self.partition is None:
            return self.path
        return f"{self.path}:{self.partition.number}"

    def close(self) -> None:
        self.f.close()


def open_target(spec: str, sector_size: int | None = None, write: bool = False) -> Target:
    """``IMAGE``, or ``DISK:PART`` where PART is a partition number or name."""
    if os.path.exists(spec) or ":" not in spec:
        f = open_image(spec, write)
        return Target(f, spec, ByteSource(f), sector_size=sector_size)
    path, _, selector = spec.rpartition(":")
    if not selector:
        raise InputError(f"{spec}: name a partition after the colon (a number or a name)")
    f = open_image(path, write)
    try:
        disk = ByteSource(f)
        table = read_table(disk, sector_size)
        part = table.find(selector)
        ss = table.sector_size
        start, size = part.start_lba * ss, part.size_sectors * ss
        if size <= 0 or start + size > disk.size:
            raise FormatError(table.label, start, f"partition {part.number} (sectors "
                              f"{part.start_lba}..{part.last_lba}) passes the end of the image "
                              f"({disk.size // ss} sectors of {ss} bytes)")
        return Target(f, path, disk.sub(start, size), part, table, sector_size)
    except BaseException:
        f.close()
        raise

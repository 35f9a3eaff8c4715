"""Recognising what an image file holds."""

from __future__ import annotations

from typing import BinaryIO

from dfsbuild.errors import FormatError
from dfsbuild.formats.romfs import MAGIC as ROMFS_MAGIC
from dfsbuild.formats.romfs_read import RomfsReader


def open_filesystem(f: BinaryIO, base: int = 0) -> RomfsReader:
    """A reader for the filesystem at ``base``; FormatError if none is recognised."""
    f.seek(base)
    head = f.read(16)
    if head[:8] == ROMFS_MAGIC:
        return RomfsReader(f, base)
    raise FormatError("image", base, "no filesystem recognised (romfs expected: magic "
                      f"{ROMFS_MAGIC!r}, found {head[:8]!r})")

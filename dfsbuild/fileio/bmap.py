"""A block map beside a disk, in bmaptool's format (version 2.0): which 4 KiB blocks hold
data, each range with its sha256, so ``bmaptool copy`` writes only those.

The mapped blocks are the file's data as SEEK_DATA/SEEK_HOLE report it, which is what
``bmaptool create`` maps. That is right only when every byte whose zero value matters was
written (not left a hole): dfsbuild's writers leave holes only where a reader never looks
(free clusters, padding after a terminator, space past a filesystem's end).
"""

from __future__ import annotations

import hashlib
import os

from dfsbuild.fileio.atomic import atomic_write
from dfsbuild.fileio.copy import BUFFER, data_extents

BLOCK = 4096
_ZERO_SUM = "0" * 64


def data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    """(first, last) block numbers (inclusive) of every run of blocks holding data."""
    runs: list[tuple[int, int]] = []
    for start, end in data_extents(fd, size):
        first, last = start // BLOCK, (end - 1) // BLOCK
        if runs and first <= runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], max(runs[-1][1], last))
        else:
            runs.append((first, last))
    return runs


def _range_sha256(fd: int, first: int, last: int, size: int) -> str:
    h = hashlib.sha256()
    pos, end = first * BLOCK, min((last + 1) * BLOCK, size)
    while pos < end:
        chunk = os.pread(fd, min(BUFFER, end - pos), pos)
        if not chunk:
            raise OSError(0, f"file shorter than {size} bytes")
        h.update(chunk)
        pos += len(chunk)
    return h.hexdigest()


def bmap_text(fd: int, size: int) -> str:
    """The .bmap file's text for the first ``size`` bytes of ``fd``."""
    blocks = -(-size // BLOCK)
    ranges = [(first, last, _range_sha256(fd, first, last, size))
              for first, last in data_ranges(fd, size)]
    mapped = sum(last - first + 1 for first, last, _ in ranges)
    lines = [
        '<?xml version="1.0" ?>',
        "<!-- Block map of a disk image made by dfsbuild: the blocks that hold data. Flash",
        "     it with: bmaptool copy IMAGE DEVICE (the .bmap beside IMAGE is found). -->",
        '<bmap version="2.0">',
        f"    <ImageSize> {size} </ImageSize>",
        f"    <BlockSize> {BLOCK} </BlockSize>",
        f"    <BlocksCount> {blocks} </BlocksCount>",
        f"    <!-- {mapped * BLOCK} of {size} bytes mapped -->",
        f"    <MappedBlocksCount> {mapped} </MappedBlocksCount>",
        "    <ChecksumType> sha256 </ChecksumType>",
        f"    <BmapFileChecksum> {_ZERO_SUM} </BmapFileChecksum>",
        "    <BlockMap>",
        *(f'        <Range chksum="{sha}"> {first if first == last else f"{first}-{last}"} '
          "</Range>" for first, last, sha in ranges),
        "    </BlockMap>",
        "</bmap>",
        "",
    ]
    text = "\n".join(lines)
    # The file's own checksum is taken with its field all zeros, then put in.
    total = hashlib.sha256(text.encode()).hexdigest()
    return text.replace(_ZERO_SUM, total, 1)


def write_bmap(image: str, path: str) -> None:
    """Write ``path``, the block map of the file ``image``, atomically."""
    src = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = bmap_text(src, os.fstat(src).st_size)
    finally:
        os.close(src)
    atomic_write(path, text.encode())

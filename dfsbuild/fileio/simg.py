"""Android sparse images (format 1.0, as libsparse, fastboot, U-Boot's ``mmc swrite`` and NXP's
uuu read them): a 28-byte header, then chunks, each a 12-byte header and its data. A chunk
covers whole blocks of the image: RAW (the blocks' bytes), FILL (one 32-bit value repeated),
DONT_CARE (nothing is written: the flashing tool skips the blocks) or CRC32 (the CRC-32 of every
block before it, the blocks of DONT_CARE counted as zeros).

dfsbuild writes DONT_CARE only for the image's holes, which its writers leave only where no
reader looks (free clusters, gaps between partitions, space past a filesystem's end: see
bmap.py); every byte written, zeros included, is RAW or FILL, so it reaches the card.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError
from dfsbuild.fileio.atomic import atomic_output
from dfsbuild.fileio.copy import BUFFER, data_extents

MAGIC = 0xED26FF3A
BLOCK = 4096
RAW, FILL, DONT_CARE, CRC32 = 0xCAC1, 0xCAC2, 0xCAC3, 0xCAC4
CHUNK_NAMES = {RAW: "raw", FILL: "fill", DONT_CARE: "dont-care", CRC32: "crc32"}
MAX_RAW_BLOCKS = (1 << 30) // BLOCK        # a RAW chunk's data stays far below 4 GiB


@dataclass(frozen=True, slots=True)
class SparseHeader:
    """The file header, 28 bytes."""

    block_size: int
    total_blocks: int
    total_chunks: int
    header_size: int = 28        # what a reader skips to the first chunk
    chunk_header_size: int = 12  # what a reader skips to a chunk's data
    checksum: int = 0            # CRC-32 of the image; 0: none (libsparse writes 0)

    FORMAT: ClassVar = struct.Struct(
        "<"
        "I"      # 0x00 magic 0xED26FF3A
        "H"      # 0x04 major version: 1
        "H"      # 0x06 minor version: 0
        "H"      # 0x08 file header size
        "H"      # 0x0A chunk header size
        "I"      # 0x0C block size (a multiple of 4)
        "I"      # 0x10 blocks in the image
        "I"      # 0x14 chunks in the file
        "I"      # 0x18 image checksum
    )

    def pack(self) -> bytes:
        if not 0 < self.block_size < 1 << 32 or self.block_size % 4:
            raise ValueError(f"sparse block size {self.block_size}: not a multiple of 4")
        for name in ("total_blocks", "total_chunks", "checksum"):
            if not 0 <= getattr(self, name) < 1 << 32:
                raise ValueError(f"sparse header {name} {getattr(self, name)} out of range")
        return self.FORMAT.pack(MAGIC, 1, 0, self.header_size, self.chunk_header_size,
                                self.block_size, self.total_blocks, self.total_chunks,
                                self.checksum)

    @classmethod
    def unpack(cls, data: bytes) -> SparseHeader:
        magic, major, _minor, hdr, chdr, bsz, blocks, chunks, crc = cls.FORMAT.unpack(data)
        if magic != MAGIC:
            raise FormatError("android-sparse", 0, f"expected magic 0x{MAGIC:08x}, found "
                              f"0x{magic:08x}")
        if major != 1:
            raise FormatError("android-sparse", 4, f"version {major}: only 1.x is read")
        if hdr < cls.FORMAT.size or chdr < ChunkHeader.FORMAT.size:
            raise FormatError("android-sparse", 8, f"header sizes {hdr}/{chdr} are below "
                              f"{cls.FORMAT.size}/{ChunkHeader.FORMAT.size}")
        if bsz == 0 or bsz % 4:
            raise FormatError("android-sparse", 12, f"block size {bsz}: not a multiple of 4")
        return cls(bsz, blocks, chunks, hdr, chdr, crc)


assert SparseHeader.FORMAT.size == 28


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """A chunk's header, 12 bytes; its data follows (``total_size`` counts both)."""

    kind: int                    # RAW, FILL, DONT_CARE or CRC32
    blocks: int                  # image blocks it covers
    total_size: int              # bytes in the file: this header and the data

    FORMAT: ClassVar = struct.Struct(
        "<"
        "H"      # 0x00 chunk type
        "2x"     # 0x02 reserved
        "I"      # 0x04 blocks covered
        "I"      # 0x08 bytes in the file, header included
    )

    def pack(self) -> bytes:
        if self.kind not in CHUNK_NAMES or not 0 <= self.blocks < 1 << 32 \
                or not 0 <= self.total_size < 1 << 32:
            raise ValueError(f"sparse chunk {self} out of range")
        return self.FORMAT.pack(self.kind, self.blocks, self.total_size)

    @classmethod
    def unpack(cls, data: bytes) -> ChunkHeader:
        return cls(*cls.FORMAT.unpack(data))


assert ChunkHeader.FORMAT.size == 12


@dataclass(frozen=True, slots=True)
class SparseWritten:
    raw_blocks: int
    fill_blocks: int
    dont_care_blocks: int
    chunks: int
    size_bytes: int              # of the sparse file


def write_sparse(src: int, size: int, dst: int, crc: bool = False,
                 start: int = 0) -> SparseWritten:
    """The sparse image of ``size`` bytes of ``src`` from ``start`` (both multiples of the
    block size) into ``dst`` (empty, at offset 0), in one pass over the source's data.
    ``crc``: end with a CRC32 chunk over the whole image."""
    if size % BLOCK or start % BLOCK:
        raise ValueError(f"{size} bytes at {start}: not whole sparse blocks of {BLOCK} bytes")
    out = _ChunkWriter(dst, crc)
    pos = 0                                  # bytes of the image done, from ``start``
    for begin, end in data_extents(src, start + size, start):
        first, last = (begin - start) // BLOCK, -(-(end - start) // BLOCK)
        if first * BLOCK > pos:
            out.dont_care(first - pos // BLOCK)
        at = max(first * BLOCK, pos)
        while at < last * BLOCK:
            n = min(BUFFER, last * BLOCK - at)
            data = os.pread(src, n, start + at)
            if len(data) != n:
                raise OSError(0, f"the image is shorter than {start + size} bytes")
            out.blocks(data)
            at += n
        pos = last * BLOCK
    if pos < size:
        out.dont_care((size - pos) // BLOCK)
    return out.finish(size // BLOCK)


def write_simg(image: str, path: str, crc: bool = False,
               span: tuple[int, int] | None = None) -> SparseWritten:
    """Write ``path``, the sparse image of the file ``image`` (or of its bytes ``span``:
    offset, size), atomically."""
    src = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    try:
        start, size = span if span is not None else (0, os.fstat(src).st_size)
        with atomic_output(path) as fd:
            return write_sparse(src, size, fd, crc, start)
    finally:
        os.close(src)


class _ChunkWriter:
    """Chunks appended as blocks arrive: runs of blocks that each hold one repeated 32-bit
    value become FILL, the rest RAW (its header written when the run ends, so nothing is
    held back; split at MAX_RAW_BLOCKS)."""

    def __init__(self, fd: int, crc: bool) -> None:
        self.fd = fd
        self.crc: int | None = 0 if crc else None
        self.raw: tuple[int, int] | None = None       # (header offset, blocks) of a RAW run
        self.fill: tuple[bytes, int] | None = None    # (value, blocks) of a FILL run
        self.counts = {RAW: 0, FILL: 0, DONT_CARE: 0}
        self.chunks = 0
        self.end = SparseHeader.FORMAT.size            # the header is written last

    def blocks(self, data: bytes) -> None:
        if self.crc is not None:
            self.crc = zlib.crc32(data, self.crc)
        if data == data[:4] * (len(data) // 4):        # the whole buffer holds one value
            self._fill(data[:4], len(data) // BLOCK)
            return
        view = memoryview(data)
        run = 0                                        # start of the RAW blocks not written
        for at in range(0, len(data), BLOCK):
            value = bytes(view[at:at + 4])
            if view[at:at + BLOCK] == value * (BLOCK // 4):
                self._raw(view[run:at])
                self._fill(value, 1)
                run = at + BLOCK
        self._raw(view[run:])

    def dont_care(self, blocks: int) -> None:
        self._close()
        if self.crc is not None:
            zeros = bytes(BUFFER)
            left = blocks * BLOCK
            while left:
                n = min(left, BUFFER)
                self.crc = zlib.crc32(zeros[:n], self.crc)
                left -= n
        self._chunk(ChunkHeader(DONT_CARE, blocks, ChunkHeader.FORMAT.size), b"")

    def finish(self, total_blocks: int) -> SparseWritten:
        self._close()
        if self.crc is not None:
            self._chunk(ChunkHeader(CRC32, 0, ChunkHeader.FORMAT.size + 4),
                        struct.pack("<I", self.crc))
        _write_at(self.fd, SparseHeader(BLOCK, total_blocks, self.chunks).pack(), 0)
        return SparseWritten(self.counts[RAW], self.counts[FILL], self.counts[DONT_CARE],
                             self.chunks, self.end)

    def _fill(self, value: bytes, blocks: int) -> None:
        self._close_raw()
        if self.fill is not None and self.fill[0] == value:
            self.fill = (value, self.fill[1] + blocks)
        else:
            self._close_fill()
            self.fill = (value, blocks)

    def _raw(self, data: memoryview) -> None:
        while data:
            self._close_fill()
            if self.raw is None:
                self.raw = (self.end, 0)
                self.end += ChunkHeader.FORMAT.size
            room = (MAX_RAW_BLOCKS - self.raw[1]) * BLOCK
            part = data[:room]
            _write_at(self.fd, part, self.end)
            self.end += len(part)
            self.raw = (self.raw[0], self.raw[1] + len(part) // BLOCK)
            if self.raw[1] == MAX_RAW_BLOCKS:
                self._close_raw()
            data = data[room:]

    def _close(self) -> None:
        self._close_raw()
        self._close_fill()

    def _close_fill(self) -> None:
        if self.fill is not None:
            value, blocks = self.fill
            self.fill = None
            self._chunk(ChunkHeader(FILL, blocks, ChunkHeader.FORMAT.size + 4), value)

    def _close_raw(self) -> None:
        if self.raw is not None:
            at, blocks = self.raw
            self.raw = None
            head = ChunkHeader(RAW, blocks, ChunkHeader.FORMAT.size + blocks * BLOCK)
            _write_at(self.fd, head.pack(), at)
            self.counts[RAW] += blocks
            self.chunks += 1

    def _chunk(self, head: ChunkHeader, data: bytes) -> None:
        if head.kind in self.counts:
            self.counts[head.kind] += head.blocks
        self.chunks += 1
        record = head.pack() + data
        _write_at(self.fd, record, self.end)
        self.end += len(record)


def _write_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)

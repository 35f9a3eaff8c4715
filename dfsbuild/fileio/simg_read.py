"""An Android sparse image read as the raw image it stands for: a seekable, read-only file whose
bytes are the expanded image (DONT_CARE blocks read as zeros), so every reader (``inspect``,
``ls``, ``cat``, ``diff``, ``verify``) takes a ``.simg`` as it takes the raw file.

The chunk list is checked whole when the file is opened: each chunk's size agrees with its
type, the chunks end where the file ends and cover exactly the blocks the header names; a
hostile file is a FormatError naming the chunk, never a read past its end or an allocation
larger than the file.
"""

from __future__ import annotations

import bisect
import io
import os
import struct
import zlib
from typing import TYPE_CHECKING, BinaryIO

from dfsbuild.errors import FormatError
from dfsbuild.fileio.simg import (
    CHUNK_NAMES,
    CRC32,
    DONT_CARE,
    FILL,
    MAGIC,
    RAW,
    ChunkHeader,
    SparseHeader,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

FMT = "android-sparse"
MAX_CHUNKS = 1 << 22           # more than any flashing tool writes; bounds the chunk list


def is_sparse(f: BinaryIO) -> bool:
    """Whether the file starts with the sparse image magic (its offset is kept)."""
    kept = f.tell()
    try:
        f.seek(0)
        head = f.read(4)
    finally:
        f.seek(kept)
    return len(head) == 4 and struct.unpack("<I", head)[0] == MAGIC


class SparseImage(io.RawIOBase):
    """The expanded image of the sparse file ``f`` (which it closes)."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__()
        self.f = f
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        head = f.read(SparseHeader.FORMAT.size)
        if len(head) < SparseHeader.FORMAT.size:
            raise FormatError(FMT, 0, f"a sparse header needs {SparseHeader.FORMAT.size} "
                              f"bytes; the file has {size}")
        self.header = SparseHeader.unpack(head)
        self.block_size = self.header.block_size
        # Per chunk: its first block, its kind, and where its data is (RAW: the file offset;
        # FILL: the value); in block order.
        self.starts: list[int] = []
        self.kinds: list[int] = []
        self.where: list[int | bytes] = []
        self.crc: tuple[int, int] | None = None     # (CRC-32, blocks it covers)
        self._read_chunks(size)
        self.size = self.header.total_blocks * self.block_size
        self.pos = 0

    def _read_chunks(self, file_size: int) -> None:
        h = self.header
        if h.total_chunks > MAX_CHUNKS:
            raise FormatError(FMT, 20, f"{h.total_chunks} chunks; at most {MAX_CHUNKS} are read")
        at, block = h.header_size, 0
        for n in range(h.total_chunks):
            raw = self._pread(at, ChunkHeader.FORMAT.size, file_size, f"chunk {n}'s header")
            c = ChunkHeader.unpack(raw)
            data_at, data_size = at + h.chunk_header_size, c.total_size - h.chunk_header_size
            want = {RAW: c.blocks * self.block_size, FILL: 4, DONT_CARE: 0, CRC32: 4}.get(c.kind)
            if want is None:
                raise FormatError(FMT, at, f"chunk {n}: unknown type 0x{c.kind:04x}")
            if data_size != want:
                raise FormatError(FMT, at, f"chunk {n} ({CHUNK_NAMES[c.kind]}, {c.blocks} "
                                  f"blocks) says {c.total_size} bytes; it needs "
                                  f"{h.chunk_header_size + want}")
            if data_at + data_size > file_size:
                raise FormatError(FMT, at, f"chunk {n} passes the end of the file "
                                  f"({file_size} bytes)")
            if c.kind == CRC32:
                value = struct.unpack("<I", self._pread(data_at, 4, file_size, "crc"))[0]
                self.crc = (value, block)
            elif c.blocks:
                self.starts.append(block)
                self.kinds.append(c.kind)
                self.where.append(self._pread(data_at, 4, file_size, "fill value")
                                  if c.kind == FILL else data_at)
                block += c.blocks
            if block > h.total_blocks:
                raise FormatError(FMT, at, f"chunk {n} passes the image's {h.total_blocks} "
                                  "blocks")
            at = data_at + data_size
        if block != h.total_blocks:
            raise FormatError(FMT, at, f"the chunks cover {block} blocks; the header says "
                              f"{h.total_blocks}")
        self.starts.append(block)

    def _pread(self, at: int, n: int, file_size: int, what: str) -> bytes:
        if at + n > file_size:
            raise FormatError(FMT, at, f"{what} passes the end of the file ({file_size} bytes)")
        self.f.seek(at)
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError(FMT, at, f"{what}: unexpected end of the file")
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.pos = base + offset
        return self.pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), self.size - self.pos))
        done = 0
        while done < n:
            done += self._piece(out[done:n], self.pos + done)
        self.pos += n
        return n

    def _piece(self, out: memoryview, at: int) -> int:
        """Fill the start of ``out`` with the image's bytes at ``at``, within one chunk."""
        bs = self.block_size
        i = bisect.bisect_right(self.starts, at // bs) - 1
        end = self.starts[i + 1] * bs
        n = min(len(out), end - at)
        kind, where = self.kinds[i], self.where[i]
        if kind == RAW:
            assert isinstance(where, int)
            self.f.seek(where + at - self.starts[i] * bs)
            data = self.f.read(n)
            if len(data) != n:
                raise FormatError(FMT, where, "unexpected end of the file")
            out[:n] = data
        elif kind == FILL:
            assert isinstance(where, bytes)
            skip = at % 4
            out[:n] = (where * ((n + skip) // 4 + 1))[skip:skip + n]
        else:
            out[:n] = bytes(n)
        return n

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a sparse image's bytes are not its file's")

    def close(self) -> None:
        if not self.closed:
            self.f.close()
        super().close()

    def check_crc(self) -> bool | None:
        """Whether the last CRC32 chunk matches the blocks before it; None without one."""
        if self.crc is None:
            return None
        value, blocks = self.crc
        crc, left, self.pos = 0, blocks * self.block_size, 0
        while left and (chunk := self.read(min(left, 1 << 20))):
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        return crc == value


def open_sparse(f: BinaryIO) -> BinaryIO:
    """``f`` (a sparse image) as its expanded image, buffered."""
    return io.BufferedReader(SparseImage(f), buffer_size=1 << 16)

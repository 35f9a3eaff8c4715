"""Streaming writes into a bounded region of an output file.

Small pieces are gathered in a bounded buffer; large file contents go kernel-to-kernel through
the copy loop (copy.py); long zero runs become holes. Nothing here holds a whole image in
memory, and nothing is written outside ``[base, base + limit)``.
"""

from __future__ import annotations

import os

from dfsbuild.errors import InputError, InternalError
from dfsbuild.fileio.copy import BUFFER, copy_file_sparse, copy_range, punch_hole

SMALL_FILE = 64 << 10
HOLE_MIN = 64 << 10


Extent = tuple[int, int, str]     # (offset, size, what is there: a content digest or ZEROS)
ZEROS = "zeros"


class Sink:
    """Writes sequentially into ``fd`` over ``[base, base + limit)``.

    Every file copied with its content digest, and every long zero run, is noted in
    ``extents``. Given ``reuse`` (the extents of the bytes already in the file: the previous
    build of the same output, copied in first), a copy or zero run that would put the same
    content at the same offset and size is skipped: what is there already is it. Everything
    else is written as usual, so the result is byte for byte what a fresh write gives.
    """

    def __init__(self, fd: int, base: int = 0, limit: int | None = None,
                 reuse: dict[tuple[int, int], str] | None = None) -> None:
        self.fd = fd
        self.base = base
        self.limit = limit
        self.pos = 0                 # bytes written so far, relative to base
        self._buf = bytearray()
        self._buf_start = 0
        self.reuse = reuse
        self.extents: list[Extent] = []
        self.reused = 0              # bytes left as they were

    def _reusable(self, n: int, content: str | None) -> bool:
        """Note the extent; True when the bytes already there are these."""
        if content is None:
            return False
        self.extents.append((self.pos, n, content))
        if self.reuse is not None and self.reuse.get((self.pos, n)) == content:
            self.flush()
            self.pos += n
            self.reused += n
            return True
        return False

    def _check(self, n: int) -> None:
        if self.limit is not None and self.pos + n > self.limit:
            raise InternalError(
                f"write of {n} bytes at {self.pos} passes the region end {self.limit}"
            )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check(len(data))
        if not self._buf:
            self._buf_start = self.pos
        self._buf += data
        self.pos += len(data)
        if len(self._buf) >= BUFFER:
            self.flush()

    def zeros_or_hole(self, n: int) -> None:
        """``n`` bytes that read as zeros: a hole when long (64 KiB and more), else written.
        Only for bytes no reader relies on when the image is copied by a block map."""
        if n <= 0:
            return
        if n < HOLE_MIN:
            self.write(bytes(n))
            return
        self._check(n)
        if self._reusable(n, ZEROS):
            return
        self.flush()
        if self.reuse is not None:          # old bytes are there: make them a hole
            punch_hole(self.fd, self.base + self.pos, n)
        self.pos += n

    def written_zeros(self, n: int) -> None:
        """``n`` zero bytes written, never a hole: bytes whose zero value a reader relies on
        (a block map copies only data, so a hole there would keep a device's old bytes)."""
        while n > 0:
            step = min(n, 1 << 16)
            self.write(bytes(step))
            n -= step

    def flush(self) -> None:
        if self._buf:
            os.pwrite(self.fd, self._buf, self.base + self._buf_start)
            self._buf.clear()

    def copy(self, source: str, size_bytes: int, content: str | None = None) -> None:
        """Append exactly ``size_bytes`` taken from the start of the file ``source``, whose
        content digest is ``content`` when the caller knows it."""
        self._check(size_bytes)
        if self._reusable(size_bytes, content):
            return
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"{source}: cannot open: {exc.strerror}") from None
        try:
            if size_bytes <= SMALL_FILE:
                data = os.read(src, size_bytes + 1) if size_bytes else os.read(src, 1)
                if len(data) != size_bytes:
                    raise InputError(f"{source}: changed during the build (expected "
                                     f"{size_bytes} bytes, found {len(data)}+)")
                self.write(data)
                return
            self.flush()
            copy_range(src, self.fd, size_bytes, self.base + self.pos, source)
            self.pos += size_bytes
        finally:
            os.close(src)

    def copy_sparse(self, source: str, size_bytes: int) -> None:
        """Append the whole file ``source`` (which must hold ``size_bytes``), keeping holes."""
        self._check(size_bytes)
        self.flush()
        try:
            found = copy_file_sparse(source, self.fd, self.base + self.pos, size_bytes)
        except OSError as exc:
            raise InputError(f"{source}: cannot read: {exc.strerror}") from None
        if found != size_bytes:
            raise InputError(f"{source}: changed during the build (expected {size_bytes} "
                             f"bytes, found {found})")
        self.pos += size_bytes

    def pread(self, offset: int, n: int) -> bytes:
        self.flush()
        return os.pread(self.fd, n, self.base + offset)

    def patch(self, offset: int, data: bytes) -> None:
        if offset + len(data) > self.pos:
            raise InternalError("patch beyond what was written")
        self.flush()
        os.pwrite(self.fd, data, self.base + offset)

    def close(self) -> None:
        """Flush, and make sure the file reaches the region's written end (trailing holes)."""
        self.flush()
        end = self.base + self.pos
        size = os.fstat(self.fd).st_size
        if size < end or (self.reuse is not None and size > end):
            os.ftruncate(self.fd, end)       # a reused file may have been longer

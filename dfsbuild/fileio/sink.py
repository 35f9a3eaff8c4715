"""Streaming writes into a bounded region of an output file.

Small pieces are gathered in a bounded buffer; large file contents go kernel-to-kernel through
the copy loop (copy.py); long zero runs become holes. Nothing here holds a whole image in
memory, and nothing is written outside ``[base, base + limit)``.
"""

from __future__ import annotations

import os
from hashlib import blake2b

from dfsbuild.errors import InputError, InternalError
from dfsbuild.fileio.copy import BUFFER, copy_file_sparse, copy_range, punch_hole, read_exact

SMALL_FILE = 64 << 10
HOLE_MIN = 64 << 10


Extent = tuple[int, int, str]     # (offset, size, what is there: a content digest or ZEROS)
ZEROS = "zeros"
META = "meta:"                   # a run of other bytes, by their BLAKE2b


class Sink:
    """Writes sequentially into ``fd`` over ``[base, base + limit)``.

    Every file copied with its content id, every long zero run, and every run of other bytes
    (headers, tables: ``meta:`` and a 128-bit BLAKE2b of them) is noted in ``extents``. Given
    ``reuse`` (the extents of the bytes already in the file: the previous build of the same
    output), a copy, zero run or run of other bytes that would put the same content at the
    same offset and size is skipped: what is there already is it. Everything else is written
    as usual, so the result is byte for byte what a fresh write gives. A run changed later by
    ``patch`` is not noted (the next build writes it again before patching it).
    """

    def __init__(self, fd: int, base: int = 0, limit: int | None = None,
                 reuse: dict[tuple[int, int], str] | None = None,
                 note_other: bool = True) -> None:
        self.fd = fd
        self.note_other = note_other     # tag runs of other bytes (a later build's reuse)
        self.base = base
        self.limit = limit
        self.pos = 0                 # bytes written so far, relative to base
        self._buf = bytearray()
        self._buf_start = 0
        self._runs: list[tuple[int, int, bool]] = []   # (at, size, to write) within _buf
        self._meta_from: int | None = None   # where the open run of other bytes starts
        self.reuse = reuse
        self.extents: list[Extent] = []
        self.reused = 0              # bytes left as they were
        self.written: list[tuple[int, int]] = []   # (offset, size) of every byte it changed
        self.names: dict[int, str] = {}   # offset of a file's data -> its path in the image

    def _reusable(self, n: int, content: str | None, name: str | None = None) -> bool:
        """Note the extent (and the file's ``name``); True when the bytes already there are
        these."""
        if content is None:
            return False
        self._close_meta()                   # the run of other bytes ends here
        self.extents.append((self.pos, n, content))
        if name is not None:
            self.names[self.pos] = name
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
        """Bytes other than a file's (headers, tables, names, padding)."""
        self._check(len(data))
        if not self._buf:
            self._buf_start = self.pos
        if self._meta_from is None:
            self._meta_from = len(self._buf)
        self._buf += data
        self.pos += len(data)
        if len(self._buf) >= BUFFER:
            self.flush()

    def _file_bytes(self, data: bytes) -> None:
        """A small file's bytes, buffered (their extent is noted already)."""
        self._close_meta()
        if not self._buf:
            self._buf_start = self.pos
        self._runs.append((len(self._buf), len(data), True))
        self._buf += data
        self.pos += len(data)
        if len(self._buf) >= BUFFER:
            self.flush()

    def _close_meta(self) -> None:
        """Note the open run of other bytes; it is written unless the same bytes are there."""
        if self._meta_from is None:
            return
        at, end = self._meta_from, len(self._buf)
        self._meta_from = None
        if end == at:
            return
        if not self.note_other:          # nothing will reuse them: written, not tagged
            self._runs.append((at, end - at, True))
            return
        offset = self._buf_start + at
        tag = META + blake2b(self._buf[at:end], digest_size=16).hexdigest()
        self.extents.append((offset, end - at, tag))
        same = self.reuse is not None and self.reuse.get((offset, end - at)) == tag
        if same:
            self.reused += end - at
        self._runs.append((at, end - at, not same))

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
            self.written.append((self.pos, n))
        self.pos += n

    def written_zeros(self, n: int) -> None:
        """``n`` zero bytes written, never a hole: bytes whose zero value a reader relies on
        (a block map copies only data, so a hole there would keep a device's old bytes)."""
        while n > 0:
            step = min(n, 1 << 16)
            self.write(bytes(step))
            n -= step

    def flush(self) -> None:
        """Write what the buffer holds, but the runs whose bytes are there already."""
        self._close_meta()
        if not self._buf:
            return
        view = memoryview(self._buf)
        start: int | None = None             # of the stretch of runs to write
        for at, _n, needed in [*self._runs, (len(self._buf), 0, False)]:
            if needed and start is None:
                start = at
            elif not needed and start is not None:
                os.pwrite(self.fd, view[start:at], self.base + self._buf_start + start)
                self.written.append((self._buf_start + start, at - start))
                start = None
        view.release()
        self._buf.clear()
        self._runs.clear()

    def copy(self, source: str, size_bytes: int, content: str | None = None,
             name: str | None = None, offset: int = 0, last: bool = True) -> None:
        """Append exactly ``size_bytes`` taken from the file ``source`` at ``offset`` (the
        file ends there when ``last``), whose content digest is ``content`` when the caller
        knows it; ``name``, the file's path in the image, lets a later build patch this file's
        data alone (engine/datapatch.py). A part of a file has neither."""
        self._check(size_bytes)
        if self._reusable(size_bytes, content, name):
            return
        if size_bytes <= SMALL_FILE:
            data = read_exact(source, size_bytes, offset, last)
            if content is None:
                self.write(data)                 # unknown content: part of the other bytes
            else:
                self._file_bytes(data)
            return
        try:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"{source}: cannot open: {exc.strerror}") from None
        try:
            self.flush()
            copy_range(src, self.fd, size_bytes, self.base + self.pos, source, offset, last)
            self.written.append((self.pos, size_bytes))
            self.pos += size_bytes
        finally:
            os.close(src)

    def write_and_file(self, head: bytes, source: str, size_bytes: int) -> None:
        """``head``, then the whole small file ``source`` (``size_bytes``), in one write: as
        other bytes, for a file whose content is not known (``mkfs``)."""
        self.write(head + read_exact(source, size_bytes))

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
        self.written.append((self.pos, size_bytes))
        self.pos += size_bytes

    def pread(self, offset: int, n: int) -> bytes:
        self.flush()
        return os.pread(self.fd, n, self.base + offset)

    def patch(self, offset: int, data: bytes) -> None:
        if offset + len(data) > self.pos:
            raise InternalError("patch beyond what was written")
        self.flush()
        os.pwrite(self.fd, data, self.base + offset)
        self.written.append((offset, len(data)))
        end = offset + len(data)             # the runs it changed no longer match their tags
        self.extents = [e for e in self.extents
                        if not (e[2].startswith(META) and e[0] < end and offset < e[0] + e[1])]

    def close(self) -> None:
        """Flush, and make sure the file reaches the region's written end (trailing holes)."""
        self.flush()
        end = self.base + self.pos
        size = os.fstat(self.fd).st_size
        if size < end or (self.reuse is not None and size > end):
            os.ftruncate(self.fd, end)       # a reused file may have been longer

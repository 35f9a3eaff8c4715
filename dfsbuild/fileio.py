"""Streaming writes into a bounded region of an output file.

Small pieces are gathered in a bounded buffer; large file contents go kernel-to-kernel with
``os.copy_file_range`` (falling back to ``sendfile`` and then to read/write); long zero runs
become holes. Nothing here holds a whole image in memory.
"""

from __future__ import annotations

import os

from dfsbuild.errors import InputError, InternalError

BUFFER = 1 << 20
SMALL_FILE = 64 << 10
HOLE_MIN = 64 << 10


class Sink:
    """Writes sequentially into ``fd`` over ``[base, base + limit)``."""

    def __init__(self, fd: int, base: int = 0, limit: int | None = None) -> None:
        self.fd = fd
        self.base = base
        self.limit = limit
        self.pos = 0                 # bytes written so far, relative to base
        self._buf = bytearray()
        self._buf_start = 0

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

    def zeros(self, n: int) -> None:
        """``n`` zero bytes: a hole when long, else written."""
        if n <= 0:
            return
        if n < HOLE_MIN:
            self.write(bytes(n))
            return
        self._check(n)
        self.flush()
        self.pos += n

    def flush(self) -> None:
        if self._buf:
            os.pwrite(self.fd, self._buf, self.base + self._buf_start)
            self._buf.clear()

    def copy(self, source: str, size_bytes: int) -> None:
        """Append exactly ``size_bytes`` taken from the start of the file ``source``."""
        self._check(size_bytes)
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
        if os.fstat(self.fd).st_size < end:
            os.ftruncate(self.fd, end)


def copy_range(src: int, dst: int, size_bytes: int, dst_offset: int, name: str) -> None:
    """Copy ``size_bytes`` from offset 0 of ``src`` to ``dst_offset`` of ``dst``."""
    done = 0
    use_cfr = hasattr(os, "copy_file_range")
    while done < size_bytes:
        want = min(size_bytes - done, 1 << 30)
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(src, dst, want, done, dst_offset + done)
            except OSError:
                use_cfr = False
                continue
        else:
            data = os.pread(src, min(want, BUFFER), done)
            n = len(data)
            if n:
                os.pwrite(dst, data, dst_offset + done)
        if n == 0:
            raise InputError(f"{name}: changed during the build (expected {size_bytes} "
                             f"bytes, found {done})")
        done += n
    if os.pread(src, 1, size_bytes):
        raise InputError(f"{name}: changed during the build (longer than {size_bytes} bytes)")


def copy_file_sparse(src_path: str, dst_fd: int, dst_offset: int = 0) -> int:
    """Copy a whole file into ``dst_fd`` at ``dst_offset``, keeping its holes (at offset 0
    the destination is truncated to the file's size). Returns the size."""
    src = os.open(src_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src).st_size
        if dst_offset == 0:
            os.ftruncate(dst_fd, size)
        pos = 0
        while pos < size:
            try:
                data_start = os.lseek(src, pos, os.SEEK_DATA)
            except OSError:
                break  # only a hole is left
            try:
                hole_start = os.lseek(src, data_start, os.SEEK_HOLE)
            except OSError:
                hole_start = size
            _copy_span(src, dst_fd, data_start, hole_start - data_start, dst_offset)
            pos = hole_start
        return size
    finally:
        os.close(src)


def _copy_span(src: int, dst: int, offset: int, length: int, shift: int) -> None:
    done = 0
    while done < length:
        want = min(length - done, 1 << 30)
        try:
            n = os.copy_file_range(src, dst, want, offset + done, shift + offset + done)
        except (OSError, AttributeError):
            data = os.pread(src, min(want, BUFFER), offset + done)
            n = len(data)
            os.pwrite(dst, data, shift + offset + done)
        if n == 0:
            raise InternalError("source file shrank while being copied")
        done += n


def link_or_copy(source: str, dest: str) -> None:
    """Make ``dest`` (which must not exist) hold ``source``'s bytes: a hard link where the
    filesystem allows, else a sparse copy."""
    try:
        os.link(source, dest)
        return
    except OSError:
        pass
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        copy_file_sparse(source, fd)
    except BaseException:
        os.close(fd)
        os.unlink(dest)
        raise
    os.close(fd)

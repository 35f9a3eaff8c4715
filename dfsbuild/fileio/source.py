"""Bounded reads: every parser reads through a ByteSource, so no offset or length found in
hostile bytes can reach past the region it was given, and no read allocates more than the
region holds. A read past the end is a FormatError naming the format and the offset."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from dfsbuild.errors import FormatError, InputError


class ByteSource:
    """``[base, base + size)`` of a seekable file; offsets are relative to ``base``."""

    def __init__(self, f: BinaryIO, base: int = 0, size: int | None = None,
                 fmt: str = "image") -> None:
        self.f = f
        self.base = base
        end = f.seek(0, os.SEEK_END)
        available = max(0, end - base)
        self.size = available if size is None else max(0, min(size, available))
        self.fmt = fmt

    def read(self, offset: int, n: int) -> bytes:
        """Exactly ``n`` bytes at ``offset``, or a FormatError."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise FormatError(self.fmt, offset, f"{n} bytes at {offset} pass the end of the "
                              f"data ({self.size} bytes)")
        self.f.seek(self.base + offset)
        data = self.f.read(n)
        if len(data) != n:
            raise FormatError(self.fmt, offset, "unexpected end of the image")
        return data

    def read_upto(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end; empty past it)."""
        if offset < 0 or offset >= self.size or n <= 0:
            return b""
        return self.read(offset, min(n, self.size - offset))

    def sub(self, offset: int, size: int, fmt: str | None = None) -> ByteSource:
        """The region ``[offset, offset + size)`` of this one; FormatError if it does not fit."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise FormatError(self.fmt, offset, f"a region of {size} bytes at {offset} passes "
                              f"the end of the data ({self.size} bytes)")
        return ByteSource(self.f, self.base + offset, size, fmt or self.fmt)

    def named(self, fmt: str) -> ByteSource:
        return ByteSource(self.f, self.base, self.size, fmt)


def file_chunks(path: str, size: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Exactly the first ``size`` bytes of the host file ``path``, in bounded chunks; an
    InputError when it is shorter (it changed since it was planned) or unreadable."""
    try:
        with open(path, "rb") as f:
            left = size
            while left:
                data = f.read(min(chunk, left))
                if not data:
                    raise InputError(f"{path}: changed during the build (shorter than "
                                     f"{size} bytes)")
                left -= len(data)
                yield data
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def open_image(path: str, write: bool = False) -> BinaryIO:
    """Open an image file for reading (and writing, for in-place changes): regular files and
    block devices only (a FIFO or a terminal would block or cannot seek). An Android sparse
    image reads as the raw image it stands for, and cannot be opened for writing."""
    try:
        fd = os.open(path, (os.O_RDWR if write else os.O_RDONLY) | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file or block device"
        raise InputError(f"{path}: is {what}; save the image to a file first")
    os.set_blocking(fd, True)
    f = os.fdopen(fd, "r+b" if write else "rb")
    from dfsbuild.fileio.simg_read import is_sparse, open_sparse

    try:
        if not is_sparse(f):
            return f
        if write:
            raise InputError(f"{path}: an Android sparse image is read, not changed in place; "
                             "change the raw image (simg2img makes one) or the layout")
        return open_sparse(f)
    except BaseException:
        f.close()
        raise

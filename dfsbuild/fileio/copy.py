"""The one copy loop: file contents kernel-to-kernel with ``os.copy_file_range`` (read/write
where the kernel refuses), keeping the source's holes where asked; and a small host file read
whole, checked to be the size it was described with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from dfsbuild.errors import InputError, InternalError

BUFFER = 1 << 20


def copy_range(src: int, dst: int, size_bytes: int, dst_offset: int, name: str,
               src_offset: int = 0, last: bool = True) -> None:
    """Copy ``size_bytes`` from ``src_offset`` of ``src`` to ``dst_offset`` of ``dst``;
    ``last``: the source must end there (else it changed)."""
    done = 0
    use_cfr = hasattr(os, "copy_file_range")
    while done < size_bytes:
        want = min(size_bytes - done, 1 << 30)
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(src, dst, want, src_offset + done, dst_offset + done)
            except OSError:
                use_cfr = False
                continue
        else:
            data = os.pread(src, min(want, BUFFER), src_offset + done)
            n = len(data)
            if n:
                os.pwrite(dst, data, dst_offset + done)
        if n == 0:
            raise InputError(f"{name}: changed during the build (expected {size_bytes} "
                             f"bytes, found {done})")
        done += n
    if last and os.pread(src, 1, src_offset + size_bytes):
        raise InputError(f"{name}: changed during the build (longer than {size_bytes} bytes)")


def read_exact(path: str, size_bytes: int, offset: int = 0, last: bool = True) -> bytes:
    """``size_bytes`` of the file ``path`` from ``offset`` (the file ends there when
    ``last``); InputError when it cannot be read or holds other than that."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        want = size_bytes + int(last)
        data = os.pread(fd, want, offset) if offset else os.read(fd, want)
    finally:
        os.close(fd)
    if len(data) != size_bytes:
        raise InputError(f"{path}: changed during the build (expected {size_bytes} bytes at "
                         f"{offset}, found {len(data)}{'+' if last else ''})")
    return data


MAX_INPUT = 16 << 20          # a host file read whole while planning (eMBR boot code)


def read_input(path: str) -> bytes:
    """A small host file a layout names, whole (eMBR or FAT boot code)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_INPUT:
        raise InputError(f"{path}: larger than {MAX_INPUT} bytes")
    return data


def copy_file_sparse(src_path: str, dst_fd: int, dst_offset: int = 0,
                     expected: int | None = None) -> int:
    """Copy a whole file into ``dst_fd`` at ``dst_offset``, keeping its holes (at offset 0
    the destination is truncated to the file's size). Returns the size; when it is not
    ``expected``, nothing is copied."""
    src = os.open(src_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src).st_size
        if expected is not None and size != expected:
            return size
        copy_file_sparse_fd(src, dst_fd, size, dst_offset)
        return size
    finally:
        os.close(src)


def data_extents(fd: int, size: int, begin: int = 0) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of data in bytes ``begin`` to ``size`` of ``fd``, as
    SEEK_DATA/SEEK_HOLE report them (the whole span where the filesystem cannot tell)."""
    pos = begin
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return  # only a hole is left
        if start >= size:
            return
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        yield start, end
        pos = end


def copy_file_sparse_fd(src: int, dst_fd: int, size: int, dst_offset: int = 0) -> None:
    """Copy ``size`` bytes of the open file ``src`` into ``dst_fd`` at ``dst_offset``, data
    extents only (at offset 0 the destination is first sized to ``size``)."""
    if dst_offset == 0:
        os.ftruncate(dst_fd, size)
    for start, end in data_extents(src, size):
        _copy_span(src, dst_fd, start, end - start, dst_offset)


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


def punch_hole(fd: int, offset: int, length: int) -> None:
    """Make ``[offset, offset + length)`` of ``fd`` read as zeros, as a hole where the
    filesystem can (fallocate PUNCH_HOLE, as a fresh write leaves one), else written zeros."""
    global _fallocate
    if _fallocate is None:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _fallocate = libc.fallocate
        _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if length > 0 and _fallocate(fd, _PUNCH_HOLE | _KEEP_SIZE, offset, length) == 0:
        return
    zeros = bytes(min(length, BUFFER))
    while length > 0:
        n = os.pwrite(fd, zeros[:min(length, BUFFER)], offset)
        offset += n
        length -= n


_PUNCH_HOLE, _KEEP_SIZE = 0x02, 0x01      # linux/falloc.h
_fallocate: Any = None

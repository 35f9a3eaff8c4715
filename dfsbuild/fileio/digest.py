"""sha256 of an open file, holes included as the zeros they read as, and the clone-or-copy
used to move whole files between the cache and outputs."""

from __future__ import annotations

import fcntl
import hashlib
import os

from dfsbuild.fileio.copy import BUFFER, copy_file_sparse_fd

FICLONE = 0x40049409          # linux/fs.h: _IOW(0x94, 9, int)
_ZEROS = bytes(BUFFER)


def sha256_fd(fd: int, size: int) -> str:
    """sha256 of the first ``size`` bytes of ``fd``; holes are skipped with SEEK_DATA and fed
    to the hash as zeros (they read as zeros)."""
    h = hashlib.sha256()
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    pos = 0
    while pos < size:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            data = size           # only a hole is left (ENXIO), or no SEEK_DATA
        data = min(data, size)
        while pos < data:         # the hole before the next data
            n = min(data - pos, BUFFER)
            h.update(_ZEROS[:n])
            pos += n
        try:
            end = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
        except OSError:
            end = size
        while pos < end:
            n = os.preadv(fd, [view[:min(end - pos, BUFFER)]], pos)
            if n == 0:
                raise OSError(0, f"file shorter than {size} bytes")
            h.update(view[:n])
            pos += n
    return h.hexdigest()


def sha256_path(path: str, size: int) -> str:
    """sha256 of the first ``size`` bytes of the file at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return sha256_fd(fd, size)
    finally:
        os.close(fd)


def clone_or_copy(src: int, dst: int, size: int) -> None:
    """Make the empty file ``dst`` hold ``src``'s first ``size`` bytes: a reflink where the
    filesystem shares blocks copy-on-write (Btrfs, XFS), else a sparse kernel copy. Never a
    hard link: the two files stay independent."""
    try:
        fcntl.ioctl(dst, FICLONE, src)
        if os.fstat(dst).st_size == size:
            return
    except OSError:
        pass
    os.ftruncate(dst, 0)
    copy_file_sparse_fd(src, dst, size)

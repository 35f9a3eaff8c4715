"""What the host's filesystem can hold: ``dfsbuild check`` asks before a build would find out
(ext4 stops a file at 16 TiB, FAT at 4 GiB; ``pathconf`` does not say so reliably, so a sparse
temporary file is set to the size and removed)."""

from __future__ import annotations

import contextlib
import os
import tempfile

PROBE_FROM = 1 << 31          # every filesystem a build runs on holds files below this
MAX_OFFSET = (1 << 63) - 1    # off_t


def file_fits(directory: str, size: int) -> bool:
    """Whether a file of ``size`` bytes can exist in ``directory`` (or the nearest existing
    directory above it); True when it cannot be told."""
    if size > MAX_OFFSET:
        return False
    if size < PROBE_FROM:
        return True
    d = os.path.abspath(directory)
    while not os.path.isdir(d) and os.path.dirname(d) != d:
        d = os.path.dirname(d)
    try:
        fd, path = tempfile.mkstemp(dir=d, prefix=".dfsbuild-size-probe-")
    except OSError:
        return True
    try:
        os.ftruncate(fd, size)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)

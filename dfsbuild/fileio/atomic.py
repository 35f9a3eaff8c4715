"""The one atomic replacement: a temporary file beside the target, renamed over it only when
everything was written. An interrupted or failed write leaves the old file as it was and no
temporary behind."""

from __future__ import annotations

import contextlib
import glob
import os
import stat
from collections.abc import Iterator

from dfsbuild.errors import InputError
from dfsbuild.fileio.copy import link_or_copy

TMP_MARK = ".dfsbuild-tmp-"


def check_output_path(path: str) -> None:
    """Refuse a target that cannot become a regular file (a directory, a device, a FIFO)."""
    if not path or "\0" in path:
        raise InputError(f"{path!r}: not a usable output file name")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{path}: cannot use as output: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise InputError(f"{path}: is {what}; name an output file")


def _temporary(path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f".{os.path.basename(path)}{TMP_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[int]:
    """A file descriptor on a temporary file that replaces ``path`` only on success."""
    check_output_path(path)
    tmp = _temporary(path)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            yield fd
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def place_file(source: str, path: str) -> None:
    """Put ``source``'s bytes at ``path`` atomically (a hard link where possible)."""
    tmp = _temporary(path)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    try:
        link_or_copy(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(path: str) -> None:
    """Delete temporaries an interrupted build left beside ``path``."""
    directory, name = os.path.split(os.path.abspath(path))
    for stale in glob.glob(os.path.join(glob.escape(directory),
                                        f".{glob.escape(name)}{TMP_MARK}*")):
        with contextlib.suppress(OSError):
            os.unlink(stale)

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
    with TempOutput(path) as out:
        yield out.fd
        out.commit()


def atomic_write(path: str, data: bytes) -> None:
    """``path`` holding ``data``, whole or not at all (every byte written, short writes
    continued)."""
    view = memoryview(data)
    with atomic_output(path) as fd:
        while view:
            view = view[os.write(fd, view):]


class TempOutput:
    """A temporary file beside ``path``, renamed over it by ``commit``; ``discard`` (or
    leaving the ``with`` block without committing) removes it and leaves ``path`` as it was."""

    def __init__(self, path: str) -> None:
        check_output_path(path)
        self.path = path
        self.tmp = _temporary(path)
        self.fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self.committed = False

    def commit(self) -> os.stat_result:
        """Rename the temporary into place; returns the output's stat."""
        st = os.fstat(self.fd)
        os.replace(self.tmp, self.path)
        self.committed = True
        return st

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.committed:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)

    def __enter__(self) -> TempOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str) -> None:
    """Delete temporaries that interrupted builds left beside ``path``: only those whose
    owner (the process id in the name) is gone."""
    directory, name = os.path.split(os.path.abspath(path))
    prefix = f".{name}{TMP_MARK}"
    for stale in glob.glob(os.path.join(glob.escape(directory), f"{glob.escape(prefix)}*")):
        owner = os.path.basename(stale)[len(prefix):]
        if owner.isdigit() and int(owner) != os.getpid() and _alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(stale)

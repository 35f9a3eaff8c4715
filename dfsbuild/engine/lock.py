"""One build at a time per build directory: an ``flock`` on ``BUILD/.dfsbuild/lock``, held
until the process exits (doit's worker processes share it). A second build waits, saying for
whom, or fails at once with ``--no-wait``."""

from __future__ import annotations

import fcntl
import os
import sys

from dfsbuild.errors import DfsbuildError


class BuildLock:
    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def acquire(cls, build_dir: str, wait: bool = True) -> BuildLock:
        """OSError when the build directory cannot be written (the caller decides whether a
        read-only build directory matters)."""
        state_dir = os.path.join(build_dir, ".dfsbuild")
        os.makedirs(state_dir, exist_ok=True)
        path = os.path.join(state_dir, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            if not wait:
                os.close(fd)
                raise DfsbuildError(f"{build_dir}: another build is running there (process "
                                    f"{owner})", hint="wait for it, or drop --no-wait to "
                                    "wait automatically") from None
            print(f"waiting for another build in {build_dir} (process {owner}) to finish",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

"""Booting a copy of a disk in QEMU and watching its serial console.

The disk given is never written: QEMU gets a sparse copy in a temporary directory, removed when
QEMU ends (the guest may write to its disk: a boot counter, a new root image). Without a
terminal to attach, the console is copied to our output as it comes; ``expect`` ends the run
as soon as the text appears.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from dfsbuild.errors import DfsbuildError
from dfsbuild.fileio.copy import copy_file_sparse

TAIL_LINES = 20


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a boot ended: ``seen`` (the expected text appeared), ``exited`` (QEMU's status),
    or neither (the time ran out); the console's last lines."""

    seen: bool
    exited: int | None
    seconds: float
    tail: list[str]


def boot_copy(disk: str, make_command: Callable[[str], list[str]], expect: str | None,
              timeout: float, interactive: bool,
              echo: Callable[[bytes], None] | None = None, save: str | None = None) -> Outcome:
    """Boot a copy of ``disk`` with the command ``make_command`` gives for the copy's path;
    ``save``: keep the copy there afterwards (what the guest wrote: a boot counter)."""
    if save is not None and os.path.lexists(save):
        raise DfsbuildError(f"{save}: exists; --save-disk never overwrites a file")
    with tempfile.TemporaryDirectory(prefix="dfsbuild-boot-",
                                     dir=os.path.dirname(os.path.abspath(save))
                                     if save is not None else None) as tmp:
        copy = os.path.join(tmp, os.path.basename(disk))
        fd = os.open(copy, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            copy_file_sparse(disk, fd)
        except OSError as exc:
            raise DfsbuildError(f"{disk}: cannot copy it to boot: {exc.strerror}") from None
        finally:
            os.close(fd)
        cmd = make_command(copy)
        outcome = _attached(cmd) if interactive else \
            _watched(cmd, expect, timeout, echo or _write_out)
        if save is not None:
            os.link(copy, save)           # never replaces a file that appeared meanwhile
        return outcome


def _write_out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _attached(cmd: list[str]) -> Outcome:
    start = time.monotonic()
    try:
        code = subprocess.run(cmd, check=False).returncode
    finally:
        if sys.stdout.isatty():
            sys.stdout.write("\033[?7h")      # QEMU's console turns line wrapping off
            sys.stdout.flush()
    return Outcome(False, code, time.monotonic() - start, [])


def _watched(cmd: list[str], expect: str | None, timeout: float,
             echo: Callable[[bytes], None]) -> Outcome:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen = bytearray()
    wanted = expect.encode() if expect is not None else None
    found = ended = False
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                ended = True
                break
            echo(chunk)
            seen += chunk
            if wanted is not None and wanted in seen:
                found = True
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
    exited = code if ended else None
    text = seen.decode("utf-8", "replace").replace("\r", "")
    return Outcome(found, exited, time.monotonic() - start, text.splitlines()[-TAIL_LINES:])

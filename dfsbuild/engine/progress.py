"""The live line on a terminal for an output that takes over a second: bytes written so far
and the rate, read from the size of the file being written (no writer reports anything)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dfsbuild.engine.settings import Settings

DELAY = 1.0
EVERY = 0.25


class Progress:
    def __init__(self, task: str, settings: Settings) -> None:
        self.task = task
        self.enabled = settings.live
        self.path: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def watch(self, path: str) -> None:
        """Report on ``path`` (the temporary being written) from now on."""
        self.path = path

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def _run(self) -> None:
        start = time.monotonic()
        if self._stop.wait(DELAY):
            return
        while not self._stop.is_set():
            written = 0
            if self.path is not None:
                try:
                    written = os.stat(self.path).st_blocks * 512
                except OSError:
                    written = 0
            seconds = time.monotonic() - start
            sys.stderr.write(f"\r\x1b[K  {self.task}: {written / 2**20:,.1f} MiB written, "
                             f"{written / 2**20 / seconds:,.0f} MiB/s, {seconds:.0f}s")
            sys.stderr.flush()
            self._shown = True
            self._stop.wait(EVERY)

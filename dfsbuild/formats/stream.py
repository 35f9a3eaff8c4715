"""What a format writer writes into: an append-only stream over a bounded region."""

from __future__ import annotations

from typing import Protocol


class Stream(Protocol):
    pos: int

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def zeros(self, n: int) -> None: ...

    def copy(self, source: str, size_bytes: int) -> None:
        """Append ``size_bytes`` of content named by ``source`` (opaque to the format)."""

    def pread(self, offset: int, n: int) -> bytes: ...

    def patch(self, offset: int, data: bytes) -> None: ...

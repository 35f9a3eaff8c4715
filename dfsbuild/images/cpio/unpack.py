"""A gzip or xz member of a cpio image, decompressed as it is read: memory bounded by a
constant, no temporary file, and a limit on the bytes one image may unpack to (a small
hostile stream can expand without end). Reads go forward; a read behind the cursor starts
the stream again, as ``gzip -dc | cpio`` would be run again.

References: RFC 1952 (gzip), the .xz file format 1.1.0.
"""

from __future__ import annotations

import lzma
import zlib
from dataclasses import dataclass

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource

IN_CHUNK = 64 << 10            # compressed bytes fed at a time
OUT_PIECE = 256 << 10          # most decompressed bytes produced by one call


@dataclass(slots=True)
class Budget:
    """Decompressed bytes an image may still produce while it is listed."""

    left: int
    limit: int


class Unpacked:
    """The decompressed bytes of the ``kind`` member at ``offset`` of ``src``."""

    def __init__(self, src: ByteSource, offset: int, kind: str, fmt: str,
                 budget: Budget | None = None) -> None:
        self.src, self.offset, self.kind, self.fmt = src, offset, kind, fmt
        self.budget = budget            # charged on the first pass only
        self.end: int | None = None     # where the member ends in ``src``, once known
        self.size: int | None = None    # its decompressed size, once known
        self._start()

    def _start(self) -> None:
        self._d: zlib._Decompress | lzma.LZMADecompressor = (
            zlib.decompressobj(31) if self.kind == "gzip" else lzma.LZMADecompressor())
        self._in = self.offset           # next compressed byte to feed
        self._tail = b""                 # fed to zlib and not yet taken
        self._at = 0                     # decompressed offset of ``_piece``
        self._piece = b""
        self._produced = 0               # decompressed bytes produced since the start

    # -- producing ---------------------------------------------------------------------------
    def _feed(self) -> bytes:
        """The next compressed bytes; empty at the end of ``src``."""
        data = self.src.read_upto(self._in, IN_CHUNK)
        self._in += len(data)
        return data

    def _more(self) -> bytes:
        """The next decompressed bytes; empty at the end of the stream."""
        try:
            while not self._d.eof:
                # Without new input a decompressor may still hold output (a long match cut
                # by OUT_PIECE); only when it has none is a stream without input truncated.
                data: bytes | None
                if isinstance(self._d, lzma.LZMADecompressor):
                    data = self._feed() if self._d.needs_input else None
                    out = self._d.decompress(data or b"", OUT_PIECE)
                else:
                    data = self._tail or self._feed()
                    out = self._d.decompress(data, OUT_PIECE)
                    self._tail = self._d.unconsumed_tail
                if out:
                    return self._charge(out)
                if data == b"" and not self._d.eof:
                    raise FormatError(self.fmt, self._in, f"the {self.kind} stream is "
                                      "truncated")
        except (zlib.error, lzma.LZMAError) as exc:
            raise FormatError(self.fmt, self.offset, f"the {self.kind} stream is damaged: "
                              f"{exc}") from None
        if self.end is None:
            # At the end, what follows the member is unused_data (zlib also leaves it in
            # unconsumed_tail: the same bytes, not counted twice).
            self.end = self._in - len(self._d.unused_data)
            self.size = self._produced
        return b""

    def _charge(self, out: bytes) -> bytes:
        self._produced += len(out)
        if self.size is None and self.budget is not None:
            self.budget.left -= len(out)
            if self.budget.left < 0:
                raise FormatError(self.fmt, self.offset, f"the image unpacks to more than "
                                  f"{self.budget.limit} bytes; not read further")
        return out

    def _advance(self) -> bool:
        """The next piece; False at the end of the stream."""
        self._at += len(self._piece)
        self._piece = self._more()
        return bool(self._piece)

    # -- reading -----------------------------------------------------------------------------
    def has(self, end: int) -> bool:
        """Whether the stream holds at least ``end`` bytes (read forward to find out)."""
        if end < self._at:
            return True
        while self._at + len(self._piece) < end:
            if not self._advance():
                return False
        return True

    def read(self, offset: int, n: int) -> bytes:
        """Exactly ``n`` decompressed bytes at ``offset``, or a FormatError."""
        if offset < self._at:
            self._start()
        out = bytearray()
        while len(out) < n:
            at = offset + len(out)
            inside = at - self._at
            if 0 <= inside < len(self._piece):
                out += self._piece[inside:inside + n - len(out)]
            elif not self._advance():
                raise FormatError(self.fmt, at, f"the {self.kind} stream ends at "
                                  f"{self._at} bytes, before byte {offset + n}")
        return bytes(out)

    def finish(self) -> int:
        """Read to the end of the stream (charged to the budget); where it ends in ``src``."""
        while self._advance():
            pass
        assert self.end is not None
        return self.end

"""The newc header: ``070701`` and 13 fields of 8 hex digits (formats.md §7)."""

from __future__ import annotations

import lzma
import zlib
from dataclasses import dataclass

from dfsbuild.errors import FormatError, InternalError

MAGIC, MAGIC_CRC = b"070701", b"070702"
HEADER = 110
TRAILER = "TRAILER!!!"
GZIP_MAGIC, XZ_MAGIC = b"\x1f\x8b", b"\xfd7zXZ\x00"
FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
          "rdevmajor", "rdevminor", "namesize", "check")


def pad4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True, slots=True)
class CpioHeader:
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    filesize: int
    devmajor: int
    devminor: int
    rdevmajor: int
    rdevminor: int
    namesize: int                 # with the NUL
    check: int = 0
    magic: bytes = MAGIC

    def pack(self) -> bytes:
        values = [getattr(self, f) for f in FIELDS]
        if any(not 0 <= v <= 0xFFFFFFFF for v in values):      # the plan checked them: a bug
            raise InternalError(f"cpio header field out of range: {values}")
        return self.magic + "".join(f"{v:08X}" for v in values).encode()

    @classmethod
    def unpack(cls, data: bytes, offset: int) -> CpioHeader:
        if len(data) < HEADER:
            raise FormatError("cpio", offset, "truncated header")
        magic = data[:6]
        if magic not in (MAGIC, MAGIC_CRC):
            hint = " (an old binary or odc archive: the kernel reads only newc)" \
                if magic == b"070707" else ""
            raise FormatError("cpio", offset, f"no newc magic: {magic!r}{hint}")
        values = []
        for i in range(13):
            field = data[6 + 8 * i:14 + 8 * i]
            try:
                values.append(int(field, 16))
            except ValueError:
                raise FormatError("cpio", offset + 6 + 8 * i,
                                  f"{FIELDS[i]} {field!r} is not hex") from None
        (ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize,
         check) = values
        return cls(ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize,
                   check, magic)


def looks_like_cpio(head: bytes) -> bool:
    if head[:6] in (MAGIC, MAGIC_CRC):
        return True
    try:
        if head[:2] == GZIP_MAGIC:
            return zlib.decompressobj(31).decompress(head, 6)[:6] in (MAGIC, MAGIC_CRC)
        if head[:6] == XZ_MAGIC:
            return lzma.LZMADecompressor().decompress(head, 6)[:6] in (MAGIC, MAGIC_CRC)
    except (zlib.error, lzma.LZMAError, EOFError):
        return False
    return False

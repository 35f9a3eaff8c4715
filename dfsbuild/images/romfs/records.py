"""romfs on-disk records: the superblock and the file header.

References: Linux Documentation/filesystems/romfs.rst ("the romfs document"), Linux
fs/romfs/super.c and include/uapi/linux/romfs_fs.h, genromfs 0.5.2. All words are big-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError, InternalError

MAGIC = b"-rom1fs-"
MAX_NAME = 127          # kernel readdir truncates at 127 bytes, lookup refuses > 128
MAX_SIZE = 0xFFFFFFFF
BLOCK = 1024            # genromfs pads the image to a multiple of this
CHECKSUM_SPAN = 512

HARDLINK, DIRECTORY, REGULAR, SYMLINK, BLOCKDEV, CHARDEV, SOCKET, FIFO = range(8)
EXEC = 8
TYPE_NAMES = ("hardlink", "dir", "file", "symlink", "block", "char", "socket", "fifo")
KIND_TYPES = {"dir": DIRECTORY, "file": REGULAR, "symlink": SYMLINK, "block": BLOCKDEV,
              "char": CHARDEV, "socket": SOCKET, "fifo": FIFO}


def pad16(n: int) -> int:
    return (n + 15) & ~15


def checksum(data: bytes) -> int:
    """Sum of big-endian words, mod 2^32 (``data`` is a multiple of 4 bytes long)."""
    words: tuple[int, ...] = struct.unpack(f">{len(data) // 4}I", data)
    return sum(words) & 0xFFFFFFFF


def fix_checksum(block: bytes, at: int) -> bytes:
    """``block`` with the word at ``at`` set so that the block sums to zero."""
    zeroed = block[:at] + b"\0\0\0\0" + block[at + 4:]
    value = (-checksum(zeroed)) & 0xFFFFFFFF
    return zeroed[:at] + struct.pack(">I", value) + zeroed[at + 4:]


@dataclass(frozen=True, slots=True)
class RomfsHeader:
    """A file header, 16 bytes (followed by the padded name)."""

    next_offset: int       # next: offset of the next header in the directory, 0 = last
    type: int              # next bits 0-2
    executable: bool       # next bit 3
    spec: int              # spec.info
    size_bytes: int        # size
    checksum: int          # checksum of header + padded name

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        ">"
        "I"   # 0x00 next | exec | type
        "I"   # 0x04 spec.info
        "I"   # 0x08 size
        "I"   # 0x0c checksum
    )

    def pack(self) -> bytes:
        # romfs document, "file headers": every field is a 32-bit word; next is 16-aligned
        # because its low four bits hold the type and the exec bit.
        for name, value in (("next", self.next_offset), ("spec", self.spec),
                            ("size", self.size_bytes), ("checksum", self.checksum)):
            if not 0 <= value <= MAX_SIZE:
                raise InternalError(f"romfs header field {name}={value} out of range")
        if self.next_offset & 15:
            raise InternalError(f"romfs next offset {self.next_offset} is not 16-aligned")
        if not 0 <= self.type <= 7:
            raise InternalError(f"romfs file type {self.type} is not 0..7")
        word0 = self.next_offset | (EXEC if self.executable else 0) | self.type
        return self.FORMAT.pack(word0, self.spec, self.size_bytes, self.checksum)

    @classmethod
    def unpack(cls, raw: bytes) -> RomfsHeader:
        word0, spec, size, csum = cls.FORMAT.unpack(raw)
        return cls(word0 & ~15, word0 & 7, bool(word0 & EXEC), spec, size, csum)


assert RomfsHeader.FORMAT.size == 16


@dataclass(frozen=True, slots=True)
class RomfsSuperblock:
    """The first 16 bytes; the volume name (NUL-terminated, padded to 16) follows."""

    full_size: int         # bytes of the filesystem, superblock included
    checksum: int          # makes the first min(512, full_size) bytes sum to zero

    FORMAT: ClassVar[struct.Struct] = struct.Struct(
        ">"
        "8s"  # 0x00 magic "-rom1fs-"
        "I"   # 0x08 full size
        "I"   # 0x0c checksum
    )

    def pack(self) -> bytes:
        # romfs document, "superblock": full size and checksum are 32-bit words.
        for name, value in (("full size", self.full_size), ("checksum", self.checksum)):
            if not 0 <= value <= MAX_SIZE:
                raise InternalError(f"romfs superblock {name}={value} out of range")
        return self.FORMAT.pack(MAGIC, self.full_size, self.checksum)

    @classmethod
    def unpack(cls, raw: bytes) -> RomfsSuperblock:
        magic, full, csum = cls.FORMAT.unpack(raw[:16])
        if magic != MAGIC:
            raise FormatError("romfs", 0, f"expected magic {MAGIC!r}, found {magic!r}")
        return cls(full, csum)


assert RomfsSuperblock.FORMAT.size == 16


def encode_name(name: str) -> bytes:
    """A name NUL-terminated and zero-padded to 16 bytes."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw + bytes(pad16(len(raw) + 1) - len(raw))



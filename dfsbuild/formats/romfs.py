"""romfs: on-disk records and the writer.

References: Linux Documentation/filesystems/romfs.rst (the romfs document), Linux
fs/romfs/super.c and include/uapi/linux/romfs_fs.h, genromfs 0.5.2. All words are big-endian.
The layout rules (root ".", "..", alignment, hard links) follow what genromfs writes; see
formats.md §1 for the traps.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import CapacityError, InternalError
from dfsbuild.formats.stream import Stream
from dfsbuild.fstree import FsNode

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
        for name, value in (("next", self.next_offset), ("spec", self.spec),
                            ("size", self.size_bytes)):
            if not 0 <= value <= MAX_SIZE:
                raise InternalError(f"romfs header field {name}={value} out of range")
        if self.next_offset & 15:
            raise InternalError(f"romfs next offset {self.next_offset} is not 16-aligned")
        word0 = self.next_offset | (EXEC if self.executable else 0) | self.type
        return self.FORMAT.pack(word0, self.spec, self.size_bytes, self.checksum)

    @classmethod
    def unpack(cls, raw: bytes) -> RomfsHeader:
        word0, spec, size, csum = cls.FORMAT.unpack(raw)
        return cls(word0 & ~15, word0 & 7, bool(word0 & EXEC), spec, size, csum)


assert RomfsHeader.FORMAT.size == 16


def encode_name(name: str) -> bytes:
    """A name NUL-terminated and zero-padded to 16 bytes."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw + bytes(pad16(len(raw) + 1) - len(raw))


@dataclass(slots=True, eq=False)
class Placed:
    """One header of the image with its offset decided."""

    node: FsNode
    name: str
    offset: int = 0
    pad: int = 0                     # zero bytes before the header (alignment)
    link: Placed | None = None       # hard link target ("." and ".." included)
    children: list[Placed] | None = None  # directories: their entry list

    @property
    def data_size(self) -> int:
        if self.link is not None:
            return 0
        return self.node.size_bytes if self.node.kind in ("file", "symlink") else 0


@dataclass(slots=True)
class RomfsPlan:
    """Every offset of a romfs image, decided before a byte is written."""

    volume: str
    root: list[Placed]               # the root list: ".", "..", children
    full_size: int                   # bytes counted in the superblock
    image_size: int                  # full_size padded to 1024

    def headers(self) -> Iterator[Placed]:
        def rec(entries: list[Placed]) -> Iterator[Placed]:
            for p in entries:
                yield p
                if p.children is not None and p.name not in (".", ".."):
                    yield from rec(p.children)
        yield from rec(self.root)


def plan_romfs(root: FsNode, volume: str, align_bytes: int = 16,
               where: tuple[str, str] = ("romfs", "")) -> RomfsPlan:
    """Decide every offset, as genromfs would for a tree read in this order."""
    vol = volume.encode("utf-8", "surrogateescape")
    if len(vol) > MAX_NAME or b"\0" in vol:
        raise CapacityError(*where, f"volume name of {len(vol)} bytes; at most {MAX_NAME}, "
                            "no NUL")
    cursor = 16 + pad16(len(vol) + 1)

    def place(p: Placed, data_aligned: bool, align: int) -> None:
        nonlocal cursor
        name_len = len(p.name.encode("utf-8", "surrogateescape"))
        if name_len > MAX_NAME:
            raise CapacityError(*where, f"{p.node.path!r}: a name of {name_len} bytes; romfs "
                                f"names hold at most {MAX_NAME}")
        extra = 16 + pad16(name_len + 1) if data_aligned else 0
        miss = (cursor + extra) & (align - 1)
        if miss:
            p.pad = align - miss
            cursor += p.pad
        p.offset = cursor
        size = p.data_size
        if size > MAX_SIZE:
            raise CapacityError(*where, f"{p.node.path!r}: {size} bytes; a romfs file holds "
                                f"at most {MAX_SIZE}")
        cursor += 16 + pad16(name_len + 1) + pad16(size)

    dot = Placed(root, ".", children=[])
    dotdot = Placed(root, "..", link=dot)
    place(dot, False, 16)
    place(dotdot, False, 16)
    top = [dot, dotdot]
    holders: dict[int, Placed] = {}

    def fill(entries: list[Placed], dir_node: FsNode, parent: Placed) -> None:
        for child in dir_node.children:
            p = Placed(child, child.name)
            entries.append(p)
            if child.link_to is not None:
                p.link = holders[id(child.link_to)]
                place(p, False, align_bytes if child.kind == "file" else 16)
                continue
            holders[id(child)] = p
            is_file = child.kind == "file"
            place(p, is_file, align_bytes if is_file else 16)
            if child.kind == "dir":
                p.children = []
                own = Placed(child, ".", link=p)
                place(own, False, 16)
                up = Placed(child, "..", link=parent)
                place(up, False, 16)
                p.children += [own, up]
                fill(p.children, child, p)

    fill(top, root, dot)
    if cursor > MAX_SIZE:
        raise CapacityError(*where, f"the image needs {cursor} bytes; romfs holds at most "
                            f"{MAX_SIZE}")
    full = cursor
    return RomfsPlan(volume, top, full, -(-full // BLOCK) * BLOCK)


def _header_bytes(p: Placed, next_offset: int) -> bytes:
    node = p.node
    executable = False
    spec = 0
    if p.link is not None:
        kind = HARDLINK
        spec = p.link.offset
    else:
        kind = KIND_TYPES[node.kind]
        executable = node.kind in ("dir", "file") and bool(node.mode & 0o111)
        if node.kind == "dir":
            entries = p.children or []
            spec = entries[0].offset if entries else p.offset
        elif node.kind in ("char", "block"):
            spec = (node.major << 16) | node.minor
    header = RomfsHeader(next_offset, kind, executable, spec, p.data_size, 0).pack()
    return fix_checksum(header + encode_name(p.name), 12)


def write_romfs(plan: RomfsPlan, out: Stream) -> None:
    """Stream the planned image into ``out`` (which starts at the image's first byte)."""
    vol = encode_name(plan.volume)
    out.write(MAGIC + struct.pack(">II", plan.full_size, 0) + vol)

    def emit(entries: list[Placed]) -> None:
        for i, p in enumerate(entries):
            nxt = entries[i + 1].offset if i + 1 < len(entries) else 0
            out.zeros(p.pad)
            if out.pos != p.offset:
                raise InternalError(f"romfs header {p.node.path!r} planned at {p.offset}, "
                                    f"stream at {out.pos}")
            out.write(_header_bytes(p, nxt))
            size = p.data_size
            if size:
                if p.node.kind == "symlink":
                    out.write(p.node.target.encode("utf-8", "surrogateescape"))
                else:
                    assert p.node.source is not None
                    out.copy(p.node.source, size)
                out.zeros(pad16(size) - size)
            if p.children is not None and p.name not in (".", ".."):
                emit(p.children)

    emit(plan.root)
    if out.pos != plan.full_size:
        raise InternalError(f"romfs wrote {out.pos} bytes, planned {plan.full_size}")
    out.zeros(plan.image_size - plan.full_size)
    first = out.pread(0, min(CHECKSUM_SPAN, plan.full_size))
    out.patch(12, struct.pack(">I", (-checksum(first)) & 0xFFFFFFFF))

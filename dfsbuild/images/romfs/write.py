"""romfs writer: every offset planned first (as genromfs lays them out for a tree read in
this order), then the image streamed into a Sink.

The layout rules (root ".", "..", alignment, hard links) follow what genromfs 0.5.2 writes; see
formats.md §1 for the traps.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from dfsbuild.errors import CapacityError, InternalError
from dfsbuild.fileio.sink import Sink
from dfsbuild.images.romfs.records import (
    BLOCK,
    CHECKSUM_SPAN,
    HARDLINK,
    KIND_TYPES,
    MAX_NAME,
    MAX_SIZE,
    RomfsHeader,
    RomfsSuperblock,
    checksum,
    encode_name,
    fix_checksum,
    pad16,
)
from dfsbuild.trees.fstree import FsNode


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
        """Every header in image order (pre-order; no recursion, so any depth)."""
        stack: list[Iterator[Placed]] = [iter(self.root)]
        while stack:
            p = next(stack[-1], None)
            if p is None:
                stack.pop()
                continue
            yield p
            if p.children is not None and p.name not in (".", ".."):
                stack.append(iter(p.children))


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

    # Pre-order with an explicit stack (a tree of any depth): a directory's own "." and ".."
    # come right after its header, then its children, then its next sibling.
    stack: list[tuple[Iterator[FsNode], list[Placed], Placed]] = [(iter(root.children), top,
                                                                   dot)]
    while stack:
        child = next(stack[-1][0], None)
        if child is None:
            stack.pop()
            continue
        entries, parent = stack[-1][1], stack[-1][2]
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
            own = Placed(child, ".", link=p)
            place(own, False, 16)
            up = Placed(child, "..", link=parent)
            place(up, False, 16)
            p.children = [own, up]
            stack.append((iter(child.children), p.children, p))
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


def write_romfs(plan: RomfsPlan, out: Sink) -> None:
    """Stream the planned image into ``out`` (which starts at the image's first byte)."""
    vol = encode_name(plan.volume)
    out.write(RomfsSuperblock(plan.full_size, 0).pack() + vol)

    nexts: dict[int, int] = {}
    for entries in [plan.root, *(p.children for p in plan.headers()
                                 if p.children is not None and p.name not in (".", ".."))]:
        for a, b in itertools.pairwise(entries):
            nexts[id(a)] = b.offset
    for p in plan.headers():
        out.zeros_or_hole(p.pad)
        if out.pos != p.offset:
            raise InternalError(f"romfs header {p.node.path!r} planned at {p.offset}, "
                                f"stream at {out.pos}")
        out.write(_header_bytes(p, nexts.get(id(p), 0)))
        size = p.data_size
        if size:
            if p.node.kind == "symlink":
                out.write(p.node.target.encode("utf-8", "surrogateescape"))
            else:
                assert p.node.source is not None
                out.copy(p.node.source, size, p.node.data_id, p.node.path)
            out.zeros_or_hole(pad16(size) - size)
    if out.pos != plan.full_size:
        raise InternalError(f"romfs wrote {out.pos} bytes, planned {plan.full_size}")
    out.zeros_or_hole(plan.image_size - plan.full_size)
    first = out.pread(0, min(CHECKSUM_SPAN, plan.full_size))
    out.patch(12, struct.pack(">I", (-checksum(first)) & 0xFFFFFFFF))

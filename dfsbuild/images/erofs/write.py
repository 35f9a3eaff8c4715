"""Planning and writing an uncompressed EROFS image, reproducibly.

Layout decisions (the same tree always gives the same bytes):
- block 0 holds the superblock at byte 1024; the metadata area starts at block 1: every
  inode in pre-order (the root first, so its NID is 0; children in byte order of their names),
  each 32-byte aligned, compact unless the file is 4 GiB or larger;
- a directory's last partial block, a symlink's target and a regular file smaller than a block
  follow their inode ("inline", EROFS_INODE_FLAT_INLINE) when inode and data fit in one
  block; an inode whose inline data would cross a block boundary starts the next block;
  larger files are whole blocks (EROFS_INODE_FLAT_PLAIN), their last block zero-padded;
- then the data area: each directory's full blocks and each file's blocks, in pre-order;
- directory entries, "." and ".." included, in byte order of their names, packed greedily
  into 4 KiB blocks; uid and gid 0; the build's one time in the superblock (compact inodes
  have none of their own); a hard link is another entry naming the same inode.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from dfsbuild.errors import CapacityError, InternalError
from dfsbuild.fileio.sink import Sink
from dfsbuild.images.erofs.records import (
    BLOCK,
    DIRENT,
    FILE_TYPES,
    FLAT_INLINE,
    FLAT_PLAIN,
    META_BLOCK,
    S_IFMT,
    SLOT,
    SUPER_OFFSET,
    Inode,
    Superblock,
    encode_rdev,
)
from dfsbuild.trees.fstree import FsNode

MAX_BLOCKS = (1 << 32) - 1


@dataclass(slots=True)
class Placed:
    """One inode: where it lies, what follows it inline, where its blocks are."""

    node: FsNode
    ino: int
    size: int                    # i_size
    inline: int = 0              # bytes of data right after the inode
    extended: bool = False
    nid: int = 0
    blocks: int = 0              # whole blocks in the data area
    block_addr: int = 0
    nlink: int = 1
    entries: list[tuple[bytes, Placed | None]] = field(default_factory=list)  # dirs
    dir_bytes: bytes | None = None   # dirs: their data, made once when written

    @property
    def inode_bytes(self) -> int:
        return 64 if self.extended else 32


@dataclass(slots=True)
class ErofsPlan:
    inodes: list[Placed]         # in metadata order; the root first
    meta_bytes: int              # the metadata area, whole blocks
    total_blocks: int
    uuid: bytes
    volume: bytes
    time: int

    @property
    def image_size(self) -> int:
        return self.total_blocks * BLOCK


def _name(node: FsNode) -> bytes:
    return node.name.encode("utf-8", "surrogateescape")


Entry = tuple[bytes, "Placed | None"]      # a directory entry: name, the inode it names


def _dir_blocks(entries: list[Entry]) -> list[list[Entry]]:
    """The entries cut into directory blocks, greedily, in order."""
    blocks: list[list[Entry]] = [[]]
    used = 0
    for name, target in entries:
        need = DIRENT.size + len(name)
        if blocks[-1] and used + need > BLOCK:
            blocks.append([])
            used = 0
        blocks[-1].append((name, target))
        used += need
    return blocks


def _block_used(block: list[Entry]) -> int:
    return sum(DIRENT.size + len(name) for name, _ in block)


def plan_erofs(root: FsNode, uuid: bytes, volume: bytes, time: int,
               where: tuple[str, str]) -> ErofsPlan:
    placed: dict[int, Placed] = {}
    order: list[Placed] = []
    for name in root.walk():
        node = name.link_to if name.link_to is not None else name
        if id(node) in placed:
            placed[id(node)].nlink += 1
            continue
        size = {"file": node.size_bytes, "symlink": len(node.target.encode(
            "utf-8", "surrogateescape"))}.get(node.kind, 0)
        p = Placed(node, len(order) + 1, size, extended=size > 0xFFFFFFFF)
        placed[id(node)] = p
        order.append(p)
    for p in order:                       # directory contents, sizes and link counts
        if p.node.kind != "dir":
            continue
        parent = p
        names: list[tuple[bytes, Placed | None]] = [(b".", p), (b"..", None)]
        for child in p.node.children:
            names.append((_name(child), placed[id(child.link_to or child)]))
            if child.kind == "dir":
                parent.nlink += 1
        p.nlink += 1
        p.entries = sorted(names, key=lambda e: e[0])
        blocks = _dir_blocks(p.entries)
        p.size = (len(blocks) - 1) * BLOCK + _block_used(blocks[-1])
    parents = {id(c.link_to or c): placed[id(n)] for n in root.walk() if n.kind == "dir"
               for c in n.children if c.kind == "dir"}
    for p in order:
        if p.node.kind == "dir":
            up = parents.get(id(p.node), p)
            p.entries = [(name, up if name == b".." else t) for name, t in p.entries]
    # The metadata area: inodes and inline data.
    pos = 0
    for p in order:
        tail = p.size % BLOCK
        small = p.node.kind in ("dir", "symlink") or (p.node.kind == "file" and
                                                      p.size < BLOCK)
        if small and tail and p.inode_bytes + tail <= BLOCK:
            p.inline = tail
        start = -(-pos // SLOT) * SLOT
        if start % BLOCK + p.inode_bytes + p.inline > BLOCK:
            start = -(-start // BLOCK) * BLOCK
        p.nid = start // SLOT
        pos = start + p.inode_bytes + p.inline
        p.blocks = p.size // BLOCK if p.inline else -(-p.size // BLOCK)
    if order[0].nid > 0xFFFF:
        raise InternalError("the root inode is not first")
    meta_bytes = -(-pos // BLOCK) * BLOCK
    block = META_BLOCK + meta_bytes // BLOCK
    for p in order:
        if p.blocks:
            p.block_addr = block
            block += p.blocks
    if block > MAX_BLOCKS:
        raise CapacityError(where[0], where[1], f"{block} blocks of {BLOCK} bytes; an EROFS "
                            f"image holds at most {MAX_BLOCKS}")
    return ErofsPlan(order, meta_bytes, block, uuid, volume, time)


def _inode(p: Placed, plan: ErofsPlan) -> Inode:
    n = p.node
    mode = S_IFMT[n.kind] | stat.S_IMODE(n.mode)
    u = encode_rdev(n.major, n.minor) if n.kind in ("char", "block") else p.block_addr
    return Inode(FLAT_INLINE if p.inline else FLAT_PLAIN, mode, p.nlink, p.size, u, p.ino,
                 mtime=plan.time, extended=p.extended)


def _dir_bytes(p: Placed) -> list[bytes]:
    """The directory's blocks: every one padded to a block but the last."""
    out = []
    blocks = _dir_blocks(p.entries)
    for i, block in enumerate(blocks):
        heads, names = [], []
        nameoff = DIRENT.size * len(block)
        for name, target in block:
            assert target is not None
            kind = "file" if target.node.kind == "file" else target.node.kind
            heads.append(DIRENT.pack(target.nid, nameoff, FILE_TYPES[kind]))
            names.append(name)
            nameoff += len(name)
        data = b"".join(heads) + b"".join(names)
        out.append(data if i == len(blocks) - 1 else data.ljust(BLOCK, b"\0"))
    return out


def _data(p: Placed, out: Sink, start: int, n: int) -> None:
    """Bytes ``start .. start + n`` of the inode's data (a file is only ever written whole:
    inline when it is smaller than a block, else in the data area)."""
    node = p.node
    if node.kind == "dir":
        if p.dir_bytes is None:
            p.dir_bytes = b"".join(_dir_bytes(p))
        out.write(p.dir_bytes[start:start + n])
    elif node.kind == "symlink":
        out.write(node.target.encode("utf-8", "surrogateescape")[start:start + n])
    elif node.kind == "file":
        if start != 0 or n != p.size:
            raise InternalError(f"erofs: a file written in part ({node.path!r})")
        if node.image is not None or node.source is not None:
            assert node.source is not None
            out.copy(node.source, n, node.data_id, node.path)
        elif n:
            raise InternalError(f"erofs: no source for {node.path!r}")


def write_erofs(plan: ErofsPlan, out: Sink) -> None:
    """Stream the planned image into ``out`` (which starts at the image's first byte)."""
    sb = Superblock(plan.inodes[0].nid, len(plan.inodes), plan.time, plan.total_blocks,
                    plan.uuid, plan.volume)
    out.written_zeros(SUPER_OFFSET)
    out.write(sb.pack())
    out.written_zeros(BLOCK - SUPER_OFFSET - Superblock.FORMAT.size)
    meta = META_BLOCK * BLOCK
    for p in plan.inodes:
        at = meta + p.nid * SLOT
        out.write(bytes(at - out.pos) + _inode(p, plan).pack())   # padding: written zeros
        if p.inline:
            _data(p, out, p.size - p.inline, p.inline)
    out.written_zeros(meta + plan.meta_bytes - out.pos)
    for p in plan.inodes:
        if not p.blocks:
            continue
        if out.pos != p.block_addr * BLOCK:
            raise InternalError(f"erofs: {p.node.path!r} planned at block {p.block_addr}, "
                                f"stream at {out.pos}")
        n = p.blocks * BLOCK if p.inline else p.size
        _data(p, out, 0, n)
        out.zeros_or_hole(p.blocks * BLOCK - n)
    if out.pos != plan.image_size:
        raise InternalError(f"erofs wrote {out.pos} bytes, planned {plan.image_size}")

"""Planning and writing an uncompressed EROFS image, reproducibly.

Layout decisions (the same tree always gives the same bytes):
- block 0 holds the superblock at byte 1024, and the metadata area starts there, its first
  slot right after the superblock (byte 1152, NID 36), as mkfs.erofs's does: every inode
  placed in pre-order (the root first, at NID 36 when it fits there; children in byte order
  of their names), each 32-byte aligned, compact unless the file is 4 GiB or larger, with its
  inline data in the fullest metadata block that holds both (best fit), else in a new block;
- a directory's last partial block, a symlink's target and a regular file smaller than a block
  follow their inode ("inline", EROFS_INODE_FLAT_INLINE) when inode and data fit in one
  block (inline data never crosses a block boundary);
  larger files are whole blocks (EROFS_INODE_FLAT_PLAIN), their last block zero-padded, so
  each file's data is one run the engine can patch alone; with ``tail-pack`` their last
  partial block is inline too (smaller, as mkfs.erofs packs it; a file is then two runs);
- then the data area: each directory's full blocks and each file's blocks, in pre-order;
- directory entries, "." and ".." included, in byte order of their names, packed greedily
  into 4 KiB blocks; uid and gid 0; the build's one time in the superblock (compact inodes
  have none of their own); a hard link is another entry naming the same inode.

Compression (lz4 or lzma, a later step) fits this plan as one more data layout per inode:
each ``Placed`` decides its own (``inline``/``blocks`` today), a compressed file would take
EROFS_INODE_COMPRESSED_FULL with its cluster index after the inode (metadata placed as inline
data is now) and its compressed blocks in the data area, and the superblock would name the
algorithms (``feature_incompat``, ``available_compr_algs``).
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
    FIRST_SLOT,
    FLAT_INLINE,
    FLAT_PLAIN,
    META_BLOCK,
    S_IFMT,
    SLOT,
    SUPER_OFFSET,
    Superblock,
    encode_rdev,
    pack_inode,
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
    parent: Placed | None = None     # dirs: the directory holding it (the root: none)

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
    tail_pack: bool = False

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
               where: tuple[str, str], tail_pack: bool = False) -> ErofsPlan:
    placed: dict[int, Placed] = {}
    order: list[Placed] = []
    for name in root.walk():
        node = name.link_to if name.link_to is not None else name
        key = id(node)
        seen = placed.get(key)
        if seen is not None:
            seen.nlink += 1
            continue
        kind = node.kind
        size = node.size_bytes if kind == "file" else len(node.target.encode(
            "utf-8", "surrogateescape")) if kind == "symlink" else 0
        placed[key] = p = Placed(node, len(order) + 1, size, extended=size > 0xFFFFFFFF)
        order.append(p)
    for p in order:                       # directory contents, sizes and link counts
        if p.node.kind != "dir":
            continue
        names: list[Entry] = [(b".", p), (b"..", None)]     # "..": p.parent, when written
        for child in p.node.children:
            target = placed[id(child.link_to or child)]
            names.append((_name(child), target))
            if child.kind == "dir":
                p.nlink += 1
                target.parent = p
        p.nlink += 1
        p.entries = sorted(names)        # names are unique: the inodes are never compared
        blocks = _dir_blocks(p.entries)
        p.size = (len(blocks) - 1) * BLOCK + _block_used(blocks[-1])
    meta_bytes = _place_inodes(order, tail_pack)
    if order[0].nid > 0xFFFF:
        raise InternalError("the root inode is not first")
    block = META_BLOCK + meta_bytes // BLOCK
    for p in order:
        if p.blocks:
            p.block_addr = block
            block += p.blocks
    if block > MAX_BLOCKS:
        raise CapacityError(where[0], where[1], f"{block} blocks of {BLOCK} bytes; an EROFS "
                            f"image holds at most {MAX_BLOCKS}")
    return ErofsPlan(order, meta_bytes, block, uuid, volume, time, tail_pack)


def _place_inodes(order: list[Placed], tail_pack: bool) -> int:
    """Each inode's NID and inline bytes; the metadata area's size. Inodes (with their inline
    data) are placed in order, each in the fullest metadata block it fits in (best fit: the
    smallest free run of slots that holds it, the last one freed among equals), else in a new
    block; so the gaps an inline tail leaves at a block's end are filled by later inodes. The
    first block is the superblock's, free from its end."""
    per_block = BLOCK // SLOT
    free: list[list[int]] = [[] for _ in range(per_block + 1)]   # by length: first slots
    free[per_block - FIRST_SLOT].append(FIRST_SLOT)
    lengths = 1 << (per_block - FIRST_SLOT)   # bit n set: some free run is n slots long
    blocks = 1
    for p in order:
        kind = p.node.kind
        size = p.size
        tail = size % BLOCK
        inode = 64 if p.extended else 32
        if tail and inode + tail <= BLOCK and (kind != "file" or size < BLOCK or tail_pack):
            p.inline = tail                       # (only files, dirs and symlinks have data)
            p.blocks = size // BLOCK
        else:
            p.blocks = -(-size // BLOCK)
        need = (inode + p.inline + SLOT - 1) // SLOT
        fits = lengths >> need
        if fits:
            length = need + (fits & -fits).bit_length() - 1
            runs = free[length]
            start = runs.pop()
            if not runs:
                lengths &= ~(1 << length)
        else:
            length, start = per_block, blocks * per_block
            blocks += 1
        p.nid = start
        if length > need:
            free[length - need].append(start + need)
            lengths |= 1 << (length - need)
    return blocks * BLOCK


def _inode(p: Placed, plan: ErofsPlan) -> bytes:
    n = p.node
    kind = n.kind
    u = encode_rdev(n.major, n.minor) if kind == "char" or kind == "block" else p.block_addr
    return pack_inode(FLAT_INLINE if p.inline else FLAT_PLAIN,
                      S_IFMT[kind] | stat.S_IMODE(n.mode), p.nlink, p.size, u, p.ino, 0, 0,
                      plan.time, p.extended)


def _dir_bytes(p: Placed) -> list[bytes]:
    """The directory's blocks: every one padded to a block but the last."""
    out = []
    blocks = _dir_blocks(p.entries)
    for i, block in enumerate(blocks):
        heads, names = [], []
        nameoff = DIRENT.size * len(block)
        for name, target in block:
            if target is None:               # ".."
                target = p.parent or p
            kind = "file" if target.node.kind == "file" else target.node.kind
            heads.append(DIRENT.pack(target.nid, nameoff, FILE_TYPES[kind]))
            names.append(name)
            nameoff += len(name)
        data = b"".join(heads) + b"".join(names)
        out.append(data if i == len(blocks) - 1 else data.ljust(BLOCK, b"\0"))
    return out


def _data(p: Placed, out: Sink, start: int, n: int) -> None:
    """Bytes ``start .. start + n`` of the inode's data (a file is written whole, inline when
    it is smaller than a block, else in the data area; or, tail-packed, its whole blocks in
    the data area and the rest inline: two parts, neither of which is the file)."""
    node = p.node
    if node.kind == "dir":
        if p.dir_bytes is None:
            p.dir_bytes = b"".join(_dir_bytes(p))
        out.write(p.dir_bytes[start:start + n])
    elif node.kind == "symlink":
        out.write(node.target.encode("utf-8", "surrogateescape")[start:start + n])
    elif node.kind == "file":
        if node.source is None:
            if n:
                raise InternalError(f"erofs: no source for {node.path!r}")
        elif start == 0 and n == p.size:
            out.copy(node.source, n, node.data_id, node.path)
        elif p.inline and (start, n) in ((0, p.size - p.inline), (p.size - p.inline, p.inline)):
            out.copy(node.source, n, offset=start, last=start + n == p.size)
        else:
            raise InternalError(f"erofs: bytes {start}+{n} of {node.path!r} written alone")


def write_erofs(plan: ErofsPlan, out: Sink) -> None:
    """Stream the planned image into ``out`` (which starts at the image's first byte)."""
    sb = Superblock(plan.inodes[0].nid, len(plan.inodes), plan.time, plan.total_blocks,
                    plan.uuid, plan.volume)
    out.written_zeros(SUPER_OFFSET)
    out.write(sb.pack())
    meta = META_BLOCK * BLOCK
    for p in sorted(plan.inodes, key=lambda p: p.nid):
        head = bytes(meta + p.nid * SLOT - out.pos) + _inode(p, plan)   # padding: zeros
        node = p.node
        if p.inline == p.size and node.data_id is None and node.source is not None:
            # a whole small file of no known content (mkfs): one write with its inode
            out.write_and_file(head, node.source, p.size)
            continue
        out.write(head)
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

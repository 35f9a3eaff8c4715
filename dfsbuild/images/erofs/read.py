"""Reading an uncompressed EROFS image (ours or mkfs.erofs's) through the one reader contract.
Every offset comes from the image and is bounded by the ByteSource; a directory that holds
itself, an inode past the image's end or a name past its block is a FormatError."""

from __future__ import annotations

import stat
import uuid as uuidlib
from collections.abc import Iterator

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader
from dfsbuild.images.erofs.records import (
    DIRENT,
    FLAT_INLINE,
    MODE_KINDS,
    SLOT,
    SUPER_OFFSET,
    Inode,
    Superblock,
    decode_rdev,
)

CHUNK = 1 << 20


class ErofsReader(FsReader):
    format = "erofs"

    def __init__(self, src: ByteSource) -> None:
        self.src = src.named("erofs")
        self.sb = Superblock.unpack(self.src.read(SUPER_OFFSET, Superblock.FORMAT.size))
        self.block = 1 << self.sb.block_bits
        self.meta = self.sb.meta_block * self.block

    def _inode(self, nid: int) -> Inode:
        at = self.meta + nid * SLOT
        return Inode.unpack(self.src.read_upto(at, Inode.EXTENDED.size), at)

    def _entry(self, path: str, name: str, nid: int) -> FsEntry:
        ino = self._inode(nid)
        kind = MODE_KINDS.get(stat.S_IFMT(ino.mode))
        if kind is None:
            raise FormatError("erofs", self.meta + nid * SLOT, f"inode {nid}: mode "
                              f"0o{ino.mode:o} is no file type")
        major, minor = decode_rdev(ino.u) if kind in ("char", "block") else (0, 0)
        target = b"".join(self._chunks(nid, ino)).decode("utf-8", "surrogateescape") \
            if kind == "symlink" else ""
        return FsEntry(path, name, kind, stat.S_IMODE(ino.mode), ino.size, nid,
                       target=target, major=major, minor=minor,
                       extra=(("nid", nid), ("nlink", ino.nlink),
                              ("layout", "inline" if ino.layout == FLAT_INLINE else "plain")))

    def root(self) -> FsEntry:
        return self._entry("", "", self.sb.root_nid)

    def _spans(self, nid: int, ino: Inode) -> list[tuple[int, int]]:
        """(offset, length) in the image of the inode's data, in order."""
        if ino.layout == FLAT_INLINE:
            full = ino.size // self.block
            tail = ino.size - full * self.block
            inline_at = self.meta + nid * SLOT + ino.disk_size
            if tail and inline_at // self.block != (inline_at + tail - 1) // self.block:
                raise FormatError("erofs", inline_at, f"inode {nid}: inline data crosses a "
                                  "block boundary")
            spans = [(ino.u * self.block, full * self.block)] if full else []
            return spans + ([(inline_at, tail)] if tail else [])
        return [(ino.u * self.block, ino.size)] if ino.size else []

    def _chunks(self, nid: int, ino: Inode) -> Iterator[bytes]:
        for at, n in self._spans(nid, ino):
            pos = at
            while pos < at + n:
                size = min(CHUNK, at + n - pos)
                yield self.src.read(pos, size)
                pos += size

    def children(self, directory: FsEntry) -> list[FsEntry]:
        nid = directory.ident
        ino = self._inode(nid)
        data = b"".join(self._chunks(nid, ino))
        out = []
        for pos in range(0, len(data), self.block):
            block = data[pos:pos + self.block]
            if len(block) < DIRENT.size:
                raise FormatError("erofs", None, f"directory {directory.path!r}: a block of "
                                  f"{len(block)} bytes holds no entry")
            first = DIRENT.unpack_from(block)[1]
            count = first // DIRENT.size
            if first % DIRENT.size or not count > 0 or first > len(block):
                raise FormatError("erofs", None, f"directory {directory.path!r}: first name "
                                  f"at {first} in a block of {len(block)} bytes")
            heads = [DIRENT.unpack_from(block, i * DIRENT.size) for i in range(count)]
            for i, (child, nameoff, _ftype) in enumerate(heads):
                end = heads[i + 1][1] if i + 1 < count else len(block)
                if not first <= nameoff <= end <= len(block):
                    raise FormatError("erofs", None, f"directory {directory.path!r}: name "
                                      f"{i} at {nameoff}..{end} outside its block")
                raw = block[nameoff:end]
                if i + 1 == count:
                    raw = raw.split(b"\0", 1)[0]
                if raw in (b".", b".."):
                    continue
                name = raw.decode("utf-8", "surrogateescape")
                path = f"{directory.path}/{name}" if directory.path else name
                out.append(self._entry(path, name, child))
        return out

    def data(self, entry: FsEntry) -> Iterator[bytes]:
        return self._chunks(entry.ident, self._inode(entry.ident))

    def extents(self, entry: FsEntry) -> list[tuple[int, int]]:
        return self._spans(entry.ident, self._inode(entry.ident))

    def summary(self) -> dict[str, object]:
        sb = self.sb
        return {"uuid": str(uuidlib.UUID(bytes=sb.uuid)),
                "label": sb.volume.decode("utf-8", "replace"), "block_size": self.block,
                "blocks": sb.blocks, "inodes": sb.inodes, "root_nid": sb.root_nid,
                "build_time": sb.build_time, "meta_block": sb.meta_block,
                "feature_compat": sb.feature_compat, "feature_incompat": sb.feature_incompat}

    def identity(self) -> dict[str, str]:
        label = self.sb.volume.decode("utf-8", "surrogateescape")
        return {"type": "erofs", "uuid": str(uuidlib.UUID(bytes=self.sb.uuid)),
                **({"label": label} if label else {})}

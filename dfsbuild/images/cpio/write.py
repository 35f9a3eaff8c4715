"""cpio newc writer: entries in byte order of their paths (so directories come before their
contents), uid/gid 0, one mtime, inode numbers counted in that order, hard links sharing an
inode with the data on the last name, then ``TRAILER!!!`` and zeros to a multiple of 512.
Compressed archives are compressed while planning (into an anonymous temporary file), since
their size is only known then: gzip with mtime 0 and no name, or xz with the CRC32 check (the
only one the kernel accepts)."""

from __future__ import annotations

import gzip
import lzma
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from dfsbuild.errors import CapacityError, InternalError
from dfsbuild.fileio.scratch import scratch
from dfsbuild.fileio.sink import Sink
from dfsbuild.fileio.source import file_chunks
from dfsbuild.images.cpio.records import HEADER, TRAILER, CpioHeader, pad4
from dfsbuild.trees.fstree import FsNode

TYPE_BITS = {"dir": 0o040000, "file": 0o100000, "symlink": 0o120000, "char": 0o020000,
             "block": 0o060000, "fifo": 0o010000, "socket": 0o140000}
CHUNK = 1 << 20


@dataclass(slots=True)
class Member:
    node: FsNode
    name: bytes
    header: CpioHeader
    data_size: int                   # 0 for all but the last name of a hard-linked file
    offset: int = 0


@dataclass(slots=True)
class CpioPlan:
    members: list[Member]
    raw_size: int                    # the uncompressed archive
    image_size: int
    compress: str
    packed: BinaryIO | None = field(default=None)   # the compressed bytes


def plan_cpio(root: FsNode, mtime: int, compress: str, where: tuple[str, str]) -> CpioPlan:
    nodes = sorted((n for n in root.walk() if n.path),
                   key=lambda n: n.path.encode("utf-8", "surrogateescape"))
    inodes: dict[int, int] = {}
    names: dict[int, list[FsNode]] = {}
    for n in nodes:
        holder = n.link_to or n
        names.setdefault(id(holder), []).append(n)
    members = []
    cursor = 0
    next_ino = 1
    for n in nodes:
        holder = n.link_to or n
        key = id(holder)
        if key not in inodes:
            inodes[key] = next_ino
            next_ino += 1
        group = names[key]
        linked = n.kind == "file" and len(group) > 1
        last = not linked or n is group[-1]
        size = len(n.target.encode("utf-8", "surrogateescape")) if n.kind == "symlink" else (
            holder.size_bytes if n.kind == "file" and last else 0)
        if size > 0xFFFFFFFF:
            raise CapacityError(*where, f"{n.path!r}: {size} bytes; a cpio member holds at most "
                                "4 GiB - 1")
        name = n.path.encode("utf-8", "surrogateescape")
        rdev = (n.major, n.minor) if n.kind in ("char", "block") else (0, 0)
        header = CpioHeader(inodes[key], TYPE_BITS[n.kind] | (holder.mode & 0o7777), 0, 0,
                            len(group) if linked else (2 if n.kind == "dir" else 1), mtime,
                            size, 0, 0, rdev[0], rdev[1], len(name) + 1)
        members.append(Member(n, name, header, size, cursor))
        cursor += pad4(HEADER + len(name) + 1) + pad4(size)
    cursor += pad4(HEADER + len(TRAILER) + 1)
    raw = -(-cursor // 512) * 512
    plan = CpioPlan(members, raw, raw, compress)
    if compress != "none":
        packed = scratch()
        z = _compressor(compress, packed)
        try:
            _stream(plan, z.write, lambda src, n, _: _copy(src, n, z.write))
        finally:
            z.close()
        plan.packed = packed
        plan.image_size = packed.seek(0, 2)     # from the end
    return plan


class _Compressor(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


def _compressor(kind: str, out: BinaryIO) -> _Compressor:
    if kind == "gzip":
        return gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9)
    return lzma.LZMAFile(out, "wb", check=lzma.CHECK_CRC32)


def _stream(plan: CpioPlan, write: Callable[[bytes], object],
            copy: Callable[[str, int, str | None], None]) -> None:
    """The uncompressed archive, piece by piece, to ``write`` (file contents to ``copy``)."""
    pos = 0
    for m in plan.members:
        if pos != m.offset:
            raise InternalError(f"cpio member {m.node.path!r} planned at {m.offset}, at {pos}")
        head = m.header.pack() + m.name + b"\0"
        write(head + bytes(pad4(len(head)) - len(head)))
        pos += pad4(len(head))
        if m.node.kind == "symlink":
            write(m.node.target.encode("utf-8", "surrogateescape"))
        elif m.data_size:
            node = m.node.link_to or m.node
            assert node.source is not None
            copy(node.source, m.data_size, node.data_id)
        write(bytes(pad4(m.data_size) - m.data_size))
        pos += pad4(m.data_size)
    trailer = CpioHeader(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(TRAILER) + 1).pack() \
        + TRAILER.encode() + b"\0"
    write(trailer + bytes(pad4(len(trailer)) - len(trailer)))
    pos += pad4(len(trailer))
    write(bytes(plan.raw_size - pos))


def _copy(source: str, size: int, write: Callable[[bytes], object]) -> None:
    for chunk in file_chunks(source, size):
        write(chunk)


def write_cpio(plan: CpioPlan, out: Sink) -> None:
    if plan.packed is None:
        _stream(plan, out.write, out.copy)
        return
    plan.packed.seek(0)
    while chunk := plan.packed.read(CHUNK):
        out.write(chunk)

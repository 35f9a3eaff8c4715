"""TrivialFS writer: entries in byte order of their names, hard links (and symlinks into the
tree) as continuation lines, offsets found as a fix-point (the header's length depends on its
own numbers), data aligned, then the image streamed into a Sink.

With the ext2 label (the default) the header must end within the first 1024 bytes, the ext2
superblock that names the volume sits at 1024, data starts at 2048 or later, and the volume
is at least 69,632 bytes (formats.md §2.5)."""

from __future__ import annotations

from dataclasses import dataclass

from dfsbuild.errors import CapacityError, InternalError
from dfsbuild.fileio.sink import Sink
from dfsbuild.images.trivialfs.records import (
    EXT2_AT,
    MIN_LABELLED,
    Entry,
    ext2_label_block,
    format_header,
)
from dfsbuild.trees.fstree import FsNode

MAX_HOPS = 40


@dataclass(frozen=True, slots=True)
class TrivialSettings:
    uuid: str                       # lower case
    label: str
    align: int
    label_fs: str                   # "ext2" | "none"
    reserve: tuple[tuple[str, int], ...] = ()   # (path, bytes on disk)
    time: int = 0


@dataclass(slots=True)
class Planned:
    entry: Entry
    node: FsNode                    # holds the contents
    content: int                    # bytes of contents (the rest of the entry is zeros)


@dataclass(slots=True)
class TrivialPlan:
    settings: TrivialSettings
    header: bytes
    files: list[Planned]
    data_start: int
    image_size: int


def _name(node: FsNode) -> bytes:
    return node.path.encode("utf-8", "surrogateescape")


def _resolve(node: FsNode, by_path: dict[str, FsNode], where: tuple[str, str]) -> FsNode:
    """The regular file a symlink leads to inside the tree; CapacityError otherwise."""
    seen = node
    for _ in range(MAX_HOPS):
        if seen.kind != "symlink":
            break
        parts = [] if seen.target.startswith("/") else seen.path.split("/")[:-1]
        for comp in seen.target.split("/"):
            if comp in ("", "."):
                continue
            if comp != "..":
                parts.append(comp)
            elif parts:
                parts.pop()
            else:
                raise CapacityError(*where, f"{node.path!r} -> {node.target!r} points outside "
                                    "the tree; TrivialFS stores symlinks as hard links of "
                                    "their target")
        target = "/".join(parts)
        nxt = by_path.get(target)
        if nxt is None:
            raise CapacityError(*where, f"{node.path!r} -> {node.target!r} dangles (no "
                                f"{target!r} in the tree)")
        seen = nxt
    else:
        raise CapacityError(*where, f"{node.path!r}: more than {MAX_HOPS} symlinks in a row")
    if seen.kind != "file":
        raise CapacityError(*where, f"{node.path!r} leads to {seen.path!r}, a {seen.kind}; "
                            "TrivialFS holds only files")
    return seen.link_to or seen


def plan_trivialfs(root: FsNode, s: TrivialSettings, where: tuple[str, str]) -> TrivialPlan:
    by_path = {n.path: n for n in root.walk() if n.path}
    groups: dict[int, list[FsNode]] = {}          # holder id -> every name of its contents
    holders: dict[int, FsNode] = {}
    for node in by_path.values():
        if node.kind in ("dir",):
            continue
        if node.kind in ("char", "block", "fifo", "socket"):
            raise CapacityError(*where, f"{node.path!r} is a {node.kind}; TrivialFS holds only "
                                "files")
        if "\n" in node.path:
            raise CapacityError(*where, f"{node.path!r}: a TrivialFS name cannot hold a "
                                "newline")
        holder = _resolve(node, by_path, where) if node.kind == "symlink" else (
            node.link_to or node)
        holders[id(holder)] = holder
        groups.setdefault(id(holder), []).append(node)
    reserve = dict(s.reserve)
    for path, _ in s.reserve:
        if path not in by_path or by_path[path].kind != "file":
            raise CapacityError(*where, f"reserve of {path!r}: no such file in the image")
    planned = []
    for key, names in groups.items():
        holder = holders[key]
        ordered = sorted(_name(n) for n in names)
        size = max(holder.size_bytes, reserve.get(holder.path, 0),
                   *(reserve.get(n.path, 0) for n in names))
        entry = Entry(0, size, holder.mode & 0o7777, s.time, ordered, 0)
        planned.append(Planned(entry, holder, holder.size_bytes))
    planned.sort(key=lambda p: p.entry.names[0])
    align = s.align
    labelled = s.label_fs == "ext2"
    header = b""
    for _ in range(64):                          # fix-point: digits change the length
        header = format_header(s.uuid, [p.entry for p in planned])
        floor = 2 * EXT2_AT if labelled else len(header)
        cursor = -(-floor // align) * align
        data_start = cursor
        for p in planned:
            if p.entry.size == 0:
                p.entry.start = 0
                continue
            p.entry.start = cursor
            cursor = -(-(cursor + p.entry.size) // align) * align
        if len(format_header(s.uuid, [p.entry for p in planned])) == len(header):
            break
    else:
        raise InternalError("TrivialFS offsets found no fix-point")
    header = format_header(s.uuid, [p.entry for p in planned])
    if labelled and len(header) > EXT2_AT:
        raise CapacityError(*where, f"the TrivialFS header is {len(header)} bytes; with the ext2 "
                            f"label it must fit in {EXT2_AT}", hint="set label-fs = \"none\" "
                            "(no label or UUID for blkid and findfs), or hold fewer files")
    size = max(cursor, len(header))
    if labelled:
        size = max(size, MIN_LABELLED)
    size = -(-size // align) * align
    return TrivialPlan(s, header, planned, data_start, size)


def write_trivialfs(plan: TrivialPlan, out: Sink) -> None:
    out.write(plan.header)
    if plan.settings.label_fs == "ext2":
        out.zeros_or_hole(EXT2_AT - out.pos)
        out.write(ext2_label_block(plan.settings.uuid, plan.settings.label, plan.image_size))
    for p in plan.files:
        if p.entry.size == 0:
            continue
        if out.pos > p.entry.start:
            raise InternalError(f"TrivialFS data of {p.node.path!r} planned at "
                                f"{p.entry.start}, stream at {out.pos}")
        out.zeros_or_hole(p.entry.start - out.pos)
        if p.content:
            assert p.node.source is not None
            out.copy(p.node.source, p.content, p.node.data_id, p.node.path)
        out.written_zeros(p.entry.size - p.content)     # part of the file: written, never a hole
    out.zeros_or_hole(plan.image_size - out.pos)

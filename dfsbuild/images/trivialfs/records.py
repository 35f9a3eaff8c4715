"""TrivialFS metadata as text: the header lines, entries and their parsing (formats.md §2).

Read: line 1 the magic, an optional ``COMPATIBLE_VERSION=`` line (later revisions), then
``UUID=``; then entries ``START,SIZE[,MODE,MTIME]=NAME`` (2- and 4-field forms), ``|NAME``
continuation lines (hard links), ``#`` comments; the first other line (``EOF``, ``END``, an
empty line, …) ends the metadata. A line is only a line when it ends in LF. Names run from the
first ``=`` to the LF and may hold any other byte. Written: the 4-field form, ``EOF``.
"""

from __future__ import annotations

import re
import struct
import uuid as uuidlib
from dataclasses import dataclass, field

MAGIC = b"TrivialFS=80a29844-f5e3-11e3-b1c1-b827eb896db5\n"
TERMINATOR = b"EOF\n"
ENTRY = re.compile(rb"([0-9]+),([0-9]+)(?:,([0-7]+),([0-9]+))?=(.*)", re.DOTALL)
UUID_LINE = re.compile(rb"UUID=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
MAX_METADATA = 64 << 20          # a reader stops looking for the terminator after this

# The ext2 superblock that only names the volume (formats.md §2.5).
EXT2_AT, EXT2_MAGIC = 1024, 0xEF53
LABEL_MAX = 16
MIN_LABELLED = 69632            # busybox reads this much before probing


@dataclass(slots=True)
class Entry:
    start: int
    size: int
    mode: int | None
    mtime: int | None
    names: list[bytes]
    offset: int                  # byte offset of the entry's line
    link_offsets: list[int] = field(default_factory=list)   # of each continuation line

    def line(self) -> bytes:
        head = f"{self.start},{self.size}"
        if self.mode is not None:
            head += f",{self.mode:o},{self.mtime or 0}"
        return (head.encode() + b"=" + self.names[0] + b"\n"
                + b"".join(b"|" + n + b"\n" for n in self.names[1:]))


@dataclass(slots=True)
class Header:
    uuid: str
    compatible: int | None
    entries: list[Entry]
    end: int                      # first byte after the terminator line
    terminator: bytes             # the line that ended the metadata ("" when the data ended)
    problems: list[tuple[int, str]]


class HeaderError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


def format_header(volume_uuid: str, entries: list[Entry]) -> bytes:
    return (MAGIC + f"UUID={volume_uuid}\n".encode()
            + b"".join(e.line() for e in entries) + TERMINATOR)


def parse_header(data: bytes) -> Header:
    """The metadata at the start of ``data``; HeaderError when the first lines are not a
    TrivialFS header."""
    if not data.startswith(MAGIC):
        raise HeaderError(0, "no TrivialFS magic line")
    pos = len(MAGIC)
    compatible = None
    line, nxt = _line(data, pos)
    if line is not None and line.startswith(b"COMPATIBLE_VERSION="):
        number = line[len(b"COMPATIBLE_VERSION="):]
        if not number.isdigit():
            raise HeaderError(pos, f"COMPATIBLE_VERSION={number!r} is not a number")
        compatible = int(number)
        pos = nxt
        line, nxt = _line(data, pos)
    match = UUID_LINE.fullmatch(line or b"")
    if match is None:
        raise HeaderError(pos, "the line after the magic is not UUID=<lower-case uuid>")
    volume_uuid = match.group(1).decode()
    pos = nxt
    entries: list[Entry] = []
    problems: list[tuple[int, str]] = []
    while True:
        line, nxt = _line(data, pos)
        if line is None:
            problems.append((pos, "the metadata has no terminating line"))
            return Header(volume_uuid, compatible, entries, pos, b"", problems)
        if line.startswith(b"#"):
            pos = nxt
            continue
        if line.startswith(b"|") and entries:
            entries[-1].names.append(line[1:])
            entries[-1].link_offsets.append(pos)
            pos = nxt
            continue
        m = ENTRY.fullmatch(line)
        if m is None:
            return Header(volume_uuid, compatible, entries, nxt, line, problems)
        start, size = int(m.group(1)), int(m.group(2))
        mode = int(m.group(3), 8) if m.group(3) is not None else None
        mtime = int(m.group(4)) if m.group(4) is not None else None
        entries.append(Entry(start, size, mode, mtime, [m.group(5)], pos))
        pos = nxt


def _line(data: bytes, pos: int) -> tuple[bytes | None, int]:
    """The line at ``pos`` without its LF, and where the next starts; None without an LF."""
    end = data.find(b"\n", pos, pos + MAX_METADATA)
    if end < 0:
        return None, pos
    return data[pos:end], end + 1


# The ext2 superblock fields the label block fills (offsets within the 1024-byte block).
S_BLOCKS_COUNT, S_MAGIC, S_REV_LEVEL, S_UUID, S_VOLUME_NAME = 4, 56, 76, 104, 120
_U32 = struct.Struct("<I")
_MAGIC_STATE = struct.Struct("<HH")          # s_magic, s_state


def ext2_label_block(volume_uuid: str, label: str, size_bytes: int) -> bytes:
    """1024 bytes for offset 1024: an ext2 superblock that only identifies the volume (no
    inodes, so no kernel mounts it)."""
    sb = bytearray(1024)
    _U32.pack_into(sb, S_BLOCKS_COUNT, size_bytes // 1024)
    _MAGIC_STATE.pack_into(sb, S_MAGIC, EXT2_MAGIC, 1)        # clean
    _U32.pack_into(sb, S_REV_LEVEL, 1)                        # dynamic
    sb[S_UUID:S_UUID + 16] = uuidlib.UUID(volume_uuid).bytes
    name = label.encode("utf-8")[:LABEL_MAX]
    sb[S_VOLUME_NAME:S_VOLUME_NAME + len(name)] = name
    return bytes(sb)


def ext2_label(block: bytes) -> tuple[str, str] | None:
    """(label, uuid) of such a block, or None."""
    end = S_VOLUME_NAME + LABEL_MAX
    if len(block) < end or _MAGIC_STATE.unpack_from(block, S_MAGIC)[0] != EXT2_MAGIC:
        return None
    label = block[S_VOLUME_NAME:end].split(b"\0", 1)[0].decode("utf-8", "replace")
    return label, str(uuidlib.UUID(bytes=bytes(block[S_UUID:S_UUID + 16])))

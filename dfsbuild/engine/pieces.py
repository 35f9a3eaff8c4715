"""How the cache cuts an output into pieces that survive edits, and puts it back together.

An image is mostly its files' data, each copied whole by the writer at an offset the Sink
notes with the file's content id (its extents). An edit of one file moves every later file when
its size changes, so pieces at fixed offsets would all change; pieces that follow the image's
own structure do not:

- a **group** holds the data of consecutive files, each whole, after a header line listing
  every member's size and content id (its git blob id, trees/digest.py). Its id is the
  sha256 of that header: the same files in the
  same order make the same group wherever the image puts them. A group ends after a file of
  n bytes when the file's digest, read as a fraction, is below n / 64 KiB (so groups hold
  64 KiB on average whatever the files' sizes), or once it holds 4 MiB: boundaries depend
  on the files alone, and one edited file makes one or two new groups.
- **rest** pieces hold everything else that is data (headers, tables, names, padding),
  concatenated in the output's order and cut every 1 MiB; a rest piece's id is its sha256.
  Rest is small for an image with extents; an output without them is all rest.
- **holes** (where the output file has no data, as SEEK_HOLE reports: the long zero runs
  the Sink left) are not stored: they read as zeros.

Putting an output back checks every piece as it is read: a group's header against its id,
each member against its content id, each rest piece against its id. A mismatch raises BadPiece.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dfsbuild.errors import InternalError
from dfsbuild.fileio.copy import BUFFER, data_extents
from dfsbuild.fileio.sink import Extent
from dfsbuild.trees.digest import blob_hasher

GROUP_TARGET = 64 << 10        # a group's mean size
GROUP_MAX = 4 << 20
REST_PIECE = 1 << 20
HEADER_MAX = 64 << 20          # a group header is read whole; no sane group comes near this
_HEX = frozenset("0123456789abcdef")
_CONTENT_ID = re.compile("[0-9a-f]{40}")

Span = tuple[int, int]          # (offset, size)


class BadPiece(Exception):
    """A piece whose bytes are not what its id or its entry says (the message says how)."""


@dataclass(frozen=True, slots=True)
class Group:
    """Whole files' data stored together: each member's (size, content id), in order, and where
    each one lies in the output."""

    members: tuple[tuple[int, str], ...]
    offsets: tuple[int, ...]

    @property
    def header(self) -> bytes:
        # JSON, written out by hand (json.dumps per group is most of a store's time)
        return ("[" + ",".join(f'[{n},"{d}"]' for n, d in self.members) + "]\n").encode()

    @property
    def id(self) -> str:
        return hashlib.sha256(self.header).hexdigest()


@dataclass(frozen=True, slots=True)
class Cut:
    """An output cut into pieces: its groups, its holes, and the spans of the rest."""

    groups: list[Group]
    holes: list[Span]
    rest: list[Span]


def is_digest(text: object) -> bool:
    """A SHA-256 in hex: a key, a piece's id."""
    return isinstance(text, str) and len(text) == 64 and set(text) <= _HEX


def is_content_id(text: object) -> bool:
    """A file's content id (its git blob id, hex SHA-1; trees/digest.py)."""
    return isinstance(text, str) and _CONTENT_ID.fullmatch(text) is not None


def file_extents(extents: Sequence[Extent] | None, size: int) -> list[Extent]:
    """The extents of files' data (a content id for what), in order; none when ``extents``
    overlap or pass ``size`` (not a writer's extents: trust none of them)."""
    files: list[Extent] = []
    end = 0
    for at, n, what in sorted(extents or ()):
        if n <= 0:
            continue
        if at < end or at + n > size:
            return []
        end = at + n
        if is_content_id(what):
            files.append((at, n, what))
    return files


def cut(fd: int, size: int, extents: Sequence[Extent] | None) -> Cut:
    """Cut the first ``size`` bytes of ``fd`` by the writer's ``extents`` (none: all rest).
    Holes are the file's own (SEEK_HOLE): a zero run the writer noted is taken as one only
    where the file really has no data."""
    files = file_extents(extents, size)
    groups = groups_of(files)
    spans = [(at, n) for at, n, _ in files]
    rest = _data_only(fd, size, _complement(spans, size))
    return Cut(groups, _complement(sorted(spans + rest), size), rest)


def groups_of(files: list[Extent]) -> list[Group]:
    """The files cut into groups (boundaries from the files alone; see above)."""
    out: list[Group] = []
    members: list[tuple[int, str]] = []
    offsets: list[int] = []
    held = 0

    def close() -> None:
        nonlocal held
        if members:
            out.append(Group(tuple(members), tuple(offsets)))
        members.clear()
        offsets.clear()
        held = 0

    for at, n, digest in files:
        if members and held + n > GROUP_MAX:
            close()
        members.append((n, digest))
        offsets.append(at)
        held += n
        if int(digest[:8], 16) * GROUP_TARGET < n << 32 or held >= GROUP_MAX:
            close()
    close()
    return out


def _complement(spans: list[Span], size: int) -> list[Span]:
    """The parts of ``[0, size)`` that the sorted, disjoint ``spans`` leave uncovered."""
    out: list[Span] = []
    pos = 0
    for at, n in spans:
        if at > pos:
            out.append((pos, at - pos))
        pos = at + n
    if pos < size:
        out.append((pos, size - pos))
    return out


def _data_only(fd: int, size: int, gaps: list[Span]) -> list[Span]:
    """The parts of ``gaps`` the file holds data for (its holes read as zeros)."""
    data = list(data_extents(fd, size))
    if data == [(0, size)]:
        return gaps
    out: list[Span] = []
    i = 0
    for at, n in gaps:
        stop = at + n
        while i < len(data) and data[i][1] <= at:
            i += 1
        j = i
        while j < len(data) and data[j][0] < stop:
            lo, hi = max(at, data[j][0]), min(stop, data[j][1])
            if hi > lo:
                out.append((lo, hi - lo))
            j += 1
    return out


def rest_pieces(fd: int, spans: list[Span]) -> Iterator[bytes]:
    """The rest's bytes, read from ``fd`` and cut every REST_PIECE bytes."""
    buf = bytearray()
    for at, n in spans:
        while n > 0:
            want = min(n, REST_PIECE - len(buf))
            data = os.pread(fd, want, at)
            if len(data) != want:
                raise InternalError(f"output shorter than its pieces at {at}")
            buf += data
            at += want
            n -= want
            if len(buf) == REST_PIECE:
                yield bytes(buf)
                buf.clear()
    if buf:
        yield bytes(buf)


def write_group(group: Group, src: int, dst: int) -> None:
    """The group's piece into the empty file ``dst``, its members read from the output
    ``src``, each checked against its content id (an output that is not its extents says so)."""
    header = group.header
    os.write(dst, header)
    pos = len(header)
    for (n, digest), at in zip(group.members, group.offsets, strict=True):
        if _copy_hashing(src, at, dst, pos, n) != digest:
            raise InternalError(f"output bytes at {at} are not the file its extent names")
        pos += n


def _copy_hashing(src: int, src_at: int, dst: int, dst_at: int, n: int) -> str | None:
    """Copy ``n`` bytes; their content id, or None when ``src`` ends first."""
    h = blob_hasher(n)
    done = 0
    while done < n:
        data = os.pread(src, min(n - done, BUFFER), src_at + done)
        if not data:
            return None
        h.update(data)
        os.pwrite(dst, data, dst_at + done)
        done += len(data)
    return h.hexdigest()


def read_group(piece: int, gid: str, offsets: Sequence[int], dst: int,
               size: int) -> list[Extent]:
    """Put the group stored in ``piece`` (whose id should be ``gid``) at ``offsets`` of
    ``dst`` (``size`` bytes long), checking its header and every member; the extents of the
    files it put there."""
    header = _header(piece)
    if hashlib.sha256(header).hexdigest() != gid:
        raise BadPiece(f"group {gid[:16]}: its header is not its id")
    try:
        members = json.loads(header)
        ok = isinstance(members, list) and len(members) == len(offsets) and all(
            isinstance(m, list) and len(m) == 2 and isinstance(m[0], int) and m[0] > 0
            and is_content_id(m[1]) for m in members)
    except ValueError:
        ok = False
    if not ok:
        raise BadPiece(f"group {gid[:16]}: its header does not list its {len(offsets)} files")
    pos = len(header)
    placed: list[Extent] = []
    for (n, digest), at in zip(members, offsets, strict=True):
        if at < 0 or at + n > size:
            raise BadPiece(f"group {gid[:16]}: a file at {at} passes the end of the output")
        found = _copy_hashing(piece, pos, dst, at, n)
        if found is None:
            raise BadPiece(f"group {gid[:16]}: shorter than its files")
        if found != digest:
            raise BadPiece(f"group {gid[:16]}: a file's data is not its content id")
        pos += n
        placed.append((at, n, digest))
    if os.pread(piece, 1, pos):
        raise BadPiece(f"group {gid[:16]}: longer than its files")
    return placed


def _header(piece: int) -> bytes:
    buf = bytearray()
    while len(buf) < HEADER_MAX:
        data = os.pread(piece, 1 << 16, len(buf))
        if not data:
            break
        nl = data.find(b"\n")
        if nl >= 0:
            return bytes(buf + data[:nl + 1])
        buf += data
    raise BadPiece("a group piece without a header line")


def rest_spans(placed: list[Extent], holes: Sequence[Span], size: int) -> list[Span]:
    """Where the rest goes: what the groups' files (``placed``) and the holes leave of
    ``[0, size)``. BadPiece when they overlap or pass the end."""
    spans = sorted([*((at, n) for at, n, _ in placed), *holes])
    pos = 0
    for at, n in spans:
        if at < pos or n < 0 or at + n > size:
            raise BadPiece("the entry's pieces overlap or pass the end of the output")
        pos = at + n
    return _complement(spans, size)

"""The design's tools on volumes: find a volume by UUID, find a file, read it, overwrite it in
place (never a byte outside its range), explode a volume into a directory."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import BinaryIO

from dfsbuild.errors import DfsbuildError, InputError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.trivialfs.read import TrivialReader
from dfsbuild.images.trivialfs.records import HeaderError, parse_header

CHUNK = 1 << 20
_DECIMAL = re.compile(r"[0-9]+")
MAX_MTIME = 253402300799        # 9999-12-31 23:59:59 UTC: what explode sets (both tools)


class ToolError(DfsbuildError):
    pass


def volume_uuid(path: str) -> str | None:
    """The UUID of the TrivialFS at the start of ``path`` (None when it is not one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    try:
        return parse_header(head).uuid
    except HeaderError:
        return None


def block_devices(loops: bool, nbd: bool) -> list[str]:
    """Every block device and partition the kernel lists, loop and NBD devices on request."""
    out = []
    try:
        disks = sorted(os.listdir("/sys/block"))
    except OSError:
        return []
    for disk in disks:
        if disk.startswith("ram") or (disk.startswith("loop") and not loops) or (
                disk.startswith("nbd") and not nbd):
            continue
        out.append(f"/dev/{disk}")
        try:
            parts = sorted(p for p in os.listdir(f"/sys/block/{disk}") if p.startswith(disk))
        except OSError:
            parts = []
        out.extend(f"/dev/{p}" for p in parts)
    return out


def find_volume(wanted: str, candidates: Iterable[str]) -> str:
    matches = [c for c in candidates if volume_uuid(c) == wanted.lower()]
    if not matches:
        raise ToolError(f"no TrivialFS volume with UUID {wanted.lower()}")
    if len(matches) > 1:
        raise ToolError(f"UUID {wanted.lower()} is on {len(matches)} volumes: "
                        + ", ".join(matches), "a cloned card? name the volume instead")
    return matches[0]


def _open(volume: str, write: bool = False) -> BinaryIO:
    try:
        return open(volume, "r+b" if write else "rb")
    except OSError as exc:
        raise InputError(f"{volume}: cannot open: {exc.strerror}") from None


def locate(volume: str, name: bytes) -> tuple[int, int]:
    """(start, size) of the first entry naming ``name``."""
    with _open(volume) as f:
        entry = TrivialReader(ByteSource(f)).lookup_name(name)
    if entry is None:
        raise ToolError(f"{volume}: no file {name.decode('utf-8', 'replace')!r}")
    return entry.start, entry.size


def _check_range(volume: str, start: int, size: int, end: int) -> None:
    """The bound both tools keep, with the words the sh tools print."""
    if start < 0 or size < 0 or start + size > end:
        raise ToolError(f"{size} bytes at {start} pass the end of {volume} ({end} bytes)")


def read_range(volume: str, start: int, size: int, out: BinaryIO) -> None:
    with _open(volume) as f:
        src = ByteSource(f)
        _check_range(volume, start, size, src.size)
        for pos in range(start, start + size, CHUNK):
            out.write(src.read(pos, min(CHUNK, start + size - pos)))


def write_range(volume: str, start: int, size: int, data: BinaryIO) -> int:
    """Overwrite the start of ``[start, start + size)`` with at most ``size`` bytes of
    ``data``; the bytes written."""
    with _open(volume, write=True) as f:
        _check_range(volume, start, size, f.seek(0, os.SEEK_END))
        done = 0
        while done < size:
            chunk = data.read(min(CHUNK, size - done))
            if not chunk:
                break
            chunk = chunk[:size - done]
            os.pwrite(f.fileno(), chunk, start + done)
            done += len(chunk)
        os.fsync(f.fileno())
    return done


def parse_location(words: list[str]) -> tuple[int, int, str]:
    """``START SIZE VOLUME`` as ``trivialfs_file`` prints it; the numbers in ASCII digits
    only, as the sh tools take them (``str.isdigit`` would also take ``²`` and ``٤٠٩٦``)."""
    if len(words) < 3 or not all(_DECIMAL.fullmatch(w) for w in words[:2]):
        raise ToolError(f"bad location: expected START SIZE VOLUME, found "
                        f"{' '.join(words)!r}")
    return int(words[0]), int(words[1]), " ".join(words[2:])

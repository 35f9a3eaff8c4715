"""FAT names: which long names a FAT driver accepts, when a name fits 8.3 (with the NT case
bits Windows and Linux write), and the deterministic ``~N`` short names for the others."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dfsbuild.images.fat.records import CASE_LOWER_BASE, CASE_LOWER_EXT

MAX_LONG = 255                     # UTF-16 code units
_REFUSED = re.compile(r'[\x00-\x1f\x7f"*/:<>?\\|]')
SHORT_SPECIAL = set("!#$%&'()-@^_`{}~")


@dataclass(frozen=True, slots=True)
class FatName:
    long: str                      # the name as stored in long-name entries ("" if none)
    short: bytes                   # 11 bytes
    case: int                      # NT case bits


def name_problem(name: str) -> str | None:
    """Why a FAT driver would refuse ``name`` (None if it is fine)."""
    if name in ("", ".", ".."):
        return "is not a file name"
    try:
        units = len(name.encode("utf-16-le")) // 2
    except UnicodeEncodeError:
        return "is not valid Unicode (the host name is not UTF-8)"
    if units > MAX_LONG:
        return f"is {units} UTF-16 units long; FAT names hold at most {MAX_LONG}"
    if _REFUSED.search(name):
        bad = sorted(set(_REFUSED.findall(name)))
        shown = ", ".join(repr(c) for c in bad)
        return f"holds {shown}, which FAT names cannot hold"
    if name[-1] in ". ":
        return "ends in a dot or a space, which FAT drivers strip"
    return None


def _short_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in SHORT_SPECIAL)


def fits_short(name: str) -> FatName | None:
    """The 8.3 form of ``name`` when it needs no long-name entries."""
    base, dot, ext = name.partition(".")
    if not base or len(base) > 8 or len(ext) > 3 or "." in ext or (dot and not ext):
        return None
    if not all(_short_char(c) for c in base + ext):
        return None
    case = 0
    for part, bit in ((base, CASE_LOWER_BASE), (ext, CASE_LOWER_EXT)):
        letters = [c for c in part if c.isalpha()]
        if letters and all(c.islower() for c in letters):
            case |= bit
        elif letters and not all(c.isupper() for c in letters):
            return None                   # mixed case needs a long name
    short = base.upper().ljust(8).encode("ascii") + ext.upper().ljust(3).encode("ascii")
    if short[0] == 0xE5:
        return None
    return FatName("", short, case)


_NOT_SHORT = re.compile(r"[^A-Z0-9!#$%&'()\-@^_`{}~]")


def _basis(name: str) -> tuple[str, str]:
    """The upper-case, lossy basis of a short name: (base, ext)."""
    stripped = name.lstrip(".")
    base, dot, ext = stripped.rpartition(".")
    if not dot:
        base, ext = stripped, ""

    def clean(s: str) -> str:
        kept = s.replace(" ", "").replace(".", "")
        if not kept.isascii():
            kept = "".join(c if c.isascii() else "_" for c in kept)
        return _NOT_SHORT.sub("_", kept.upper())
    return clean(base)[:8] or "_", clean(ext)[:3]


class ShortNames:
    """Short names of one directory: hands out unique ``BASE~N.EXT`` names in order,
    avoiding every short name already in ``used``."""

    def __init__(self, used: set[bytes] | None = None) -> None:
        self.used: set[bytes] = set(used or ())
        self.next: dict[tuple[str, str], int] = {}    # first N worth trying, per basis

    def generate(self, name: str) -> FatName:
        """A long name with a fresh ``~N`` short name."""
        base, ext = _basis(name)
        start = self.next.get((base, ext), 1)
        for n in range(start, 1_000_000):
            tail = f"~{n}"
            short = ((base[:8 - len(tail)] + tail).ljust(8) + ext.ljust(3)).encode("ascii")
            if short not in self.used:
                self.used.add(short)
                self.next[(base, ext)] = n + 1
                return FatName(name, short, 0)
        raise ValueError(f"{name!r}: no free short name")


def display_short(short: bytes, case: int) -> str:
    """The name a short entry stands for (NT case bits applied; OEM code page 850)."""
    raw = (b"\xe5" + short[1:]) if short[0] == 0x05 else short
    base = raw[:8].rstrip(b" ").decode("cp850")
    ext = raw[8:11].rstrip(b" ").decode("cp850")
    if case & CASE_LOWER_BASE:
        base = base.lower()
    if case & CASE_LOWER_EXT:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def fold(name: str) -> str:
    """The form two names are compared in (FAT names are case-insensitive)."""
    return name.upper()

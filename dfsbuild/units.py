"""Sizes: parsing of size strings, alignment, human-readable output. Never rounds silently."""

from __future__ import annotations

import re

UNITS = {
    "": 1,
    "B": 1,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
}

_SIZE = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")


class SizeError(ValueError):
    """A size value that cannot be parsed; the caller adds the file and key."""


def parse_size(value: object, *, sector_size: int | None = None) -> int:
    """Parse ``value`` as a size in bytes.

    Accepted: a non-negative integer (bytes), ``"512"``, ``"4KiB"``, ``"64MiB"``, ``"1GiB"``,
    ``"2TiB"`` and, when ``sector_size`` is given, ``"2048s"`` (sectors). Decimal units (kB, MB)
    and fractions are refused rather than guessed.
    """
    if isinstance(value, bool):
        raise SizeError(f"expected a size, found the boolean {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise SizeError(f"a size cannot be negative, found {value}")
        return value
    if not isinstance(value, str):
        raise SizeError(f"expected a size string such as \"4KiB\", found {type(value).__name__}")
    match = _SIZE.match(value)
    if not match:
        raise SizeError(
            f"{value!r} is not a size: use an integer with an optional unit "
            "B, KiB, MiB, GiB, TiB or s (sectors)"
        )
    number, unit = int(match.group(1)), match.group(2)
    if unit == "s":
        if sector_size is None:
            raise SizeError(f"{value!r}: a sector count is not allowed here")
        return number * sector_size
    if unit not in UNITS:
        hint = ""
        if unit.upper() in ("K", "KB", "M", "MB", "G", "GB", "T", "TB"):
            hint = f" (binary units only: did you mean {number}{unit[0].upper()}iB?)"
        raise SizeError(f"{value!r}: unknown unit {unit!r}{hint}")
    return number * UNITS[unit]


def align_up(value: int, alignment: int) -> int:
    """Smallest multiple of ``alignment`` that is >= ``value``."""
    return -(-value // alignment) * alignment


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def format_size(size_bytes: int) -> str:
    """Exact when the size is a whole number of a binary unit, else bytes."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = UNITS[unit]
        if size_bytes >= factor and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return f"{size_bytes}B"

"""The file that records where an output holds which content (state.py's ``.extents``).

A data patch reads it and writes it again on every edit, for every file of the image, so it is
stored by column and mostly as raw numbers: one JSON line (format, the output's key, the
count, the text's length), the offsets and the sizes as little-endian 64-bit integers, then
the contents and the names (a file's path in the image, or nothing), joined by NUL, which
neither a content id nor a path holds. Ten thousand extents read in about a millisecond.
"""

from __future__ import annotations

import json
import sys
from array import array

FORMAT = "dfsbuild-extents 2"

Extent = tuple[int, int, str]


def encode(key: str, extents: list[Extent], names: dict[int, str]) -> bytes:
    at = array("q", [e[0] for e in extents])
    size = array("q", [e[1] for e in extents])
    if sys.byteorder != "little":
        at.byteswap()
        size.byteswap()
    texts = [e[2] for e in extents] + [names.get(e[0], "") for e in extents]
    text = "\0".join(texts).encode("utf-8", "surrogateescape")
    head = json.dumps({"format": FORMAT, "key": key, "count": len(extents), "text": len(text)})
    return b"".join((head.encode(), b"\n", at.tobytes(), size.tobytes(), text))


def decode(data: bytes, key: str) -> tuple[list[int], list[int], list[str], list[str]] | None:
    """(offsets, sizes, contents, names) recorded for ``key``; None when the file is of
    another key, another format or damaged."""
    end = data.find(b"\n")
    try:
        head = json.loads(data[:end])
    except ValueError:
        return None
    if end < 0 or not isinstance(head, dict) or head.get("format") != FORMAT \
            or head.get("key") != key or type(head.get("count")) is not int \
            or type(head.get("text")) is not int:
        return None
    count = head["count"]
    body = end + 1 + 16 * count
    if len(data) != body + head["text"]:
        return None
    at, size = array("q"), array("q")
    at.frombytes(data[end + 1:end + 1 + 8 * count])
    size.frombytes(data[end + 1 + 8 * count:body])
    if sys.byteorder != "little":
        at.byteswap()
        size.byteswap()
    texts = data[body:].decode("utf-8", "surrogateescape").split("\0") if count else []
    if len(texts) != 2 * count:
        return None
    return at.tolist(), size.tolist(), texts[:count], texts[count:]

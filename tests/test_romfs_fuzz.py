"""The romfs reader on damaged bytes: only FormatError, never a hang or another exception."""

from __future__ import annotations

import contextlib
import io
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.errors import FormatError
from dfsbuild.images.romfs.records import fix_checksum
from dfsbuild.inspect.extract import extract
from dfsbuild.inspect.render import fs_report
from tests.conftest import read_romfs
from tests.test_romfs_vectors import DEMO


def exercise(data: bytes) -> None:
    """Everything a user can ask of an image; FormatError is the only allowed failure."""
    try:
        reader = read_romfs(io.BytesIO(data))
        fs_report(reader)
        for e in reader.walk():
            target = reader.resolve(e)
            if target.kind in ("file", "symlink"):
                reader.read(target)
    except FormatError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(DEMO) - 1), st.integers(0, 255)), max_size=12),
       st.integers(0, len(DEMO)))
def test_mutated_images_raise_only_format_error(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(DEMO)
    for offset, value in edits:
        data[offset] = value
    exercise(bytes(data[:cut]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x12C // 4), st.integers(0, 0xFFFFFFFF)), max_size=6))
def test_mutated_words_raise_only_format_error(edits: list[tuple[int, int]]) -> None:
    """Whole-word edits reach offsets, sizes and types that byte flips rarely produce."""
    data = bytearray(DEMO)
    for index, value in edits:
        struct.pack_into(">I", data, index * 4, value)
    exercise(bytes(data))


def _set_word(data: bytearray, offset: int, value: int) -> None:
    struct.pack_into(">I", data, offset, value)
    start = offset & ~15
    block = fix_checksum(bytes(data[start:start + 32]), 12)
    data[start:start + 32] = block


def test_next_chain_loop_is_reported() -> None:
    data = bytearray(DEMO)
    _set_word(data, 0xD0, 0x60 | 9)   # "sub" -> next = run.sh: a loop in the root list
    reader = read_romfs(io.BytesIO(bytes(data)))
    try:
        list(reader.walk())
    except FormatError as exc:
        assert "loops" in exc.message and exc.offset == 0x60
    else:
        raise AssertionError("a looping next chain was accepted")


def test_directory_containing_itself_is_reported() -> None:
    data = bytearray(DEMO)
    _set_word(data, 0xD4, 0x20)        # "sub" spec -> the root list
    reader = read_romfs(io.BytesIO(bytes(data)))
    try:
        list(reader.walk())
    except FormatError as exc:
        assert "contains itself" in exc.message
    else:
        raise AssertionError("a directory cycle was accepted")


def test_hard_link_loop_is_reported() -> None:
    data = bytearray(DEMO)
    _set_word(data, 0xF4, 0x110)       # sub/. -> hard link to sub/..
    _set_word(data, 0x114, 0xF0)       # sub/.. -> hard link to sub/.
    reader = read_romfs(io.BytesIO(bytes(data)))
    try:
        reader.resolve(reader.entry_at(0xF0))
    except FormatError as exc:
        assert "loop" in exc.message
    else:
        raise AssertionError("a hard link loop was accepted")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0x20, 0x130 - 1), st.integers(0, 255)),
                max_size=8))
def test_extracting_damaged_images_stays_inside(edits: list[tuple[int, int]]) -> None:
    import tempfile
    from pathlib import Path

    from dfsbuild.errors import ExtractError

    data = bytearray(DEMO)
    for offset, value in edits:
        data[offset] = value
    with tempfile.TemporaryDirectory() as d:
        dest = Path(d) / "out"
        with contextlib.suppress(FormatError, ExtractError):
            extract(read_romfs(io.BytesIO(bytes(data))), str(dest))
        assert [p.name for p in Path(d).iterdir()] in ([], ["out"])

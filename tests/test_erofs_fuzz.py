"""The EROFS and dm-verity readers on damaged bytes: only FormatError, never another
exception or a hang; extracting a damaged image writes nothing outside its destination."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.errors import ExtractError, FormatError
from dfsbuild.fileio.sink import Sink
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.erofs.read import ErofsReader
from dfsbuild.images.erofs.write import plan_erofs, write_erofs
from dfsbuild.images.verity.handler import VerityReader
from dfsbuild.images.verity.records import VeritySuperblock
from dfsbuild.inspect.extract import extract
from dfsbuild.inspect.render import fs_report
from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.fstree import TreeBuilder
from dfsbuild.trees.walk import scan_tree


def _demo() -> bytes:
    """A small EROFS: inline and block files, a tail-packed one, a symlink, nested dirs."""
    with tempfile.TemporaryDirectory() as d:
        tree = Path(d) / "tree"
        (tree / "sub" / "deeper").mkdir(parents=True)
        (tree / "a.txt").write_bytes(b"a" * 100)
        (tree / "sub" / "b.bin").write_bytes(bytes(range(256)) * 20)     # 5120: tail-packed
        (tree / "sub" / "deeper" / "c").write_bytes(b"c" * 4096)
        os.symlink("../a.txt", tree / "sub" / "link")
        builder = TreeBuilder()
        builder.add_scan(scan_tree(str(tree), (), DigestCache(None)))
        plan = plan_erofs(builder.finish(), bytes(range(16)), b"demo", 0, ("t", "image.t"),
                          True)
        out = Path(d) / "demo.img"
        fd = os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            sink = Sink(fd, 0, plan.image_size)
            write_erofs(plan, sink)
            sink.close()
        finally:
            os.close(fd)
        return out.read_bytes()


DEMO = _demo()
METADATA = 1024 + 4096        # the superblock and the first inodes: where damage matters most


def exercise(data: bytes) -> None:
    """Everything a user can ask of an image; FormatError is the only allowed failure."""
    try:
        reader = ErofsReader(ByteSource(io.BytesIO(data)))
        fs_report(reader)
        for e in reader.walk():
            target = reader.resolve(e)
            if target.kind in ("file", "symlink"):
                b"".join(reader.data(target))
                reader.extents(target)
    except FormatError:
        pass


def test_the_demo_reads_back() -> None:
    """The undamaged image is read whole (the damage tests start from a good one)."""
    reader = ErofsReader(ByteSource(io.BytesIO(DEMO)))
    files = {e.path: b"".join(reader.data(e)) for e in reader.walk() if e.kind == "file"}
    assert files["sub/b.bin"] == bytes(range(256)) * 20 and files["a.txt"] == b"a" * 100
    assert files["sub/deeper/c"] == b"c" * 4096


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1024, METADATA - 1), st.integers(0, 255)), max_size=12),
       st.integers(0, len(DEMO)))
def test_mutated_images_raise_only_format_error(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(DEMO)
    for offset, value in edits:
        data[offset] = value
    exercise(bytes(data[:cut]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1024 // 4, METADATA // 4 - 1),
                          st.integers(0, 0xFFFFFFFF)), max_size=6))
def test_mutated_words_raise_only_format_error(edits: list[tuple[int, int]]) -> None:
    """Whole-word edits reach block addresses, sizes and NIDs that byte flips rarely do."""
    data = bytearray(DEMO)
    for index, value in edits:
        struct.pack_into("<I", data, index * 4, value)
    exercise(bytes(data))


def test_a_directory_holding_itself_is_reported() -> None:
    """The root's entry for "sub" names the root's own NID: a loop, refused by name."""
    reader = ErofsReader(ByteSource(io.BytesIO(DEMO)))
    root = reader.root()
    sub = next(e for e in reader.children(root) if e.name == "sub")
    data = bytearray(DEMO)
    nid = struct.pack("<Q", sub.ident)
    at = data.index(nid, reader.meta + root.ident * 32)      # its dirent in the root's block
    data[at:at + 8] = struct.pack("<Q", root.ident)
    damaged = ErofsReader(ByteSource(io.BytesIO(bytes(data))))
    try:
        list(damaged.walk())
    except FormatError as exc:
        assert "contains itself" in str(exc)
    else:
        raise AssertionError("a directory holding itself was walked")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1024, METADATA - 1), st.integers(0, 255)), max_size=8))
def test_extracting_damaged_images_stays_inside(edits: list[tuple[int, int]]) -> None:
    data = bytearray(DEMO)
    for offset, value in edits:
        data[offset] = value
    with tempfile.TemporaryDirectory() as d:
        dest = Path(d) / "out"
        with contextlib.suppress(FormatError, ExtractError):
            extract(ErofsReader(ByteSource(io.BytesIO(bytes(data)))), str(dest))
        assert [p.name for p in Path(d).iterdir()] in ([], ["out"])


VERITY = VeritySuperblock(bytes(16), "sha256", 4096, 4096, 300, bytes(32)).pack() + \
    bytes(4096 - 512) + bytes(3 * 4096)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), max_size=10),
       st.integers(0, len(VERITY)))
def test_a_damaged_hash_device_raises_only_format_error(edits: list[tuple[int, int]],
                                                         cut: int) -> None:
    data = bytearray(VERITY)
    for offset, value in edits:
        data[offset] = value
    try:
        reader = VerityReader(ByteSource(io.BytesIO(bytes(data[:cut]))))
        fs_report(reader)
        reader.identity()
    except FormatError:
        pass

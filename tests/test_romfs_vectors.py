"""romfs against bytes written by hand: formats.md §1.5 and checksums computed on paper."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dfsbuild.errors import CapacityError, FormatError
from dfsbuild.images.romfs.write import plan_romfs
from dfsbuild.trees.fstree import FsNode, TreeBuilder
from tests.conftest import read_romfs, write_romfs

# genromfs -V demo of run.sh (0755, "#!/bin/sh\necho hi\n"), link -> run.sh, sub/ in the host
# order run.sh, link, sub (formats.md §1.5, transcribed from its hex dump).
DEMO = bytes.fromhex(
    "2d726f6d3166732d0000013090d15bf9"
    "64656d6f000000000000000000000000"
    "000000490000002000000000d1ffff97"
    "2e000000000000000000000000000000"
    "000000600000002000000000d1d1ff80"
    "2e2e0000000000000000000000000000"
    "000000aa00000000000000121a229116"
    "72756e2e736800000000000000000000"
    "23212f62696e2f73680a6563686f2068"
    "690a0000000000000000000000000000"
    "000000d30000000000000006939690bc"
    "6c696e6b000000000000000000000000"
    "72756e2e736800000000000000000000"
    "00000009000000f0000000008c8a9d07"
    "73756200000000000000000000000000"
    "00000110000000d000000000d1fffe20"
    "2e000000000000000000000000000000"
    "000000000000002000000000d1d1ffe0"
    "2e2e0000000000000000000000000000"
) + bytes(1024 - 0x130)

# An empty root, volume "v": superblock, "." and "..". Checksums worked out by hand:
# "."  words 0x49 + 0x20 + 0x2e000000            -> 0xd1ffff97
# ".." words 0x20 + 0x2e2e0000                   -> 0xd1d1ffe0
# superblock 0x2d726f6d + 0x3166732d + 0x60 + 0x76000000 (headers sum to 0) -> 0x2b271d06
EMPTY_V = bytes.fromhex(
    "2d726f6d3166732d000000602b271d06"
    "76000000000000000000000000000000"
    "000000490000002000000000d1ffff97"
    "2e000000000000000000000000000000"
    "000000000000002000000000d1d1ffe0"
    "2e2e0000000000000000000000000000"
) + bytes(1024 - 0x60)


def test_reader_on_the_documented_demo_image() -> None:
    reader = read_romfs(io.BytesIO(DEMO))
    assert reader.volume == "demo"
    assert reader.full_size == 0x130
    assert reader.problems() == []
    listing = [(e.path, e.kind, e.mode, e.ident) for e in reader.walk()]
    assert listing == [
        ("run.sh", "file", 0o755, 0x60),
        ("link", "symlink", 0o777, 0xA0),
        ("sub", "dir", 0o755, 0xD0),
    ]
    assert reader.read(reader.lookup("run.sh")) == b"#!/bin/sh\necho hi\n"
    assert reader.read(reader.lookup("link")) == b"run.sh"
    assert reader.children(reader.lookup("sub")) == []


def test_writer_on_a_hand_computed_empty_image(tmp_path: Path) -> None:
    out = tmp_path / "e.img"
    write_romfs(str(out), TreeBuilder().finish(), "v", 16, ("t", ""))
    assert out.read_bytes() == EMPTY_V


def test_reader_reports_a_bad_header_checksum_with_its_offset() -> None:
    bad = bytearray(DEMO)
    bad[0x6F] ^= 1  # run.sh header checksum; it lies in the superblock's span too
    problems = read_romfs(io.BytesIO(bytes(bad))).problems()
    assert [(p.offset, "run.sh" in p.message) for p in problems] == [(12, False), (0x6C, True)]


def test_reader_reports_a_bad_superblock_checksum() -> None:
    bad = bytearray(DEMO)
    bad[0x85] ^= 0x20  # file data inside the first 512 bytes is covered too
    problems = read_romfs(io.BytesIO(bytes(bad))).problems()
    assert [p.offset for p in problems] == [12]


def _node(tree: TreeBuilder, path: str, kind: str = "file", **kw: object) -> None:
    tree.put(FsNode(path.rsplit("/", 1)[-1], path, kind, 0o644, **kw))  # type: ignore[arg-type]


def test_names_over_127_bytes_are_refused() -> None:
    tree = TreeBuilder()
    _node(tree, "é" * 64)  # 128 bytes of UTF-8
    with pytest.raises(CapacityError, match="128 bytes"):
        plan_romfs(tree.finish(), "v")
    ok = TreeBuilder()
    _node(ok, "n" * 127)
    plan_romfs(ok.finish(), "v")


def test_volume_over_127_bytes_is_refused() -> None:
    with pytest.raises(CapacityError, match="volume"):
        plan_romfs(TreeBuilder().finish(), "v" * 128)


def test_files_over_4_gib_are_refused() -> None:
    tree = TreeBuilder()
    _node(tree, "big", size_bytes=1 << 32, source="/nonexistent")
    with pytest.raises(CapacityError, match="at most 4294967295"):
        plan_romfs(tree.finish(), "v")


def test_images_over_4_gib_are_refused() -> None:
    tree = TreeBuilder()
    for i in range(3):
        _node(tree, f"f{i}", size_bytes=(1 << 31) - 4096, source="/nonexistent")
    with pytest.raises(CapacityError, match="the image needs"):
        plan_romfs(tree.finish(), "v")


@pytest.mark.parametrize("cut", [0, 8, 15, 40, 0x6A, 0x12F])
def test_truncated_images_raise_format_error(cut: int) -> None:
    with pytest.raises(FormatError):
        reader = read_romfs(io.BytesIO(DEMO[:cut]))
        list(reader.walk())

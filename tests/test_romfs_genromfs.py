"""romfs output compared byte for byte with genromfs, and genromfs images read back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.fstree import TreeBuilder
from dfsbuild.trees.walk import scan_tree
from tests.conftest import need_tool, read_romfs, write_romfs
from tests.treemaker import Item, make_tree

LONG = "L" * 127

RICH_TREE = [
    Item("bin", "dir", mode=0o755),
    Item("bin/init", data=b"#!/bin/sh\nexec /bin/sh\n", mode=0o755),
    Item("bin/tool", data=b"\x7fELF" + bytes(range(256)) * 40, mode=0o750),
    Item("bin/sh", "symlink", target="busybox"),
    Item("bin/busybox", data=b"B" * 4097, mode=0o4755),
    Item("etc", "dir", mode=0o755),
    Item("etc/empty", data=b""),
    Item("etc/exact16", data=b"0123456789abcdef"),
    Item("etc/hosts", data=b"127.0.0.1 localhost\n", target="hosts"),
    Item("etc/link-to-long", "symlink", target="x" * 16),   # target of 16: no NUL stored
    Item("etc/deep", "dir", mode=0o700),
    Item("etc/deep/er", "dir", mode=0o755),
    Item("etc/deep/er/file", data=b"deep\n", mode=0o610),   # any exec bit -> exec flag
    Item("var", "dir", mode=0o755),
    Item("var/hosts.hardlink", data=b"127.0.0.1 localhost\n", target="hosts"),
    Item("var/empty-dir", "dir", mode=0o755),
    Item(LONG, data=b"long name\n"),
    Item("Z-upper", data=b"sorted before lower case\n"),
    Item("fifo", "fifo"),
]


def genromfs(src: Path, out: Path, *args: str) -> bytes:
    tool = need_tool("genromfs")
    subprocess.run([tool, "-f", str(out), "-d", str(src), *args], check=True,
                   capture_output=True)
    return out.read_bytes()


def ours(src: Path, out: Path, volume: str, align: int = 16,
         exclude: tuple[str, ...] = ()) -> bytes:
    builder = TreeBuilder()
    builder.add_scan(scan_tree(str(src), exclude, DigestCache(None)))
    write_romfs(str(out), builder.finish(), volume, align, ("test", ""))
    return out.read_bytes()


@pytest.mark.tool
@pytest.mark.parametrize("align", [16, 32, 64, 256, 4096])
def test_rich_tree_matches_genromfs(ordered_dir: Path, align: int) -> None:
    src = make_tree(ordered_dir, RICH_TREE)
    expected = genromfs(src, ordered_dir / "g.img", "-V", "rich volume", "-a", str(align))
    got = ours(src, ordered_dir / "o.img", "rich volume", align)
    assert len(got) == len(expected)
    assert got == expected, _first_difference(got, expected)


@pytest.mark.tool
def test_exclude_patterns_match_genromfs(ordered_dir: Path) -> None:
    src = make_tree(ordered_dir, RICH_TREE)
    patterns = ("*.hardlink", "/etc/deep", "Z-*", "fif?")
    args = [a for p in patterns for a in ("-x", p)]
    expected = genromfs(src, ordered_dir / "g.img", "-V", "x", *args)
    got = ours(src, ordered_dir / "o.img", "x", exclude=patterns)
    assert got == expected, _first_difference(got, expected)
    with open(ordered_dir / "o.img", "rb") as f:
        names = [e.path for e in read_romfs(f).walk()]
    assert "etc/deep" not in names and "var/hosts.hardlink" not in names
    assert "etc/hosts" in names


@pytest.mark.tool
def test_empty_tree_and_long_volume_match_genromfs(ordered_dir: Path) -> None:
    src = make_tree(ordered_dir, [])
    volume = "v" * 127
    expected = genromfs(src, ordered_dir / "g.img", "-V", volume)
    assert ours(src, ordered_dir / "o.img", volume) == expected


@pytest.mark.tool
def test_reader_reads_genromfs_image_of_an_unordered_tree(tmp_path: Path) -> None:
    """genromfs keeps the host's readdir order; our reader must not care."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for name in ("zeta", "alpha", "mid"):
        (src / name).write_bytes(name.encode() * 100)
    (src / "d" / "inner").write_bytes(b"inner\n")
    (src / "d" / "ln").symlink_to("../alpha")
    image = tmp_path / "g.img"
    genromfs(src, image, "-V", "host order")
    with open(image, "rb") as f:
        reader = read_romfs(f)
        assert reader.volume == "host order"
        assert reader.problems() == []
        files = {e.path: reader.read(e) for e in reader.walk() if e.kind == "file"}
        links = {e.path: reader.read(e) for e in reader.walk() if e.kind == "symlink"}
    assert files == {"zeta": b"zeta" * 100, "alpha": b"alpha" * 100, "mid": b"mid" * 100,
                     "d/inner": b"inner\n"}
    assert links == {"d/ln": b"../alpha"}


def _first_difference(a: bytes, b: bytes) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"first difference at byte {i} (0x{i:x}): ours {x:#04x}, genromfs {y:#04x}"
    return f"lengths differ: ours {len(a)}, genromfs {len(b)}"

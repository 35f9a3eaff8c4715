"""disk.compress and mkfs --compressed: the disk as .img.xz or .img.zst, the same bytes on every
build and for any number of threads, judged by xz, zstd and bmap-tools (``bmaptool copy
card.img.zst DEST`` finds the raw disk's block map, checks every range's sha256 as it
decompresses, and writes what our reader and fsck.fat accept; that the map's ranges alone
make a used card read as the disk is test_bmap.py's)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dfsbuild.fileio.compress import XZ_PIECE, compress_file
from tests.conftest import need_tool, run_cli

LAYOUT = """schema = 1
[image.boot]
type = "fat"
tree = "tree"
size = "200MiB"
[disk]
table = "mbr"
size = "256MiB"
bmap = true
compress = "{method}"
[[disk.partition]]
name = "boot"
image = "boot"
"""
MIB = 1 << 20
SUFFIX = {"xz": ".xz", "zstd": ".zst"}


def _build(tmp_path: Path, method: str, build: str = "build") -> Path:
    tree = tmp_path / "tree"
    if not tree.exists():
        (tree / "sub").mkdir(parents=True)
        (tree / "kernel").write_bytes(os.urandom(3 * MIB))
        (tree / "sub" / "config.txt").write_text("console=ttyS0\n")
    layout = tmp_path / "card.toml"
    layout.write_text(LAYOUT.format(method=method))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / build))
    return tmp_path / build / "card" / "card.img"


def _decompress(method: str, path: Path) -> bytes:
    tool = need_tool("xz" if method == "xz" else "zstd")
    return subprocess.run([tool, "-dc", str(path)], capture_output=True, check=True).stdout


@pytest.mark.tool
@pytest.mark.parametrize("method", ["xz", "zstd"])
def test_the_compressed_disk_is_the_disk_and_the_same_on_every_build(tmp_path: Path,
                                                                      method: str) -> None:
    disk = _build(tmp_path, method)
    packed = Path(str(disk) + SUFFIX[method])
    assert _decompress(method, packed) == disk.read_bytes()
    again = _build(tmp_path, method, "again")
    assert Path(str(again) + SUFFIX[method]).read_bytes() == packed.read_bytes()
    # Switching the method leaves only the file of the method asked for.
    other = "zstd" if method == "xz" else "xz"
    _build(tmp_path, other)
    assert not packed.exists() and Path(str(disk) + SUFFIX[other]).exists()


@pytest.mark.tool
@pytest.mark.parametrize("method", ["xz", "zstd"])
def test_bmaptool_flashes_the_compressed_disk(tmp_path: Path, method: str) -> None:
    disk = _build(tmp_path, method)
    packed = Path(str(disk) + SUFFIX[method])
    card = tmp_path / "card.dev"
    proc = subprocess.run([need_tool("bmaptool"), "copy", str(packed), str(card)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "card.img.bmap" in proc.stderr           # found beside the compressed file
    assert card.read_bytes() == disk.read_bytes()
    for path in ("/kernel", "/sub/config.txt"):
        want = run_cli("cat", f"{disk}:1", path).stdout
        assert run_cli("cat", f"{card}:1", path).stdout == want and want
    boot = tmp_path / "boot.fat"
    with open(card, "rb") as c, open(boot, "wb") as b:
        c.seek(MIB)
        for _ in range(200):
            b.write(c.read(MIB))
    fsck = subprocess.run([need_tool("fsck.fat"), "-n", str(boot)], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@pytest.mark.parametrize("method", ["xz", "zstd"])
def test_the_bytes_do_not_depend_on_the_number_of_threads(tmp_path: Path, method: str) -> None:
    src = tmp_path / "in.img"
    with open(src, "wb") as f:                     # data, a hole, data across a piece's end
        f.write(os.urandom(MIB) + b"text " * 50_000)
        f.seek(XZ_PIECE + 3 * MIB)
        f.write(os.urandom(MIB))
        f.seek(XZ_PIECE * 2 - 100)
        f.write(b"end" * 100)
    outs = []
    for workers in (1, 2, 5):
        out = tmp_path / f"out{workers}"
        compress_file(str(src), str(out), method, workers)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    if shutil.which("xz" if method == "xz" else "zstd"):
        assert _decompress(method, tmp_path / "out1") == src.read_bytes()


def test_mkfs_writes_the_compressed_image_beside_it(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a" * 10_000)
    out = tmp_path / "fs.img"
    run_cli("mkfs", "romfs", str(tmp_path / "src"), "-o", str(out), "--compressed", "xz")
    import lzma

    assert lzma.decompress((tmp_path / "fs.img.xz").read_bytes()) == out.read_bytes()
    proc = run_cli("mkfs", "romfs", str(tmp_path / "src"), "-o", str(out), "--compressed",
                   "gzip", check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr

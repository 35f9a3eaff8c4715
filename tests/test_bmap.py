"""disk.bmap: a block map beside the disk in bmaptool's format. bmap-tools itself checks it:
``bmaptool copy`` verifies every range's sha256 and the file's own checksum, and a copy onto
a file full of other bytes must read back as the disk wherever it matters to a reader."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_tool, run_cli

LAYOUT = """schema = 1
[image.boot]
type = "fat"
tree = "tree"
size = "200MiB"
fat = 32
cluster-size = 512
[image.env]
type = "trivialfs"
files."env.txt" = {{ file = "env.txt", reserve = "64KiB" }}
[disk]
table = "{table}"
size = "256MiB"
bmap = {bmap}
[[disk.partition]]
name = "boot"
image = "boot"
[[disk.partition]]
name = "env"
image = "env"
[[disk.partition]]
name = "rest"
size = "rest"
"""


def _build(tmp_path: Path, table: str = "gpt", bmap: str = "true") -> Path:
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "kernel").write_bytes(os.urandom(3 << 20))
    (tree / "config.txt").write_text("console=ttyS0\n")
    (tmp_path / "env.txt").write_text("bootcount=0\n")
    layout = tmp_path / "card.toml"
    layout.write_text(LAYOUT.format(table=table, bmap=bmap))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    return tmp_path / "build" / "card" / "card.img"


def _cat(target: str, path: str) -> bytes:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dfsbuild", "cat", target, path], env=env,
                          capture_output=True, check=True).stdout


def _ranges(text: str) -> list[tuple[int, int]]:
    found = []
    for m in re.finditer(r"<Range[^>]*>\s*([0-9]+)(?:-([0-9]+))?\s*</Range>", text):
        found.append((int(m[1]), int(m[2] or m[1])))
    return found


def _bmaptool() -> str:
    return need_tool("bmaptool")


@pytest.mark.tool
@pytest.mark.parametrize("table", ["gpt", "mbr"])
def test_bmaptool_copies_only_the_data_and_the_result_reads_the_same(tmp_path: Path,
                                                                     table: str) -> None:
    disk = _build(tmp_path, table)
    bmap = Path(str(disk) + ".bmap")
    text = bmap.read_text()
    assert '<bmap version="2.0">' in text
    mapped = int(text.split("<MappedBlocksCount>")[1].split("<")[0])
    assert 0 < mapped * 4096 < 8 << 20          # 3 MiB of files in a 64 MiB disk
    # bmaptool checks every range's sha256 and the map's own checksum while copying.
    copy = tmp_path / "copy.img"
    proc = subprocess.run([_bmaptool(), "copy", "--bmap", str(bmap), str(disk), str(copy)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert copy.read_bytes() == disk.read_bytes()
    # A used card keeps its old bytes wherever the map has no data: make one, with the map's
    # ranges written onto a card full of other bytes (what bmaptool does to a device).
    card = tmp_path / "card.dev"
    card.write_bytes(b"\xa5" * (256 << 20))
    with open(disk, "rb") as d, open(card, "r+b") as c:
        for first, last in _ranges(text):
            d.seek(first * 4096)
            c.seek(first * 4096)
            c.write(d.read((last - first + 1) * 4096))
    # What the readers see on the card is the disk: the table, both filesystems' files.
    for part, path in (("boot", "/kernel"), ("boot", "/config.txt"), ("env", "/env.txt")):
        number = 2 if part == "env" else 1
        want = _cat(f"{disk}:{number}", path)
        assert _cat(f"{card}:{number}", path) == want and want
    def table(text: str) -> str:      # the used card's old bytes outside partitions stay
        return "\n".join(line for line in text.splitlines()
                         if not line.startswith("data outside the partitions"))
    inspect_want = run_cli("inspect", str(disk)).stdout
    assert table(run_cli("inspect", str(card)).stdout.replace(str(card), "")) == \
        table(inspect_want.replace(str(disk), ""))
    # The FAT's structures (boot sectors, both FATs) are on the card as built: free FAT
    # entries were written as zeros, not left as holes the copy skips.
    start = 2048 * 512
    data_offset = json.loads(run_cli("inspect", "--json", f"{disk}:1").stdout)["data_offset"]
    with open(card, "rb") as c, open(disk, "rb") as d:
        c.seek(start)
        d.seek(start)
        assert c.read(data_offset) == d.read(data_offset)
    boot = tmp_path / "boot.fat"
    with open(card, "rb") as f:
        f.seek(start)
        boot.write_bytes(f.read(200 << 20))
    fsck = subprocess.run([need_tool("fsck.fat"), "-n", str(boot)], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@pytest.mark.tool
def test_bmaptool_refuses_a_bmap_of_other_bytes(tmp_path: Path) -> None:
    disk = _build(tmp_path)
    bmap = Path(str(disk) + ".bmap")
    with open(disk, "r+b") as f:
        f.seek(2048 * 512 + 4096 * 20)
        f.write(b"changed after the build")
    proc = subprocess.run([_bmaptool(), "copy", "--bmap", str(bmap), str(disk),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode != 0 and "checksum" in proc.stderr.lower()


def test_bmap_follows_the_setting(tmp_path: Path) -> None:
    disk = _build(tmp_path, bmap="false")
    bmap = Path(str(disk) + ".bmap")
    assert not bmap.exists()
    _build(tmp_path, bmap="true")
    assert bmap.exists()
    bmap.unlink()                    # deleted by hand: the next build makes it again
    _build(tmp_path, bmap="true")
    assert bmap.exists()
    _build(tmp_path, bmap="false")   # no longer asked for: an old map would mislead
    assert not bmap.exists()

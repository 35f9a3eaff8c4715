"""Disk assembly: images copied into place, holes kept, one changed image rewrites only the disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli

LAYOUT = """
schema = 1
[disk]
table = "gpt"
size = "16GiB"
[[disk.partition]]
name = "boot"
image = "boot"
type = "efi"
size = "64MiB"
[[disk.partition]]
name = "root"
image = "root"
size = "1GiB"
[[disk.partition]]
name = "data"
image = "data"
size = "rest"
[image.boot]
type = "romfs"
tree = "../boot"
[image.root]
type = "romfs"
tree = "../root"
[image.data]
type = "raw"
file = "../data.bin"
"""


def build(project: Path) -> dict[str, list[str]]:
    result: dict[str, list[str]] = json.loads(run_cli("build", "--json", cwd=project).stdout)
    return result


def test_a_sparse_16_gib_disk_costs_what_it_holds(tmp_path: Path) -> None:
    for tree in ("boot", "root"):
        (tmp_path / tree).mkdir()
    (tmp_path / "boot" / "kernel").write_bytes(os.urandom(30 << 20))
    (tmp_path / "root" / "blob").write_bytes(os.urandom(60 << 20))
    with open(tmp_path / "data.bin", "wb") as f:   # 10 MiB of data, then a 100 MiB hole
        f.write(os.urandom(10 << 20))
        f.truncate(110 << 20)
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "big.toml").write_text(LAYOUT)
    first = build(tmp_path)
    assert set(first["built"]) == {"big:image.boot", "big:image.root", "big:image.data",
                                   "big:disk"}
    disk = tmp_path / "build" / "big" / "big.img"
    st = disk.stat()
    assert st.st_size == 16 << 30
    allocated = st.st_blocks * 512
    assert 100 << 20 <= allocated < 120 << 20, allocated   # ~100 MiB of content + tables
    boot = (tmp_path / "build" / "big" / "boot.img").read_bytes()
    with open(disk, "rb") as f:
        f.seek(2048 * 512)
        assert f.read(len(boot)) == boot
    # One changed image: that image and the disk are produced again, nothing else.
    (tmp_path / "root" / "blob2").write_bytes(b"more")
    second = build(tmp_path)
    assert set(second["built"]) == {"big:image.root"}
    assert set(second["patched"]) == {"big:disk"}   # only the root partition rewritten
    assert set(second["up_to_date"]) == {"big:image.boot", "big:image.data"}
    root = (tmp_path / "build" / "big" / "root.img").read_bytes()
    with open(disk, "rb") as f:
        f.seek((2048 + 131072) * 512)
        assert f.read(len(root)) == root
    assert disk.stat().st_blocks * 512 < 120 << 20

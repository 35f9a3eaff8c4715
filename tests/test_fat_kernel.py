"""The Linux kernel's vfat driver reads our FAT filesystems inside MBR and GPT disks: every
file, long and non-ASCII names included (outside the BMP too), byte-equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fattree import make_tree, sha
from tests.qemu import boot, fetch_kernel, make_initramfs

LAYOUT = """schema = 1
[image.boot]
type = "fat"
label = "BOOT"
tree = "tree"
map = "offsets.txt"
[image.big]
type = "fat"
fat = 32
size = "40MiB"
tree = "tree"
[image.wide]
type = "fat"
sector-size = 4096
size = "16MiB"
fats = 1
tree = "tree"
[disk]
table = "TABLE"
size = "80MiB"
[[disk.partition]]
name = "boot"
image = "boot"
[[disk.partition]]
name = "big"
image = "big"
[[disk.partition]]
name = "wide"
image = "wide"
"""


@pytest.mark.tool
@pytest.mark.slow
def test_the_kernel_reads_every_file_of_our_fat(tmp_path: Path) -> None:
    kernel = fetch_kernel()
    initrd = make_initramfs(kernel, tmp_path)
    files = make_tree(tmp_path / "tree", many=600)
    drives = []
    for table in ("mbr", "gpt"):
        layout = tmp_path / f"{table}.toml"
        layout.write_text(LAYOUT.replace("TABLE", table))
        run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
        drives.append((tmp_path / "build" / table / f"{table}.img", 512))
    guest = boot(kernel, initrd, drives)
    want = {p: sha(d) for p, d in files.items()}
    for part in ("vda1", "vda2", "vda3", "vdb1", "vdb2", "vdb3"):
        seen = dict(guest.fat.get(part, {}))
        offsets = seen.pop("offsets.txt", None)
        assert seen == want, f"{part}: {sorted(set(seen) ^ set(want))[:10]}"
        assert (offsets is not None) == part.endswith("1")

"""The kernel finds our TrivialFS by its ext2 label block: busybox ``findfs UUID=`` in an
initramfs, then the sh ``trivialfs_volume`` finds the partition among /dev/vd*, ``trivialfs_file``
and ``trivialfs_write`` change a file in place, and the host reads the change after QEMU ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfsbuild.layout.contents import builtins
from tests.conftest import run_cli
from tests.qemu import boot, fetch_kernel, make_initramfs

UUID = "0badc0de-1234-4321-abcd-0123456789ab"
LAYOUT = f"""schema = 1
[image.env]
type = "trivialfs"
uuid = "{UUID}"
label = "BOOTENV"
tree = "env"
files."boot/counter" = {{ file = "env/boot/counter", reserve = "512" }}
[disk]
table = "mbr"
size = "8MiB"
[[disk.partition]]
name = "spacer"
size = "1MiB"
[[disk.partition]]
name = "env"
image = "env"
type = "non-fs-data"
"""

BODY = f"""modprobe ext2 2>/dev/null
echo "FINDFS $(findfs UUID={UUID})"
vol=$(trivialfs_volume {UUID})
echo "VOLUME $vol"
echo "BEFORE $(trivialfs_file "$vol" boot/counter | trivialfs_read)"
echo "count=7" | trivialfs_write $(trivialfs_file "$vol" boot/counter)
echo "AFTER $(trivialfs_file "$vol" boot/counter | trivialfs_read | tr -d '\\000')"
sync
"""


@pytest.mark.tool
@pytest.mark.slow
def test_findfs_and_the_sh_tools_find_and_change_our_volume(tmp_path: Path) -> None:
    kernel = fetch_kernel()
    tools = {n: Path(p) for n, p in builtins().items() if n.startswith("trivialfs_")}
    initrd = make_initramfs(kernel, tmp_path, BODY, tools)
    (tmp_path / "env" / "boot").mkdir(parents=True)
    (tmp_path / "env" / "boot" / "counter").write_text("count=0")
    (tmp_path / "env" / "version").write_text("1.2.3\n")
    layout = tmp_path / "sd.toml"
    layout.write_text(LAYOUT)
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    disk = tmp_path / "build" / "sd" / "sd.img"
    guest = boot(kernel, initrd, [(disk, 512)], writable=True)
    lines = dict(line.split(" ", 1) for line in guest.console.split("@@BEGIN@@", 1)[1]
                 .split("@@END@@", 1)[0].splitlines() if " " in line)
    assert lines["FINDFS"] == "/dev/vda2", guest.console[-2000:]
    assert lines["VOLUME"] == "/dev/vda2"
    assert lines["BEFORE"].startswith("count=0")
    assert lines["AFTER"] == "count=7"
    assert run_cli("cat", f"{disk}:2", "boot/counter").stdout.rstrip("\0") == "count=7\n"
    assert run_cli("cat", f"{disk}:2", "version").stdout == "1.2.3\n"

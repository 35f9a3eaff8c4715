"""syslinux's installer on a FAT dfsbuild built (the documented way to boot syslinux on a PC
BIOS): with room kept by ``free``, `syslinux --install` succeeds, the partition stays
fsck.fat-clean and `inspect`-clean, SeaBIOS boots syslinux, which reads its configuration
from our FAT; `dfsbuild put` afterwards leaves the boot sector and ldlinux.sys where they are,
so it still boots; `verify` says the disk is no longer what the layout builds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fattree import fsck
from tests.qemu import converse

LAYOUT = """schema = 1
[image.boot]
type = "fat"
fat = 16
size = "16MiB"
free = "1MiB"                 # room for ldlinux.sys and ldlinux.c32
tree = "tree"
[disk]
table = "mbr"
boot-code = "{mbr}"
[[disk.partition]]
name = "boot"
image = "boot"
type = "fat16-lba"
bootable = true
"""
CONFIG = "SERIAL 0 115200\nSAY syslinux: {text}\nPROMPT 0\nDEFAULT x\nLABEL x\n  KERNEL /none\n"
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
START = 2048 * 512


def _partition(disk: Path, dest: Path) -> bytes:
    data = disk.read_bytes()[START:START + (16 << 20)]
    dest.write_bytes(data)
    return data


def _boot(disk: Path) -> str:
    qemu = shutil.which("qemu-system-x86_64")
    assert qemu is not None
    return converse([qemu, "-m", "256", "-nographic", "-no-reboot", "-drive",
                     f"file={disk},format=raw,if=virtio"], [("boot:", "\x01x")], timeout=120)


@pytest.mark.tool
@pytest.mark.slow
def test_the_syslinux_installer_on_our_fat(tmp_path: Path) -> None:
    installer = shutil.which("syslinux")
    if installer is None or not MBR_BIN.exists() or shutil.which("qemu-system-x86_64") is None:
        from tests.qemu import unavailable
        unavailable("syslinux (packages syslinux, syslinux-common) or qemu-system-x86 is not "
                    "installed")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "syslinux.cfg").write_text(CONFIG.format(text="hello from our FAT"))
    layout = tmp_path / "s.toml"
    layout.write_text(LAYOUT.format(mbr=MBR_BIN))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    disk = tmp_path / "d.img"
    shutil.copy(tmp_path / "b" / "s" / "s.img", disk)
    subprocess.run([installer, "--offset", str(START), "--install", str(disk)], check=True)
    part = tmp_path / "p.img"
    before = _partition(disk, part)
    fsck(part)
    listing = run_cli("ls", f"{disk}:1").stdout
    assert "ldlinux.sys" in listing and "ldlinux.c32" in listing
    assert "problems: 0" in run_cli("inspect", f"{disk}:1").stdout
    assert "syslinux: hello from our FAT" in _boot(disk)
    # put another configuration: the boot sector and ldlinux.sys stay, and it still boots.
    where = run_cli("map", f"{disk}:1").stdout
    new = tmp_path / "syslinux.cfg"
    new.write_text(CONFIG.format(text="changed with dfsbuild put"))
    run_cli("put", f"{disk}:1", "syslinux.cfg", str(new))
    after = _partition(disk, part)
    assert after[:512] == before[:512]
    assert [line for line in run_cli("map", f"{disk}:1").stdout.splitlines()
            if "ldlinux.sys" in line] == [line for line in where.splitlines()
                                          if "ldlinux.sys" in line]
    fsck(part)
    assert "syslinux: changed with dfsbuild put" in _boot(disk)
    # The installer stamped its own bytes: the disk is not what the layout builds any more.
    shutil.copy(disk, tmp_path / "b" / "s" / "s.img")
    assert run_cli("verify", str(layout), "--build-dir", str(tmp_path / "b"),
                   check=False).returncode == 1

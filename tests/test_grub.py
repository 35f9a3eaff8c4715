"""GRUB's BIOS boot set up at build time (tables/mbr/grub.py): the patches grub-bios-setup
makes, checked on a real core.img when grub-mkimage is installed; the layout's errors. The
boot itself (SeaBIOS, the disk alone) is in test_fsaspt.py."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from dfsbuild.tables.mbr import grub
from tests.conftest import run_cli

BOOT_IMG = Path("/usr/lib/grub/i386-pc/boot.img")


def _core(sectors: int) -> bytes:
    core = bytearray(b"\x11" * (sectors * 512 - 100))   # not whole sectors, as grub-mkimage
    struct.pack_into("<QHH", core, grub.BLOCK_LIST, 2, sectors - 1, grub.KERNEL_SEGMENT)
    return bytes(core)


def _boot() -> bytes:
    boot = bytearray(b"\xeb\x63" + bytes(508) + b"\x55\xaa")
    boot[grub.DRIVE_CHECK:grub.DRIVE_CHECK + 2] = b"\x74\x05"
    return bytes(boot)


def test_the_patches_are_grub_bios_setups() -> None:
    code, core = grub.grub_sectors(_boot(), _core(10))
    assert len(code) == 440 and len(core) == 10 * 512
    assert struct.unpack_from("<Q", code, 0x5C) == (1,)          # core.img's first sector
    assert code[0x66:0x68] == b"\x90\x90"                        # the drive check bypassed
    assert struct.unpack_from("<QHH", core, 0x1F4) == (2, 9, 0x820)   # the rest of it
    assert code[:0x5C] == _boot()[:0x5C]


@pytest.mark.parametrize("boot, core, why", [
    (b"\0" * 512, _core(4), "one sector ending 55 aa"),
    (_boot()[:440], _core(4), "the boot image is 440 bytes"),
    (_boot(), b"\0" * 100, "core.img is 100 bytes"),
    (_boot(), _core(4)[:1500] + bytes(1000), "block list says 3 sectors"),
])
def test_other_files_are_refused(boot: bytes, core: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        grub.grub_sectors(boot, core)


def test_a_real_core_img_is_patched_as_the_installer_would(tmp_path: Path) -> None:
    mkimage = shutil.which("grub-mkimage")
    if mkimage is None or not BOOT_IMG.exists():
        from tests.qemu import unavailable
        unavailable("grub-mkimage and GRUB's boot.img (grub-common, grub-pc-bin) are not "
                    "installed")
    out = tmp_path / "core.img"
    subprocess.run([mkimage, "-O", "i386-pc", "-o", str(out), "-p", "(hd0,msdos1)/boot/grub",
                    "biosdisk", "part_msdos", "fat"], check=True)
    raw, boot = out.read_bytes(), BOOT_IMG.read_bytes()
    code, core = grub.grub_sectors(boot, raw)
    assert core[:0x1F4] == raw[:0x1F4] and core[0x1FC:len(raw)] == raw[0x1FC:]
    assert struct.unpack_from("<Q", core, 0x1F4) == (2,)
    assert code[:0x5C] == boot[:0x5C] and code[0x68:] == boot[0x68:440]
    assert boot[0x66] in (0x74, 0xEB) and struct.unpack_from("<Q", code, 0x5C) == (1,)


LAYOUT = """schema = 1
[image.root]
type = "romfs"
tree = "tree"
[disk]
table = "mbr"
grub-core = "core.img"
grub-boot = "boot.img"
{extra}
[[disk.partition]]
name = "root"
image = "root"
"""


def _project(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("f\n")
    (tmp_path / "core.img").write_bytes(_core(40))
    (tmp_path / "boot.img").write_bytes(_boot())
    (tmp_path / "code.bin").write_bytes(bytes(440))
    layout = tmp_path / "g.toml"
    layout.write_text(LAYOUT.format(extra=extra))
    return layout


def test_the_disk_holds_both_and_the_table_stays_ours(tmp_path: Path) -> None:
    layout = _project(tmp_path)
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    disk = (tmp_path / "b" / "g" / "g.img").read_bytes()
    code, core = grub.grub_sectors(_boot(), _core(40))
    assert disk[:440] == code and disk[512:512 + len(core)] == core
    assert disk[510:512] == b"\x55\xaa" and disk[446 + 4] == 0x83       # our table
    listing = run_cli("ls", str(tmp_path / "b" / "g" / "g.img")).stdout
    assert "outside the partitions: bytes 512..20991" in listing


@pytest.mark.parametrize("extra, message", [
    ('boot-code = "code.bin"', "disk.grub-core: GRUB's boot code fills sector 0: leave out "
                               "boot-code"),
    ('align = "4KiB"', "disk.grub-core: core.img takes sectors 1..40, and the first "
                       "partition starts at sector 8"),
])
def test_what_cannot_boot_is_an_error(tmp_path: Path, extra: str, message: str) -> None:
    layout = _project(tmp_path, extra)
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr

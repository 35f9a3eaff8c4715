"""Warnings: settings that are valid but do nothing or surprise, printed by check and build;
--strict (or DFSBUILD_STRICT=1) makes them errors. Checks also what a reader shows: romfs
modes as our reader gives them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

ROMFS = """schema = 1
[image.root]
type = "romfs"
files."etc/secret" = {{ file = "data.txt", mode = {mode} }}
devices."dev/null" = {{ type = "char", major = 1, minor = 3, mode = "{dev}" }}
"""

DISK = """schema = 1
[image.root]
type = "romfs"
tree = "tree"
[image.spare]
type = "romfs"
tree = "tree"
[disk]
table = "{table}"
[[disk.partition]]
name = "boot"
image = "root"
type = "{ptype}"
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data.txt").write_text("x\n")
    (tmp_path / "tree").mkdir(exist_ok=True)
    (tmp_path / "tree" / "f").write_text("f\n")
    layout = tmp_path / "w.toml"
    layout.write_text(text)
    return layout


def test_romfs_modes_that_read_back_otherwise(tmp_path: Path) -> None:
    layout = _write(tmp_path, ROMFS.format(mode='"0600"', dev="0666"))
    proc = run_cli("check", str(layout))
    assert "warning:" in proc.stderr
    assert 'files."etc/secret".mode: mode 0600 reads back as 0644' in proc.stderr
    assert 'devices."dev/null".mode: mode 0666 reads back as 0600' in proc.stderr
    # What the warning says is what the image holds.
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    listing = json.loads(run_cli("ls", "--json", str(tmp_path / "b" / "w" / "root.img"),
                                 "/dev").stdout)
    assert {e["path"]: e["mode"] for e in listing} == {"dev/null": "0600"}
    # 0644 and 0755 (and a device at 0600) are what romfs gives back: no warning.
    _write(tmp_path, ROMFS.format(mode='"0755"', dev="0600"))
    assert "warning" not in run_cli("check", str(layout)).stderr


@pytest.mark.parametrize("strict", [["--strict"], []])
def test_strict_makes_warnings_errors(tmp_path: Path, strict: list[str]) -> None:
    layout = _write(tmp_path, ROMFS.format(mode='"0600"', dev="0600"))
    env = {} if strict else {"DFSBUILD_STRICT": "1"}
    for command in ("check", "build"):
        proc = run_cli(command, *strict, str(layout), "--build-dir", str(tmp_path / "b"),
                       env=env, check=False)
        assert proc.returncode == 1, proc.stderr
        assert "error:" in proc.stderr and "reads back as 0644" in proc.stderr
        assert "--strict" in proc.stderr
    assert not (tmp_path / "b" / "w" / "root.img").exists()


def test_decimal_mode_is_named_with_its_line(tmp_path: Path) -> None:
    layout = _write(tmp_path, ROMFS.format(mode="644", dev="0600"))
    proc = run_cli("check", str(layout))
    assert "w.toml: line 4: mode = 644 is the decimal number 644 (octal 1204)" in proc.stderr
    assert 'mode = 0o644 or mode = "0644"' in proc.stderr
    _write(tmp_path, ROMFS.format(mode="0o644", dev="0600"))
    assert "warning" not in run_cli("check", str(layout)).stderr


def test_unused_image_and_mistyped_partition(tmp_path: Path) -> None:
    layout = _write(tmp_path, DISK.format(table="mbr", ptype="fat32-lba"))
    proc = run_cli("check", str(layout))
    assert "image.spare: image 'spare' is in no partition" in proc.stderr
    assert "disk.partition[0].type: disk.partition[0] (boot) is typed for fat, but its " \
        "image 'root' is romfs" in proc.stderr
    _write(tmp_path, DISK.format(table="gpt", ptype="efi"))
    assert "typed for fat, but" in run_cli("check", str(layout)).stderr
    _write(tmp_path, DISK.format(table="gpt", ptype="linux"))
    assert "typed for" not in run_cli("check", str(layout)).stderr


def test_bundled_layouts_have_no_warnings() -> None:
    proc = run_cli("check", "--strict", "layouts")
    assert proc.returncode == 0 and "warning" not in proc.stderr


ESP = """schema = 1
[image.esp]
type = "fat"
tree = "esp"
{files}
[disk]
table = "{table}"
[[disk.partition]]
name = "esp"
image = "esp"
type = "efi"
"""


@pytest.mark.parametrize("table", ["gpt", "mbr"])
def test_an_efi_system_partition_without_a_boot_loader(tmp_path: Path, table: str) -> None:
    """UEFI firmware starts EFI/BOOT/BOOT<ARCH>.EFI, in any case (FAT names compare so),
    from the tree or from files; without it, check warns."""
    (tmp_path / "esp").mkdir()
    (tmp_path / "esp" / "readme.txt").write_text("x\n")
    (tmp_path / "loader.efi").write_bytes(b"MZ")
    layout = tmp_path / "e.toml"
    layout.write_text(ESP.format(table=table, files=""))
    proc = run_cli("check", str(layout))
    assert "disk.partition[0].image: disk.partition[0] (esp) is an EFI system partition, " \
        "but its image 'esp' has no EFI/BOOT/BOOTX64.EFI" in proc.stderr
    layout.write_text(ESP.format(table=table, files='files."EFI/BOOT/BOOTAA64.EFI" = '
                                 '{ file = "loader.efi" }'))
    assert "warning" not in run_cli("check", str(layout)).stderr
    layout.write_text(ESP.format(table=table, files=""))
    (tmp_path / "esp" / "Efi" / "boot").mkdir(parents=True)
    (tmp_path / "esp" / "Efi" / "boot" / "bootx64.EFI").write_bytes(b"MZ")
    assert "warning" not in run_cli("check", str(layout)).stderr


CARD = """schema = 1
[image.a]
type = "romfs"
tree = "tree"
[image.boot]
type = "fat"
tree = "boot"
[disk]
table = "mbr"
{code}
[[disk.partition]]
name = "a"
image = "a"
[[disk.partition]]
name = "boot"
image = "boot"
{bootable}
"""


def test_boot_code_or_a_u_boot_card_with_nothing_bootable(tmp_path: Path) -> None:
    """Boot code (syslinux's mbr.bin) chains to the active partition; U-Boot's distro boot
    reads extlinux.conf from bootable partitions, else from partition 1 only."""
    _write(tmp_path, "")
    (tmp_path / "boot" / "EXTLINUX").mkdir(parents=True)
    (tmp_path / "boot" / "EXTLINUX" / "extlinux.conf").write_text("label x\n")
    (tmp_path / "mbr.bin").write_bytes(bytes(440))
    layout = tmp_path / "c.toml"
    layout.write_text(CARD.format(code='boot-code = "mbr.bin"', bootable=""))
    err = run_cli("check", str(layout)).stderr
    assert "disk.boot-code: boot code chains to the partition marked bootable, and none " \
        "is" in err
    assert "disk.partition[1].bootable: disk.partition[1] (boot) holds " \
        "extlinux/extlinux.conf, but U-Boot's distro boot reads it only from bootable " \
        "partitions" in err
    layout.write_text(CARD.format(code='boot-code = "mbr.bin"', bootable="bootable = true"))
    assert "warning" not in run_cli("check", str(layout)).stderr

"""The Linux kernel reads our disks: its msdos and efi partition parsers and its romfs driver.

One QEMU boot (formats.md §9) with four drives: an MBR disk with logical partitions, GPT disks
with 512- and 4096-byte sectors, and an eMBR disk. Slow-ish (a few seconds under software
emulation, plus fetching the kernel package once).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.qemu import boot, fetch_kernel, make_initramfs

IMAGES = """
[image.boot]
type = "romfs"
volume = "boot"
tree = "tree-boot"
[image.rootfs]
type = "romfs"
volume = "rootfs"
tree = "tree-root"
devices."dev/console" = { type = "char", major = 5, minor = 1 }
devices."dev/null" = { type = "char", major = 1, minor = 3, mode = "0666" }
[image.blob]
type = "raw"
file = "blob.bin"
"""

LAYOUTS = {
    "mbr": """
[disk]
table = "mbr"
size = "64MiB"
[[disk.partition]]
name = "boot"
image = "boot"
type = "fat32-lba"
bootable = true
[[disk.partition]]
name = "rootfs"
image = "rootfs"
logical = true
[[disk.partition]]
name = "blob"
image = "blob"
type = "0xda"
logical = true
[[disk.partition]]
name = "data"
logical = true
size = "rest"
""",
    "gpt": """
[disk]
table = "gpt"
[[disk.partition]]
name = "ESP"
image = "boot"
type = "efi"
size = "2MiB"
[[disk.partition]]
name = "root"
image = "rootfs"
type = "linux-root-x86-64"
""",
    "gpt4k": """
[disk]
table = "gpt"
sector-size = 4096
size = "32MiB"
[[disk.partition]]
name = "a"
image = "blob"
[[disk.partition]]
name = "b"
size = "rest"
""",
    "embr": """
[disk]
table = "embr"
size = "16MiB"
[[disk.partition]]
name = "one"
image = "rootfs"
""",
}


@pytest.mark.tool
@pytest.mark.slow
def test_the_kernel_reads_our_disks_and_mounts_our_romfs(tmp_path: Path) -> None:
    kernel = fetch_kernel()
    initrd = make_initramfs(kernel, tmp_path)
    for tree, host in (("tree-boot", "boot-part"), ("tree-root", "kernel-sees-romfs")):
        (tmp_path / tree / "etc").mkdir(parents=True)
        (tmp_path / tree / "etc" / "hostname").write_text(host)
    (tmp_path / "tree-root" / "bin").mkdir()
    (tmp_path / "tree-root" / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(5000))
    (tmp_path / "blob.bin").write_bytes(b"blob" * 1000)
    plans = {}
    drives = []
    for name, disk in LAYOUTS.items():
        layout = tmp_path / f"{name}.toml"
        layout.write_text("schema = 1\n" + IMAGES + disk)
        run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
        plans[name] = json.loads(run_cli("plan", str(layout), "--json", "--build-dir",
                                         str(tmp_path / "build")).stdout)[0]["disk"]
        block = 4096 if name == "gpt4k" else 512
        drives.append((tmp_path / "build" / name / f"{name}.img", block))
    guest = boot(kernel, initrd, drives)

    def expected(letter: str, plan: dict[str, object]) -> dict[str, tuple[int, int]]:
        scale = int(str(plan["sector_size"])) // 512
        parts = plan["partitions"]
        assert isinstance(parts, list)
        return {f"vd{letter}{p['number']}": (p["start_lba"] * scale, p["size_sectors"] * scale)
                for p in parts}

    def found(letter: str, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
        return {k: v for k, v in guest.partitions.items()
                if k.startswith(f"vd{letter}") and k not in skip}

    # MBR: primary 1, logical 5-7; Linux shows the extended partition vda2 as a stub.
    mbr = plans["mbr"]
    assert found("a", ("vda2",)) == expected("a", mbr)
    assert guest.partitions["vda2"][0] == mbr["extended"]["start_lba"]
    assert found("b") == expected("b", plans["gpt"])
    assert guest.disks["vdc"][1] == 4096
    assert found("c") == expected("c", plans["gpt4k"])
    # eMBR is unknown to Linux: it sees the legacy 0xE0 entry from LBA 1 to the end.
    assert found("d") == {"vdd1": (1, 16 * 2048 - 1)}

    # romfs: the kernel mounts our images inside logical and GPT partitions.
    assert guest.romfs["vda1"].startswith("hostname=boot-part")
    assert guest.romfs["vda5"].startswith("hostname=kernel-sees-romfs")
    assert guest.romfs["vdb2"].startswith("hostname=kernel-sees-romfs")
    assert "vda6" not in guest.romfs and "vda7" not in guest.romfs
    files = guest.romfs["vda5"].split("files=")[1]
    assert int(files) == 8  # /mnt, bin, bin/tool, dev, dev/console, dev/null, etc, etc/hostname
    assert sorted(d[1:] for d in guest.devices if d[0] == "vda5") == [
        ("c", 1, 3, "null"), ("c", 5, 1, "console")]

"""Disks checked by sfdisk, sgdisk, partx and blkid; our readers on disks those tools made."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, need_tool, read_disk, run_cli

MBR_LAYOUT = """
schema = 1
[disk]
table = "mbr"
size = "64MiB"
disk-id = "0x12345678"
[[disk.partition]]
name = "boot"
image = "boot"
type = "fat32-lba"
size = "10MiB"
bootable = true
[[disk.partition]]
name = "a"
image = "root"
type = "linux"
logical = true
[[disk.partition]]
name = "b"
type = "swap"
size = "4MiB"
logical = true
[[disk.partition]]
name = "c"
type = "0xda"
size = "3MiB"
logical = true
[[disk.partition]]
name = "d"
type = "linux"
size = "rest"
logical = true
[image.boot]
type = "romfs"
volume = "BOOTVOL"
tree = "tree"
[image.root]
type = "romfs"
volume = "rootvol"
tree = "tree"
files."big" = { file = "big.bin" }
"""

GPT_LAYOUT = """
schema = 1
[disk]
table = "gpt"
size = "SIZE"
sector-size = SECTOR
seed = "gpt-test"
[[disk.partition]]
name = "EFI System"
image = "boot"
type = "efi"
size = "8MiB"
[[disk.partition]]
name = "root"
image = "root"
type = "linux-root-x86-64"
attributes = ["legacy-bios-bootable", 60, "no-auto"]
uuid = "01234567-89ab-cdef-0123-456789abcdef"
[[disk.partition]]
name = "data ünïcode"
type = "linux"
size = "rest"
[image.boot]
type = "romfs"
volume = "BOOTVOL"
tree = "tree"
[image.root]
type = "romfs"
volume = "rootvol"
tree = "tree"
"""


def make(tmp_path: Path, text: str, name: str = "disk") -> tuple[Path, dict[str, object]]:
    (tmp_path / "tree" / "etc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "tree" / "etc" / "hostname").write_text("board\n")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 8)
    layout = tmp_path / f"{name}.toml"
    layout.write_text(text)
    build = tmp_path / "build"
    run_cli("build", str(layout), "--build-dir", str(build))
    (plan,) = json.loads(run_cli("plan", str(layout), "--json", "--build-dir",
                                 str(build)).stdout)
    return build / name / f"{name}.img", plan


@contextlib.contextmanager
def loop_device(image: Path, sector_size: int = 512) -> Iterator[str]:
    """A read-only loop device over ``image`` with the given logical sector size."""
    losetup = need_tool("losetup")
    proc = subprocess.run([losetup, "--sector-size", str(sector_size), "-r", "-f",
                           "--show", str(image)], capture_output=True, text=True)
    if proc.returncode != 0:
        message = f"cannot attach a loop device: {proc.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    device = proc.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run([losetup, "-d", device], check=False)


def sfdisk_json(image: Path | str) -> dict[str, object]:
    tool = need_tool("sfdisk")
    out = subprocess.run([tool, "--json", str(image)], capture_output=True, text=True,
                         check=True).stdout
    table: dict[str, object] = json.loads(out)["partitiontable"]
    return table


@pytest.mark.tool
def test_mbr_with_logical_partitions_agrees_with_sfdisk_partx_blkid(tmp_path: Path) -> None:
    image, plan = make(tmp_path, MBR_LAYOUT)
    disk = plan["disk"]
    table = sfdisk_json(image)
    assert table["label"] == "dos" and table["id"] == "0x12345678"
    got = [(p["node"][len(str(image)):], p["start"], p["size"], p["type"], p.get("bootable",
            False)) for p in table["partitions"]]
    ext = disk["extended"]
    expected = [("1", 2048, 20480, "c", True), ("2", ext["start_lba"], ext["size_sectors"], "5",
                                                 False)]
    expected += [(str(p["number"]), p["start_lba"], p["size_sectors"], p["type"],
                  False) for p in disk["partitions"][1:]]
    assert got == expected
    assert len(got) == 6  # three or more logical partitions
    partx = need_tool("partx")
    out = subprocess.run([partx, "--show", "--bytes", "-o", "NR,START,END,SECTORS",
                          "--noheadings", str(image)], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    rows = [tuple(int(x) for x in line.split()) for line in out if line.strip()]
    assert rows == [(int(n), s, s + z - 1, z) for n, s, z, _t, _b in got]
    blkid = need_tool("blkid")
    probe = subprocess.run([blkid, "-p", "-o", "export", str(image)], capture_output=True,
                           text=True).stdout
    assert "PTTYPE=dos" in probe and "PTUUID=12345678" in probe


@pytest.mark.tool
@pytest.mark.parametrize(("sector", "size"), [(512, "64MiB"), (4096, "64MiB")])
def test_gpt_agrees_with_sfdisk_and_sgdisk_finds_no_problem(tmp_path: Path, sector: int,
                                                            size: str) -> None:
    image, plan = make(tmp_path, GPT_LAYOUT.replace("SIZE", size).replace("SECTOR",
                                                                          str(sector)))
    disk = plan["disk"]
    parts = disk["partitions"]
    # Tools read image files with 512-byte sectors; a 4096-byte disk is looked at through a
    # loop device of that sector size (sgdisk on the file would see no GPT and say so quietly).
    with contextlib.ExitStack() as stack:
        device = str(image) if sector == 512 else stack.enter_context(loop_device(image, sector))
        table = sfdisk_json(device)
        assert table["id"] == disk["guid"] and table["sectorsize"] == sector
        got = [(p["start"], p["size"], p["type"], p["uuid"], p["name"], p.get("attrs"))
               for p in table["partitions"]]
        assert got == [
            (parts[0]["start_lba"], 8 * 2**20 // sector, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
             parts[0]["uuid"], "EFI System", None),
            (parts[1]["start_lba"], 1 if sector == 4096 else 2,
             "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "01234567-89AB-CDEF-0123-456789ABCDEF",
             "root", "LegacyBIOSBootable GUID:60,63"),
            (parts[2]["start_lba"], parts[2]["size_sectors"],
             "0FC63DAF-8483-4772-8E79-3D69D8477DE4", parts[2]["uuid"], "data ünïcode", None),
        ]
        total = (64 << 20) // sector
        assert table["lastlba"] == total - 2 - 16384 // sector
        assert parts[2]["last_lba"] == table["lastlba"]
        sgdisk = need_tool("sgdisk")
        proc = subprocess.run([sgdisk, "-v", device], capture_output=True, text=True)
        assert proc.stderr == ""
        assert "No problems found." in proc.stdout
        assert "Creating new GPT entries" not in proc.stdout  # it did find our GPT
        blkid = need_tool("blkid")
        probe = subprocess.run([blkid, "-p", "-o", "export", device], capture_output=True,
                               text=True).stdout
        assert "PTTYPE=gpt" in probe and f"PTUUID={disk['guid'].lower()}" in probe


@pytest.mark.tool
def test_gpt_is_byte_identical_to_sgdisk(tmp_path: Path) -> None:
    """The formats.md §5.3 disk, made by sgdisk and by a layout saying the same."""
    sgdisk = need_tool("sgdisk")
    peer = tmp_path / "sgdisk.img"
    with open(peer, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run([sgdisk, "-U", "11111111-2222-3333-4444-555555555555",
                    "-n", "1:2048:+8M", "-t", "1:EF00", "-c", "1:EFI System",
                    "-u", "1:AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE", "-n", "2:0:0", "-t", "2:8304",
                    "-c", "2:root", "-u", "2:01234567-89AB-CDEF-0123-456789ABCDEF",
                    "-A", "2:set:2", str(peer)], check=True, capture_output=True)
    image, _ = make(tmp_path, """
schema = 1
[disk]
table = "gpt"
size = "32MiB"
guid = "11111111-2222-3333-4444-555555555555"
[[disk.partition]]
name = "EFI System"
type = "efi"
size = "8MiB"
uuid = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"
[[disk.partition]]
name = "root"
type = "linux-root-x86-64"
size = "rest"
uuid = "01234567-89AB-CDEF-0123-456789ABCDEF"
bootable = true
""")
    assert image.read_bytes() == peer.read_bytes()


@pytest.mark.tool
def test_mbr_is_byte_identical_to_sfdisk(tmp_path: Path) -> None:
    """sfdisk given our plan writes the same MBR, EBR chain and CHS bytes."""
    image, plan = make(tmp_path, MBR_LAYOUT)
    sfdisk = need_tool("sfdisk")
    disk = plan["disk"]
    lines = ["label: dos", "label-id: 0x12345678", ""]
    ext = disk["extended"]
    p1 = disk["partitions"][0]
    lines.append(f"start={p1['start_lba']}, size={p1['size_sectors']}, type=c, bootable")
    lines.append(f"start={ext['start_lba']}, size={ext['size_sectors']}, type=5")
    for p in disk["partitions"][1:]:
        lines.append(f"start={p['start_lba']}, size={p['size_sectors']}, type={p['type']}")
    peer = tmp_path / "sfdisk.img"
    with open(peer, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run([sfdisk, "-q", str(peer)], input="\n".join(lines) + "\n", text=True,
                   check=True, capture_output=True)
    ours = image.read_bytes()
    theirs = peer.read_bytes()
    sectors = [0] + [p["ebr_lba"] for p in disk["partitions"][1:]]
    for lba in sectors:
        assert ours[lba * 512:(lba + 1) * 512] == theirs[lba * 512:(lba + 1) * 512], lba


@pytest.mark.tool
def test_our_reader_agrees_with_sfdisk_on_disks_sfdisk_made(tmp_path: Path) -> None:
    sfdisk = need_tool("sfdisk")
    image = tmp_path / "peer.img"
    with open(image, "wb") as f:
        f.truncate(200 << 20)
    script = ("label: dos\nlabel-id: 0xcafe0001\n\n"
              "size=20MiB, type=c, bootable\nsize=10MiB, type=83\ntype=5\n"
              "size=8MiB, type=83\nsize=8MiB, type=82\nsize=8MiB, type=8e\nsize=9MiB, type=83\n")
    subprocess.run([sfdisk, "-q", str(image)], input=script, text=True, check=True,
                   capture_output=True)
    expected = sfdisk_json(image)
    with open(image, "rb") as f:
        table = read_disk(f)
    assert table.label == "dos" and table.id == expected["id"]
    assert [(p.number, p.start_lba, p.size_sectors, p.type, p.bootable)
            for p in table.partitions] == [
        (int(p["node"][len(str(image)):]), p["start"], p["size"], p["type"],
         p.get("bootable", False)) for p in expected["partitions"]]


@pytest.mark.tool
def test_our_reader_agrees_with_sfdisk_on_disks_sgdisk_made(tmp_path: Path) -> None:
    sgdisk = need_tool("sgdisk")
    image = tmp_path / "peer.img"
    with open(image, "wb") as f:
        f.truncate(100 << 20)
    subprocess.run([sgdisk, "-n", "1:0:+10M", "-t", "1:EF00", "-c", "1:ESP",
                    "-n", "2:0:+20M", "-t", "2:8300", "-c", "2:root", "-A", "2:set:2",
                    "-A", "2:set:60", "-n", "3:0:0", "-t", "3:8200", str(image)],
                   check=True, capture_output=True)
    expected = sfdisk_json(image)
    with open(image, "rb") as f:
        table = read_disk(f)
    assert table.id == expected["id"] and table.problems == []
    assert [(p.start_lba, p.size_sectors, p.type, p.extra["uuid"], p.name)
            for p in table.partitions] == [
        (p["start"], p["size"], p["type"], p["uuid"], p.get("name", "")) for p in
        expected["partitions"]]
    assert table.extra["firstlba"] == expected["firstlba"]
    assert table.extra["lastlba"] == expected["lastlba"]


@pytest.mark.tool
def test_sfdisk_sees_the_embr_legacy_entry(tmp_path: Path) -> None:
    image, _ = make(tmp_path, """
schema = 1
[disk]
table = "embr"
size = "16MiB"
[[disk.partition]]
name = "sys"
image = "root"
[image.root]
type = "romfs"
tree = "tree"
""")
    table = sfdisk_json(image)
    assert [(p["start"], p["size"], p["type"], p.get("bootable")) for p in
            table["partitions"]] == [(1, 32767, "e0", True)]
    with open(image, "rb") as f:
        ours = read_disk(f)
    assert ours.label == "embr" and ours.problems == []
    assert [(p.name, p.start_lba) for p in ours.partitions] == [("sys", 2048)]


@pytest.mark.tool
def test_hybrid_mbr_is_clean_for_sgdisk_and_listed_by_our_reader(tmp_path: Path) -> None:
    image, plan = make(tmp_path, """
schema = 1
[disk]
table = "gpt"
size = "32MiB"
[[disk.partition]]
name = "boot"
image = "boot"
type = "efi"
size = "8MiB"
hybrid = true
bootable = true
[[disk.partition]]
name = "rootfs"
image = "root"
hybrid = true
mbr-type = "0x83"
[[disk.partition]]
name = "data"
size = "rest"
[image.boot]
type = "romfs"
tree = "tree"
[image.root]
type = "romfs"
tree = "tree"
""")
    sgdisk = need_tool("sgdisk")
    proc = subprocess.run([sgdisk, "-v", str(image)], capture_output=True, text=True)
    assert proc.stderr == "" and "No problems found." in proc.stdout
    parts = plan["disk"]["partitions"]
    with open(image, "rb") as f:
        table = read_disk(f)
    assert table.label == "gpt" and len(table.partitions) == 3
    assert table.extra["hybrid_mbr"] == [
        {"start": parts[0]["start_lba"], "size": parts[0]["size_sectors"], "type": "ef",
         "bootable": True},
        {"start": parts[1]["start_lba"], "size": parts[1]["size_sectors"], "type": "83",
         "bootable": False},
    ]
    mbr = image.read_bytes()[0x1BE:0x1CE]
    assert mbr[4] == 0xEE and int.from_bytes(mbr[8:12], "little") == 1
    assert int.from_bytes(mbr[12:16], "little") == parts[0]["start_lba"] - 1


def test_embr_boot_code_is_placed_and_its_signature_area_guarded(tmp_path: Path) -> None:
    code = bytes([0x90]) * 0x1F2 + bytes(14) + bytes([0xCC]) * 1000   # LBA 1 and 2 more
    (tmp_path / "loader.bin").write_bytes(code)
    text = """
schema = 1
[disk]
table = "embr"
size = "8MiB"
boot-code = "loader.bin"
[[disk.partition]]
name = "p"
size = "1MiB"
"""
    image, plan = make(tmp_path, text)
    assert plan["disk"]["embr"]["header_lba"] == 4      # LBA 1-3 hold the 1512-byte code
    data = image.read_bytes()
    assert data[512:512 + 0x1F2] == code[:0x1F2]
    assert data[512 + 0x1F2:512 + 0x1FE] == b"EmbrrbmE" + bytes.fromhex("0400 0400")
    assert data[1024:1024 + 1000] == code[512:]
    assert data[4 * 512:4 * 512 + 4] == b"EMBR"
    (tmp_path / "loader.bin").write_bytes(bytes([0x90]) * 0x200)      # code over the block
    layout = tmp_path / "disk.toml"
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b2"), check=False)
    assert proc.returncode == 1
    assert "disk.boot-code" in proc.stderr and "signature block" in proc.stderr


def test_disk_part_targets_in_the_cli(tmp_path: Path) -> None:
    image, _ = make(tmp_path, MBR_LAYOUT)
    rows = json.loads(run_cli("ls", str(image), "--json").stdout)
    assert [(r["number"], r["filesystem"], r.get("volume")) for r in rows] == [
        (1, "romfs", "BOOTVOL"), (2, None, None), (5, "romfs", "rootvol"), (6, None, None),
        (7, None, None), (8, None, None)]
    assert run_cli("cat", f"{image}:5", "etc/hostname").stdout == "board\n"
    assert "etc/hostname" in run_cli("ls", f"{image}:1", "etc").stdout
    run_cli("extract", f"{image}:5", str(tmp_path / "out"))
    assert (tmp_path / "out" / "etc" / "hostname").read_text() == "board\n"
    table = json.loads(run_cli("inspect", str(image), "--json").stdout)["partitiontable"]
    assert table["label"] == "dos" and len(table["partitions"]) == 6
    for bad, words in ((f"{image}:9", "no partition '9'"), (str(image), "partitioned disk")):
        proc = run_cli("cat", bad, "etc/hostname", check=False)
        assert proc.returncode == 1 and words in proc.stderr and "Traceback" not in proc.stderr

"""[[disk.region]]: boot loader blobs at fixed offsets outside the partition table, and
disk.gpt-entries-lba / disk.gpt-entries, which make room for them on GPT disks. sfdisk and
sgdisk read the tables; the blob's bytes are where the layout says."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_tool, run_cli

HEAD = """schema = 1
[image.spl]
type = "raw"
file = "spl.bin"
[image.data]
type = "raw"
file = "data.bin"
[disk]
table = "{table}"
size = "8MiB"
{extra}
[[disk.region]]
name = "spl"
image = "spl"
start = "{start}"
{region}
[[disk.partition]]
name = "data"
image = "data"
"""


def _layout(tmp_path: Path, table: str, start: str = "8KiB", extra: str = "",
            region: str = "", blob: int = 24 << 10) -> Path:
    (tmp_path / "spl.bin").write_bytes(os.urandom(blob))
    (tmp_path / "data.bin").write_bytes(os.urandom(64 << 10))
    layout = tmp_path / f"{table}.toml"
    layout.write_text(HEAD.format(table=table, start=start, extra=extra, region=region))
    return layout


def _build(tmp_path: Path, layout: Path) -> Path:
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    return tmp_path / "build" / layout.stem / f"{layout.stem}.img"


def _sfdisk(disk: Path) -> dict[str, object]:
    out = subprocess.run([need_tool("sfdisk"), "--json", str(disk)], capture_output=True,
                         text=True, check=True).stdout
    table: dict[str, object] = json.loads(out)["partitiontable"]
    return table


@pytest.mark.tool
def test_region_on_mbr_disk(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "mbr", start="16s")
    disk = _build(tmp_path, layout).read_bytes()
    blob = (tmp_path / "spl.bin").read_bytes()
    assert disk[8192:8192 + len(blob)] == blob
    part = _sfdisk(tmp_path / "build" / "mbr" / "mbr.img")["partitions"]
    assert isinstance(part, list) and part[0]["start"] == 2048
    start = 2048 * 512
    assert disk[start:start + (64 << 10)] == (tmp_path / "data.bin").read_bytes()
    plan = json.loads(run_cli("plan", str(layout), "--json").stdout)
    plan = plan[0]
    assert plan["disk"]["regions"] == [{"name": "spl", "image": "spl", "start": 8192,
                                        "size": len(blob), "end": 8192 + len(blob),
                                        "image_bytes": len(blob)}]
    assert "region      8192..32767" in run_cli("plan", str(layout)).stdout


def test_region_over_the_gpt_array_is_refused_with_a_hint(tmp_path: Path) -> None:
    proc = run_cli("check", str(_layout(tmp_path, "gpt")), check=False)
    assert proc.returncode == 1
    assert "disk.region[0].start" in proc.stderr and "overlaps the gpt table's sectors at " \
        "LBA 2" in proc.stderr and "gpt-entries-lba" in proc.stderr


@pytest.mark.tool
@pytest.mark.parametrize("extra,array_lba,entries", [
    ("gpt-entries-lba = 2048\nalign = \"2MiB\"", 2048, 128),
    ("gpt-entries = 56", 2, 56),
])
def test_gpt_array_moved_or_shortened_for_a_region(tmp_path: Path, extra: str, array_lba: int,
                                                   entries: int) -> None:
    layout = _layout(tmp_path, "gpt", extra=extra)
    disk_path = _build(tmp_path, layout)
    disk = disk_path.read_bytes()
    assert disk[8192:8192 + (24 << 10)] == (tmp_path / "spl.bin").read_bytes()
    verify = subprocess.run([need_tool("sgdisk"), "-v", str(disk_path)], capture_output=True,
                            text=True).stdout
    assert "No problems found" in verify, verify
    printed = subprocess.run([need_tool("sgdisk"), "-p", str(disk_path)], capture_output=True,
                             text=True, check=True).stdout
    assert f"holds up to {entries} entries" in printed
    assert f"begins at sector {array_lba} " in printed
    table = _sfdisk(disk_path)
    parts = table["partitions"]
    assert isinstance(parts, list) and len(parts) == 1
    start = int(parts[0]["start"]) * 512
    assert disk[start:start + (64 << 10)] == (tmp_path / "data.bin").read_bytes()


@pytest.mark.parametrize("region,extra,message", [
    ("", "", "overlaps the MBR (sector 0)"),
    ("size = \"2MiB\"", "", "overlaps partition 'data'"),
    ("", "", "passes the end of the"),
    ("size = \"1KiB\"", "", "the region holds 1024"),
])
def test_region_overlaps_and_capacity(tmp_path: Path, region: str, extra: str,
                                      message: str) -> None:
    start = {"overlaps the MBR (sector 0)": "256", "passes the end of the": "8190KiB"}.get(
        message, "8KiB")
    layout = _layout(tmp_path, "mbr", start=start, extra=extra, region=region)
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr


def test_region_names_and_images_are_checked(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "mbr")
    text = layout.read_text()
    layout.write_text(text.replace('name = "spl"', 'name = "data"'))
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and "disk.region[0].name" in proc.stderr
    layout.write_text(text.replace('image = "spl"', 'image = "data"'))
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and "image 'data' is also in" in proc.stderr
    layout.write_text(text.replace('image = "spl"', 'image = "nope"'))
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and "no image named 'nope'" in proc.stderr


def test_changing_a_region_blob_patches_the_disk(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "mbr", region="size = \"64KiB\"")
    disk = _build(tmp_path, layout)
    blob = os.urandom(10 << 10)
    (tmp_path / "spl.bin").write_bytes(blob)
    doc = json.loads(run_cli("build", "--json", str(layout), "--build-dir",
                             str(tmp_path / "build")).stdout)
    assert doc["patched"] == ["mbr:disk"]
    data = disk.read_bytes()
    assert data[8192:8192 + len(blob)] == blob
    assert data[8192 + len(blob):8192 + (64 << 10)] == bytes((64 << 10) - len(blob))

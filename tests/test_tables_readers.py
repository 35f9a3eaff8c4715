"""Partition-table readers on damaged bytes: problems with offsets, FormatError, no crash."""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.engine.project import plan_project
from dfsbuild.engine.settings import Settings
from dfsbuild.errors import FormatError
from dfsbuild.tables.base import DiskTable
from dfsbuild.tables.mbr.records import MbrEntry
from tests.conftest import ROOT, read_disk, run_cli

LAYOUTS = {
    "mbr": '[disk]\ntable = "mbr"\nsize = "4MiB"\nalign = "64KiB"\n'
           '[[disk.partition]]\nname = "a"\nsize = "64KiB"\nbootable = true\n'
           '[[disk.partition]]\nname = "b"\nsize = "64KiB"\nlogical = true\n'
           '[[disk.partition]]\nname = "c"\nsize = "64KiB"\nlogical = true\n'
           '[[disk.partition]]\nname = "d"\nsize = "rest"\nlogical = true\n',
    "gpt": '[disk]\ntable = "gpt"\nsize = "4MiB"\nalign = "64KiB"\n'
           '[[disk.partition]]\nname = "a"\nsize = "64KiB"\n'
           '[[disk.partition]]\nname = "b"\nsize = "rest"\ntype = "swap"\n',
    "embr": '[disk]\ntable = "embr"\nsize = "4MiB"\nalign = "64KiB"\n'
            '[[disk.partition]]\nname = "a"\nsize = "64KiB"\n'
            '[[disk.partition]]\nname = "b"\nsize = "rest"\nhidden = true\n',
}


def disk_bytes(tmp_path: Path, kind: str) -> bytearray:
    layout = tmp_path / f"{kind}.toml"
    layout.write_text("schema = 1\n" + LAYOUTS[kind])
    plan = plan_project([str(layout)], Settings.from_env(str(tmp_path / "b")))[0]
    assert plan.disk is not None and plan.disk.placed is not None
    d = plan.disk.placed
    image = bytearray(d.size_bytes)
    for lba, data in d.structures:
        image[lba * d.sector_size:lba * d.sector_size + len(data)] = data
    return image


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("disks")
    return {kind: bytes(disk_bytes(base, kind)) for kind in LAYOUTS}


def read(data: bytes | bytearray) -> DiskTable:
    return read_disk(io.BytesIO(bytes(data)))


def test_clean_disks_read_back(disks: dict[str, bytes]) -> None:
    mbr, gpt, embr = read(disks["mbr"]), read(disks["gpt"]), read(disks["embr"])
    assert [p.number for p in mbr.partitions] == [1, 2, 5, 6, 7]
    assert [p.name for p in gpt.partitions] == ["a", "b"]
    assert [(p.name, p.extra["hidden"]) for p in embr.partitions] == [("a", False), ("b", True)]
    assert mbr.problems == gpt.problems == embr.problems == []


def test_a_damaged_primary_gpt_is_reported_and_the_backup_used(disks: dict[str, bytes]) -> None:
    clean = read(disks["gpt"])
    # The header CRC field is at 512 + 16; the array starts at LBA 2.
    for offset, reported in ((512 + 24, 512 + 16), (1024 + 5, 1024)):
        data = bytearray(disks["gpt"])
        data[offset] ^= 0xFF
        table = read(data)
        assert [(p.start_lba, p.size_sectors) for p in table.partitions] == \
            [(p.start_lba, p.size_sectors) for p in clean.partitions]
        assert len(table.problems) == 1 and "using the backup" in table.problems[0][1]
        assert table.problems[0][0] == reported


def test_both_gpt_copies_damaged_is_a_format_error(disks: dict[str, bytes]) -> None:
    data = bytearray(disks["gpt"])
    data[512 + 24] ^= 1
    data[len(data) - 512 + 24] ^= 1
    with pytest.raises(FormatError, match="both GPT headers are damaged"):
        read(data)


def test_a_damaged_backup_gpt_is_reported(disks: dict[str, bytes]) -> None:
    data = bytearray(disks["gpt"])
    data[len(data) - 512 + 40] ^= 1
    table = read(data)
    assert len(table.problems) == 1
    offset, message = table.problems[0]
    assert offset == len(data) - 512 + 16          # the backup header's CRC field
    assert message.startswith("backup GPT: header CRC32 mismatch")
    assert [p.name for p in table.partitions] == ["a", "b"]   # the primary was used


def _ebr_links(data: bytes) -> list[int]:
    table = read(data)
    return [int(str(p.extra["ebr_lba"])) for p in table.partitions if p.extra.get("logical")]


def test_an_ebr_chain_loop_is_a_format_error(disks: dict[str, bytes]) -> None:
    data = bytearray(disks["mbr"])
    ebrs = _ebr_links(data)
    ext_start = ebrs[0]
    last = ebrs[-1] * 512
    loop = MbrEntry.classic(0, 0x05, ebrs[1] - ext_start, 256, ext_start).pack()
    data[last + 0x1CE:last + 0x1DE] = loop
    with pytest.raises(FormatError, match="loops") as info:
        read(data)
    assert info.value.offset == ebrs[1] * 512


def test_an_ebr_outside_the_extended_partition_is_a_format_error(disks: dict[str, bytes]) -> None:
    data = bytearray(disks["mbr"])
    ebrs = _ebr_links(data)
    first = ebrs[0] * 512
    struct.pack_into("<I", data, first + 0x1CE + 8, 10**6)
    with pytest.raises(FormatError, match="outside the extended partition"):
        read(data)


def test_embr_crc_and_magic_damage(disks: dict[str, bytes]) -> None:
    data = bytearray(disks["embr"])
    header = 2 * 512
    data[header + 32 + 0x18] ^= 1          # a name byte: CRC no longer matches
    assert read(data).problems == [(header + 4, "eMBR header CRC-32 mismatch")]
    data[header] ^= 1                      # magic0
    with pytest.raises(FormatError, match="expected header magic") as info:
        read(data)
    assert info.value.offset == header


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(LAYOUTS)),
       edits=st.lists(st.tuples(st.integers(0, 3 * 512 - 1), st.integers(0, 255)), max_size=10),
       extra=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))
def test_mutated_tables_raise_only_format_error(disks: dict[str, bytes], kind: str,
                                                edits: list[tuple[int, int]],
                                                extra: list[tuple[int, int]]) -> None:
    data = bytearray(disks[kind])
    for offset, value in edits:
        data[offset] = value
    ebrs = [o for o in range(0, len(data), 512) if data[o + 510:o + 512] == b"\x55\xaa"][1:4]
    for (offset, value), ebr in zip(extra, ebrs * 4, strict=False):
        data[ebr + 0x1BE + offset % 64] = value
    with contextlib.suppress(FormatError):
        table = read(data)
        extended = [p for p in table.partitions if p.type in ("5", "f", "85")]
        for p in table.partitions:
            if p.extra.get("logical"):
                # every EBR the reader followed lies inside the extended partition
                ebr = int(str(p.extra["ebr_lba"]))
                assert extended[0].start_lba <= ebr <= extended[0].last_lba


def test_inspect_reports_gpt_damage_without_traceback(disks: dict[str, bytes],
                                                      tmp_path: Path) -> None:
    data = bytearray(disks["gpt"])
    data[512 + 24] ^= 0xFF
    image = tmp_path / "bad.img"
    image.write_bytes(bytes(data))
    proc = run_cli("inspect", str(image), check=False, cwd=ROOT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "problem at byte 528: primary GPT: header CRC32 mismatch" in proc.stdout
    assert "label: gpt" in proc.stdout

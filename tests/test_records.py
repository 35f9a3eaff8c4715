"""Every format's records keep the house's rule: a value the plan should have refused is a
bug (InternalError), never a ValueError that could pass for bad input; the FAT's placement
fix-ups come from its parsed boot sector, not from bare offsets."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from dfsbuild.errors import InternalError
from dfsbuild.images.cpio.records import CpioHeader
from dfsbuild.images.fat.records import BootSector, placed_fixes
from tests.conftest import run_cli


@pytest.mark.parametrize("fat", ["16", "32"])
def test_fat_records(tmp_path: Path, fat: str) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("x\n")
    image = tmp_path / "f.img"
    run_cli("mkfs", "fat", str(tmp_path / "t"), "-o", str(image), "--fat", fat,
            "--size", "40MiB" if fat == "32" else "16MiB")
    head = image.read_bytes()[:512]
    bs = BootSector.unpack(head)
    assert bs.pack() == head                         # the records round-trip
    with pytest.raises(InternalError):
        dataclasses.replace(bs, hidden=1 << 40).pack()
    fixes = placed_fixes(head, 2048 * 512)
    # BPB_HiddSec at byte 28 (and in FAT32's backup boot sector, sector 6).
    assert fixes[0] == (28, struct.pack("<I", 2048))
    assert [at for at, _ in fixes[1:]] == ([6 * 512 + 28] if fat == "32" else [])
    assert placed_fixes(head, 1000) == []            # not a whole number of sectors


def test_cpio_header_out_of_range_is_a_bug() -> None:
    header = CpioHeader(1, 0o100644, 0, 0, 1, 0, 10, 0, 0, 0, 0, 2)
    assert len(header.pack()) == 110
    with pytest.raises(InternalError):
        dataclasses.replace(header, filesize=1 << 32).pack()

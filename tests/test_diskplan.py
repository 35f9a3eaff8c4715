"""Disk planning: placement and its reasons, and every error naming both parties."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfsbuild.engine.project import plan_project, prepare
from dfsbuild.engine.settings import Settings
from dfsbuild.errors import CapacityError, LayoutError
from dfsbuild.layout.load import load_layout
from dfsbuild.plan import LayoutPlan

HEAD = 'schema = 1\n[image.small]\ntype = "raw"\nfile = "small.bin"\n'


def plan(tmp_path: Path, disk: str) -> LayoutPlan:
    (tmp_path / "small.bin").write_bytes(b"x" * 3000)
    layout = tmp_path / "d.toml"
    layout.write_text(HEAD + disk)
    lp = plan_project([str(layout)], Settings.from_env(str(tmp_path / "build")))[0]
    prepare([*lp.images.values(), *([lp.disk] if lp.disk is not None else [])])
    return lp


def part(name: str, **keys: object) -> str:
    body = "".join(f"{k.replace('_', '-')} = {v!r}\n".replace("'", '"')
                   if not isinstance(v, bool) else f"{k} = {str(v).lower()}\n"
                   for k, v in keys.items())
    return f'[[disk.partition]]\nname = "{name}"\n{body}'


def test_placement_and_reasons(tmp_path: Path) -> None:
    lp = plan(tmp_path, '[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", image="small")
              + part("b", size="1MiB", start="4MiB") + part("c", size="rest", type="swap"))
    assert lp.disk is not None and lp.disk.placed is not None
    rows = [(p.number, p.start_lba, p.size_sectors, p.reason) for p in lp.disk.placed.partitions]
    assert rows == [
        (1, 2048, 6, "aligned to 1MiB, first usable sector 1; fits image small (3000 bytes)"),
        (2, 8192, 2048, "start given; size given"),
        (3, 10240, 22528, "aligned to 1MiB, after b; rest of the disk"),
    ]


def test_auto_size_is_the_smallest_aligned_disk(tmp_path: Path) -> None:
    lp = plan(tmp_path, '[disk]\ntable = "gpt"\nalign = "64KiB"\n' + part("a", image="small"))
    assert lp.disk is not None and lp.disk.placed is not None
    d = lp.disk.placed
    # data at 128 (64 KiB), 6 sectors, then 33 sectors of backup GPT: 167 -> 256 sectors.
    assert (d.partitions[0].start_lba, d.total_sectors) == (128, 256)


ERRORS = [
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="4MiB")
     + part("b", size="1MiB", start="2MiB"),
     "disk.partition[1].start", "inside partition 'a' (sectors 2048..10239)"),
    ('[disk]\ntable = "mbr"\nsize = "4MiB"\n' + part("a", size="8MiB"),
     "disk.partition[0]", "past the last usable sector 8191"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", image="small", size="2KiB"),
     "disk.partition[0].size", "needs 3000 bytes; the partition holds 2048"),
    ('[disk]\ntable = "mbr"\nsize = "64MiB"\n' + "".join(part(n, size="1MiB") for n in "abcde"),
     "disk.partition", "5 primary partitions"),
    ('[disk]\ntable = "mbr"\nsize = "3TiB"\n' + part("a", size="1TiB") + part("b", size="1TiB")
     + part("c", size="rest"), "disk.partition[2]", "2^32 - 1 sectors"),
    ('[disk]\ntable = "gpt"\nsize = "16MiB"\n' + part("x" * 37, size="1MiB"),
     "disk.partition[0].name", "37 UTF-16 units; a GPT name holds 36"),
    ('[disk]\ntable = "embr"\nsize = "16MiB"\n' + part("é" * 32, size="1MiB"),
     "disk.partition[0].name", "64 bytes of UTF-8"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="1MiB", type="efi-system"),
     "disk.partition[0].type", "not an MBR type"),
    ('[disk]\ntable = "gpt"\nsize = "16MiB"\n' + part("a", size="1MiB", type="0x83"),
     "disk.partition[0].type", "not a GPT type"),
    ('[disk]\ntable = "embr"\nsize = "16MiB"\n' + part("a", size="1MiB", type="linux"),
     "disk.partition[0].type", "no type field"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="1MiB") + part("a", size="1MiB"),
     "disk.partition[1].name", "also the name of disk.partition[0]"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="rest") + part("b", size="1MiB"),
     "disk.partition[0].size", "only for the last partition"),
    ('[disk]\ntable = "mbr"\n' + part("a", size="rest"), "disk.partition[0].size",
     "needs a disk size"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="1MiB", logical=True)
     + part("b", size="1MiB") + part("c", size="1MiB", logical=True),
     "disk.partition[0].logical", "one after another"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a"), "disk.partition[0].size",
     "required for a partition without an image"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", image="nope"),
     "disk.partition[0].image", "no image named 'nope'"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="1000"),
     "disk.partition[0].size", "not a whole number of 512-byte sectors"),
    ('[disk]\ntable = "gpt"\nsize = "16MiB"\ndisk-id = "0x1"\n', "disk.disk-id",
     "applies to table = \"mbr\""),
    ('[disk]\ntable = "gpt"\nsize = "16MiB"\n' + part("a", size="1MiB", uuid="x"),
     "disk.partition[0].uuid", "not a GUID"),
    ('[disk]\ntable = "mbr"\nsize = "16MiB"\n' + part("a", size="1MiB", uuid="x"),
     "disk.partition[0].uuid", "applies to table = \"gpt\", not \"mbr\""),
    ('[disk]\ntable = "gpt"\nsize = "16MiB"\n' + part("a", size="1MiB", attributes=["shiny"]),
     "disk.partition[0].attributes", "'shiny' is not a GPT attribute"),
    ('[disk]\ntable = "embr"\nsize = "16MiB"\nspare-entries = 600\n',
     "disk.spare-entries", "legacy firmware loads at most 65536"),
]


@pytest.mark.parametrize(("disk", "key", "words"), ERRORS)
def test_planning_errors_name_the_key_and_both_parties(tmp_path: Path, disk: str, key: str,
                                                       words: str) -> None:
    with pytest.raises(LayoutError) as info:
        plan(tmp_path, disk)
    assert info.value.where == key
    assert words in info.value.message


def test_lba48_lifts_the_32_bit_limit_for_primaries(tmp_path: Path) -> None:
    lp = plan(tmp_path, '[disk]\ntable = "mbr"\nsize = "3TiB"\nlba48 = true\n'
              + part("a", size="2TiB") + part("b", size="rest"))
    assert lp.disk is not None and lp.disk.placed is not None
    assert lp.disk.placed.partitions[1].start_lba + lp.disk.placed.partitions[1].size_sectors == \
        3 << 31
    with pytest.raises(CapacityError, match="logical partitions cannot use 48-bit"):
        plan(tmp_path, '[disk]\ntable = "mbr"\nsize = "3TiB"\nlba48 = true\n'
             + part("a", size="2TiB") + part("b", size="rest", logical=True))


def test_the_layout_loader_sees_types_per_table(tmp_path: Path) -> None:
    layout = tmp_path / "t.toml"
    layout.write_text('schema = 1\n[disk]\ntable = "gpt"\n' + part("a", size="1MiB", type="swap",
                                                                    attributes=[0, "read-only"]))
    p = load_layout(str(layout)).disk.partitions[0]  # type: ignore[union-attr]
    assert p.options.type == "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
    assert p.options.attributes == (1 << 0) | (1 << 60)

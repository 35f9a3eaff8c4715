"""FAT layouts: names a FAT driver refuses and names that collide are clear errors naming
the paths; the label, serial, hidden sectors and read-only attribute come out as planned."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_tool, run_cli
from tests.fattree import MTOOLS_ENV, fsck


def _layout(tmp_path: Path, body: str) -> Path:
    layout = tmp_path / "fat.toml"
    layout.write_text("schema = 1\n[image.fs]\ntype = \"fat\"\ntree = \"src\"\n" + body)
    (tmp_path / "src").mkdir(exist_ok=True)
    return layout


def _fails(layout: Path, *words: str) -> str:
    proc = run_cli("build", str(layout), "--build-dir", str(layout.parent / "build"),
                   check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    return proc.stderr


@pytest.mark.parametrize(("names", "words"), [
    (["README", "Readme"], ["'README' and 'Readme' differ only in case"]),
    (["bad:name.txt"], ["'bad:name.txt'", "':'"]),
    (["trailing."], ["'trailing.'", "ends in a dot"]),
    (["ctl\x01char"], ["'\\x01'"]),
])
def test_names_a_fat_cannot_hold_are_errors(names: list[str], words: list[str],
                                            tmp_path: Path) -> None:
    layout = _layout(tmp_path, "")
    for name in names:
        (tmp_path / "src" / name).write_text("x")
    _fails(layout, "image.fs", *words)


def test_special_files_and_a_full_fat12_root_are_errors(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 'size = "1MiB"\n')
    os.symlink("target", tmp_path / "src" / "link")
    _fails(layout, "'link' is a symlink; FAT holds only files and directories")
    (tmp_path / "src" / "link").unlink()
    for i in range(600):
        (tmp_path / "src" / f"f{i}").write_text("")
    _fails(layout, "the root directory needs 600 entries", "fat = 32")


@pytest.mark.parametrize(("key", "words"), [
    ('label = "much too long label"', ["image.fs.label", "at most 11"]),
    ('label = "a*b"', ["image.fs.label", "'*'"]),
    ('serial = "nope"', ["image.fs.serial", "1234-ABCD"]),
    ('fat = 32\nsize = "8MiB"', ["no FAT32 layout fits"]),
    ('size = "64KiB"\n', ["clusters"]),
    ('reserve."absent" = "1MiB"', ["reserve.'absent'", "no such file"]),
    ('map = "nodir/map.txt"', ["map = 'nodir/map.txt'"]),
    ('cluster-size = 3000', ["image.fs.cluster-size", "power of two"]),
])
def test_bad_settings_name_the_key(key: str, words: list[str], tmp_path: Path) -> None:
    layout = _layout(tmp_path, key + "\n")
    (tmp_path / "src" / "data.bin").write_bytes(os.urandom(100_000))
    _fails(layout, *words)


@pytest.mark.tool
def test_label_serial_hidden_sectors_and_read_only(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 'label = "FIRMWARE"\nserial = "1234-ABCD"\n'
                     '[disk]\ntable = "mbr"\nsize = "8MiB"\n'
                     '[[disk.partition]]\nname = "fs"\nimage = "fs"\nstart = "2MiB"\n')
    ro = tmp_path / "src" / "readonly.txt"
    ro.write_text("do not touch\n")
    ro.chmod(0o444)
    (tmp_path / "src" / "rw.txt").write_text("fine\n")
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    image = tmp_path / "build" / "fat" / "fs.img"
    disk = tmp_path / "build" / "fat" / "fat.img"
    fsck(image)
    bare = json.loads(run_cli("inspect", "--json", str(image)).stdout)
    placed = json.loads(run_cli("inspect", "--json", f"{disk}:1").stdout)
    assert (bare["label"], bare["boot_label"], bare["serial"]) == ("FIRMWARE", "FIRMWARE",
                                                                    "1234-ABCD")
    assert bare["hidden_sectors"] == 0 and placed["hidden_sectors"] == 4096
    attrs = subprocess.run([need_tool("mattrib"), "-i", str(image), "::/readonly.txt",
                            "::/rw.txt"], capture_output=True, text=True, env=MTOOLS_ENV,
                           check=True).stdout.splitlines()
    assert "R" in attrs[0].split("::")[0] and "R" not in attrs[1].split("::")[0]

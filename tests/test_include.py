"""include = [...]: the MBR and GPT variants of one board share their image definitions;
paths in an included file are relative to it, its errors name it, and a name defined twice is
an error naming both files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

COMMON = """[vars]
label = "BOOT"
[image.boot]
type = "fat"
label = "${label}"
tree = "boot"
[image.root]
type = "romfs"
tree = "root"
"""

VARIANT = """schema = 1
include = ["common/board.toml"]
[disk]
table = "{table}"
[[disk.partition]]
name = "boot"
image = "boot"
type = "{ptype}"
[[disk.partition]]
name = "root"
image = "root"
"""


def _project(tmp_path: Path) -> list[Path]:
    common = tmp_path / "common"
    for d in ("boot", "root"):
        (common / d).mkdir(parents=True)
        (common / d / "f").write_text(f"{d}\n")
    (common / "boot" / "EFI" / "BOOT").mkdir(parents=True)     # the GPT variant's ESP
    (common / "boot" / "EFI" / "BOOT" / "BOOTX64.EFI").write_bytes(b"MZ")
    (common / "board.toml").write_text(COMMON)
    layouts = []
    for table, ptype in (("mbr", "fat32-lba"), ("gpt", "efi")):
        layout = tmp_path / f"board-{table}.toml"
        layout.write_text(VARIANT.format(table=table, ptype=ptype))
        layouts.append(layout)
    return layouts


def test_two_variants_share_their_images(tmp_path: Path) -> None:
    layouts = _project(tmp_path)
    build = tmp_path.parent / (tmp_path.name + "-b")
    run_cli("build", *map(str, layouts), "--build-dir", str(build), "--strict")
    plans = json.loads(run_cli("plan", "--json", *map(str, layouts), "--build-dir",
                               str(build)).stdout)
    keys = [{i["name"]: i["key"] for i in p["images"]} for p in plans]
    # The same romfs in both (one cache entry); a FAT's serial comes from the layout's seed.
    assert keys[0]["root"] == keys[1]["root"] and keys[0]["boot"] != keys[1]["boot"]
    for table in ("mbr", "gpt"):
        disk = build / f"board-{table}" / f"board-{table}.img"
        assert run_cli("cat", f"{disk}:2", "f").stdout == "root\n"
        info = json.loads(run_cli("inspect", "--json", f"{disk}:1").stdout)
        assert info["label"] == "BOOT"
    # The layout's --var reaches the included file.
    plan = json.loads(run_cli("plan", "--json", str(layouts[0]), "--var", "label=OTHER",
                              "--build-dir", str(build)).stdout)
    assert plan[0]["images"][0]["options"]["label"] == "OTHER"


def test_include_errors_name_the_files(tmp_path: Path) -> None:
    layouts = _project(tmp_path)
    text = layouts[0].read_text()
    layouts[0].write_text(text + '[image.root]\ntype = "raw"\nfile = "x"\n')
    proc = run_cli("check", str(layouts[0]), check=False)
    assert proc.returncode == 1
    assert "board.toml: image.root: is also defined in" in proc.stderr
    assert "board-mbr.toml" in proc.stderr
    layouts[0].write_text(text)
    common = tmp_path / "common" / "board.toml"
    common.write_text(COMMON.replace('tree = "root"', 'tree = "nowhere"'))
    proc = run_cli("check", str(layouts[0]), check=False)
    assert proc.returncode == 1 and "common/board.toml: image.root.tree" in proc.stderr
    common.write_text(COMMON + '[disk]\ntable = "mbr"\n')
    proc = run_cli("check", str(layouts[0]), check=False)
    assert proc.returncode == 1 and "holds only [image.NAME] tables" in proc.stderr
    common.write_text('include = ["../board-mbr.toml"]\n' + COMMON)
    proc = run_cli("check", str(layouts[0]), check=False)
    assert proc.returncode == 1 and "includes itself" in proc.stderr
    layouts[0].write_text(text.replace("common/board.toml", "common/absent.toml"))
    proc = run_cli("check", str(layouts[0]), check=False)
    # The error names the including layout, the include's index and the path it looked for.
    assert proc.returncode == 1 and f"{layouts[0]}: include[0]: 'common/absent.toml': no " \
        "such file (" in proc.stderr, proc.stderr
    assert "hint: include paths are relative" in proc.stderr

"""dfsbuild diff: partitions and files that differ between two disks or two images. The
changes are made by tools nobody here wrote (mtools, sfdisk) and diff must name exactly them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_tool, run_cli

LAYOUT = """schema = 1
[image.boot]
type = "fat"
tree = "boot"
size = "8MiB"
[image.root]
type = "romfs"
tree = "root"
[disk]
table = "mbr"
size = "32MiB"
[[disk.partition]]
name = "boot"
image = "boot"
type = "fat16-lba"
[[disk.partition]]
name = "root"
image = "root"
"""


def _disk(tmp_path: Path) -> Path:
    for d, files in (("boot", {"kernel": os.urandom(5000), "config.txt": b"a=1\n",
                               "old.txt": b"old\n"}), ("root", {"etc/hostname": b"box\n"})):
        for name, data in files.items():
            path = tmp_path / d / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    (tmp_path / "d.toml").write_text(LAYOUT)
    run_cli("build", str(tmp_path / "d.toml"), "--build-dir", str(tmp_path / "b"))
    return tmp_path / "b" / "d" / "d.img"


def _diff(a: Path | str, b: Path | str) -> tuple[int, dict[str, list[dict[str, object]]]]:
    proc = run_cli("diff", "--json", str(a), str(b), check=False)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.tool
def test_diff_names_what_mtools_and_sfdisk_changed(tmp_path: Path) -> None:
    a = _disk(tmp_path)
    code, found = _diff(a, a)
    assert code == 0 and found == {"partitions": [], "files": []}
    # Change the FAT partition's files with mtools (at the partition's offset).
    b = tmp_path / "b.img"
    shutil.copy(a, b)
    fat = f"{b}@@{2048 * 512}"
    (tmp_path / "config.txt").write_text("a=2\n")          # same size, other contents
    (tmp_path / "new.txt").write_text("new file\n")
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for cmd in (["mcopy", "-o", "-i", fat, str(tmp_path / "config.txt"), "::config.txt"],
                ["mcopy", "-i", fat, str(tmp_path / "new.txt"), "::new.txt"],
                ["mdel", "-i", fat, "::old.txt"]):
        subprocess.run([need_tool(cmd[0]), *cmd[1:]], check=True, env=env,
                       capture_output=True)
    code, found = _diff(a, b)
    assert code == 1 and found["partitions"] == []
    assert [(f["partition"], f["path"], f["change"]) for f in found["files"]] == [
        ("1", "config.txt", "changed"), ("1", "new.txt", "added"),
        ("1", "old.txt", "removed")]           # an MBR has no names: by number
    assert found["files"][0]["contents"] is True and "size" not in found["files"][0]
    # Move and retype the second partition with sfdisk.
    c = tmp_path / "c.img"
    shutil.copy(a, c)
    subprocess.run([need_tool("sfdisk"), "-q", "--part-type", str(c), "2", "da"], check=True,
                   capture_output=True)
    code, found = _diff(a, c)
    assert code == 1 and found["files"] == []
    assert found["partitions"] == [{"partition": "2", "change": "retyped", "a": "83",
                                    "b": "da"}]


def test_diff_of_two_filesystems_and_mixed_targets(tmp_path: Path) -> None:
    a = _disk(tmp_path)
    image = tmp_path / "b" / "d" / "root.img"
    code, found = _diff(f"{a}:2", image)
    assert code == 0 and found["files"] == []
    before = tmp_path / "root-before.img"
    shutil.copy(image, before)
    (tmp_path / "root" / "etc" / "hostname").write_text("other-box\n")
    os.chmod(tmp_path / "root" / "etc" / "hostname", 0o755)
    (tmp_path / "root" / "etc" / "motd").write_text("hi\n")
    run_cli("build", str(tmp_path / "d.toml"), "--build-dir", str(tmp_path / "b"))
    code, found = _diff(before, image)
    assert code == 1
    assert found["files"] == [
        {"path": "etc/hostname", "change": "changed", "size": [4, 10],
         "mode": ["0644", "0755"]},
        {"path": "etc/motd", "change": "added", "kind": "file"}]
    text = run_cli("diff", str(before), str(image), check=False).stdout
    assert "changed  /etc/hostname  (size 4 -> 10, mode 0644 -> 0755)" in text
    proc = run_cli("diff", str(a), str(image), check=False)
    assert proc.returncode == 1 and "one is a partitioned disk" in proc.stderr

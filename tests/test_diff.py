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


CARD = """schema = 1
[image.spl]
type = "raw"
file = "spl.bin"
[image.root]
type = "romfs"
tree = "root"
[disk]
table = "{table}"
size = "{size}"
{id_key} = "{disk_id}"
boot-code = "{boot}"
seed = "one card"
[[disk.region]]
name = "spl"
image = "spl"
start = "{spl_at}"
[[disk.partition]]
name = "root"
image = "root"
start = "1MiB"
"""


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_diff_compares_whole_disks(tmp_path: Path, table: str) -> None:
    """Two cards that differ only outside their partitions: a boot loader at 8 KiB, the boot
    code, the disk id, the size. Each is named (sfdisk reads the id), and the same card
    against itself is the same."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "hostname").write_text("box\n")
    (tmp_path / "spl.bin").write_bytes(os.urandom(3000))
    (tmp_path / "boot.bin").write_bytes(os.urandom(440))
    disk_id = "0x12345678" if table == "mbr" else "11111111-2222-3333-4444-555555555555"
    other_id = "0x12345679" if table == "mbr" else "11111111-2222-3333-4444-555555555556"
    spl_at = 8192 if table == "mbr" else 20480     # past the GPT's entries

    def card(name: str, size: str = "4MiB", ident: str = disk_id,
             spl: bytes | None = None, boot: str = "boot.bin") -> Path:
        if spl is not None:
            (tmp_path / "spl.bin").write_bytes(spl)
        (tmp_path / f"{name}.toml").write_text(CARD.format(
            table=table, size=size, disk_id=ident, boot=boot,
            id_key="disk-id" if table == "mbr" else "guid", spl_at=f"{spl_at}B"))
        run_cli("build", str(tmp_path / f"{name}.toml"), "--build-dir", str(tmp_path / "b"))
        return tmp_path / "b" / name / f"{name}.img"

    spl = (tmp_path / "spl.bin").read_bytes()
    a = card("a")
    assert _diff(a, card("same")) == (0, {"partitions": [], "files": []})
    changed = bytearray(spl)
    changed[1000] ^= 0xFF
    code, found = _diff(a, card("b", spl=bytes(changed)))
    sector = spl_at + 1000 // 512 * 512
    assert code == 1 and found["partitions"] == [
        {"partition": None, "change": "bytes", "at": [sector, sector + 512]}], found
    text = run_cli("diff", str(a), str(tmp_path / "b" / "b" / "b.img"), check=False).stdout
    assert f"disk bytes {sector}..{sector + 511} (outside the partitions) differ" in text
    (tmp_path / "boot2.bin").write_bytes(os.urandom(440))
    changes = {c["change"] for c in _diff(a, card("c", spl=spl, boot="boot2.bin"))[1][
        "partitions"]}
    assert changes == {"boot code"}
    sfdisk = json.loads(subprocess.run([need_tool("sfdisk"), "--json", str(card("d", ident=
                        other_id))], check=True, capture_output=True, text=True).stdout)
    found = _diff(a, tmp_path / "b" / "d" / "d.img")[1]["partitions"]
    assert {"partition": None, "change": "disk id", "a": disk_id.upper() if table == "gpt"
            else disk_id, "b": sfdisk["partitiontable"]["id"]} in found
    assert [c for c in found if c["change"] == "bytes"] == []  # the id is no stray byte
    bigger = _diff(a, card("e", size="6MiB"))[1]["partitions"]
    assert {"partition": None, "change": "size", "a": 4 << 20, "b": 6 << 20} in bigger
    # inspect and ls show the region: non-zero bytes outside partitions and structures.
    report = json.loads(run_cli("inspect", "--json", str(a)).stdout)
    assert report["outside_partitions"] == [{"start": spl_at, "size": 3072}]
    assert f"bytes {spl_at}..{spl_at + 3071}" in run_cli("ls", str(a)).stdout

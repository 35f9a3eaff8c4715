"""``boot-code`` on a FAT: a volume boot record's jump and code around dfsbuild's own BPB
(FAT32's backup boot sector too), judged by fsck.fat and mtools; a record made for another
FAT width is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fattree import fsck, mtools_files

LAYOUT = """schema = 1
[image.boot]
type = "fat"
fat = {fat}
size = "{size}"
tree = "tree"
boot-code = "vbr.bin"
"""


def _vbr(code_at: int) -> bytes:
    """A boot record as a loader's installer writes one: a short jump to its code, its own
    (here: garbage) BPB, the code, the signature."""
    vbr = bytearray(b"\xa5" * 512)
    vbr[0:3] = bytes([0xEB, code_at - 2, 0x90])
    vbr[code_at:510] = (bytes(range(256)) * 2)[:510 - code_at]
    vbr[510:512] = b"\x55\xaa"
    return bytes(vbr)


@pytest.mark.tool
@pytest.mark.parametrize("fat, size, code_at", [(16, "16MiB", 62), (32, "40MiB", 90)])
def test_the_code_goes_around_our_bpb(tmp_path: Path, fat: int, size: str,
                                      code_at: int) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "hello.txt").write_text("hello\n")
    vbr = _vbr(code_at)
    (tmp_path / "vbr.bin").write_bytes(vbr)
    layout = tmp_path / "b.toml"
    layout.write_text(LAYOUT.format(fat=fat, size=size))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    image = tmp_path / "b" / "b" / "boot.img"
    data = image.read_bytes()
    assert data[0:3] == vbr[0:3] and data[code_at:510] == vbr[code_at:510]
    assert data[3:code_at] != vbr[3:code_at]              # the BPB is ours
    if fat == 32:
        assert data[6 * 512:7 * 512] == data[:512]       # the backup boot sector
    fsck(image)
    assert mtools_files(image, tmp_path / "out")["hello.txt"] == b"hello\n"
    # Another record is another image: the key follows the file's contents.
    (tmp_path / "vbr.bin").write_bytes(vbr[:100] + b"\x5a" + vbr[101:])
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"))
    assert image.read_bytes()[100] == 0x5A


def test_a_record_for_another_fat_width_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "vbr.bin").write_bytes(_vbr(62))          # made for FAT12/16
    layout = tmp_path / "b.toml"
    layout.write_text(LAYOUT.format(fat=32, size="40MiB"))
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), check=False)
    assert proc.returncode == 1
    assert "boot-code: its first instruction lands at byte 62; on this FAT32 the code " \
        "starts at byte 90, after the BPB" in proc.stderr, proc.stderr
    (tmp_path / "vbr.bin").write_bytes(b"\x90" * 510 + b"\x55\xaa")
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), check=False)
    assert "boot-code: its first instruction is not a jump" in proc.stderr, proc.stderr
    (tmp_path / "vbr.bin").write_bytes(b"\xeb\x58\x90" + bytes(100))
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), check=False)
    assert "boot-code: 103 bytes; a volume boot record is 512 bytes ending 55 aa" in \
        proc.stderr, proc.stderr

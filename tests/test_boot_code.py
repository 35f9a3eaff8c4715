"""disk.boot-code: up to 440 bytes of boot code in sector 0 of an MBR disk and in a GPT's
protective MBR; the signature and the table stay dfsbuild's, as sfdisk and sgdisk read them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_tool, run_cli

LAYOUT = """schema = 1
[disk]
table = "{table}"
size = "8MiB"
boot-code = "code.bin"
[[disk.partition]]
name = "data"
size = "2MiB"
"""


def _build(tmp_path: Path, table: str, code: bytes) -> Path:
    (tmp_path / "code.bin").write_bytes(code)
    layout = tmp_path / f"{table}.toml"
    layout.write_text(LAYOUT.format(table=table))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    return tmp_path / "build" / table / f"{table}.img"


@pytest.mark.tool
@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_boot_code_goes_into_sector_0(table: str, tmp_path: Path) -> None:
    code = os.urandom(440)
    disk = _build(tmp_path, table, code)
    data = disk.read_bytes()
    assert data[:440] == code and data[510:512] == b"\x55\xaa"
    found = json.loads(subprocess.run([need_tool("sfdisk"), "--json", str(disk)],
                                      capture_output=True, text=True, check=True).stdout)
    parts = found["partitiontable"]["partitions"]
    assert found["partitiontable"]["label"] == ("dos" if table == "mbr" else "gpt")
    assert [p["size"] for p in parts] == [4096]
    if table == "gpt":
        out = subprocess.run([need_tool("sgdisk"), "-v", str(disk)], capture_output=True,
                             text=True).stdout
        assert "No problems found" in out
    # A new boot code is a new disk (its bytes are part of the key).
    again = _build(tmp_path, table, bytes(reversed(code)))
    assert again.read_bytes()[:440] == bytes(reversed(code))


def test_boot_code_over_440_bytes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "code.bin").write_bytes(bytes(441))
    layout = tmp_path / "mbr.toml"
    layout.write_text(LAYOUT.format(table="mbr"))
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and "disk.boot-code" in proc.stderr and "441 bytes" in \
        proc.stderr

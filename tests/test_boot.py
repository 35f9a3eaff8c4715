"""``dfsbuild boot`` with a stand-in for QEMU: it boots a copy (the disk is never written, the
copy is gone afterwards), stops as soon as the expected text appears, fails after the timeout
with the console's last lines, and names the package of a missing firmware. The real
firmware boots are in test_fsaspt.py."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest

from dfsbuild.boot import firmware
from tests.conftest import run_cli

FAKE = """#!/bin/sh
for a; do case "$a" in file=*) f=${a#file=}; f=${f%%,*};; esac; done
echo "$f" > "$SEEN"
echo "guest wrote this" >> "$f"
i=1
while [ $i -le 30 ]; do echo "console line $i"; i=$((i + 1)); done
echo "$SAY"
[ -n "$LINGER" ] && sleep "$LINGER"
exit "${STATUS:-0}"
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    qemu = tmp_path / "bin" / "qemu-system-x86_64"
    qemu.parent.mkdir()
    qemu.write_text(FAKE)
    qemu.chmod(0o755)
    (qemu.parent / "qemu-system-aarch64").symlink_to(qemu)
    disk = tmp_path / "disk.img"
    disk.write_bytes(os.urandom(4096))
    return {"PATH": f"{qemu.parent}:{os.environ['PATH']}", "SEEN": str(tmp_path / "seen"),
            "SAY": "READY", "LINGER": "", "DISK": str(disk)}


def _boot(env: dict[str, str], *args: str) -> tuple[int, str, str, float]:
    start = time.monotonic()
    proc = run_cli("boot", env["DISK"], "--firmware", "bios", *args, env=env, check=False)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


def test_it_stops_at_the_expected_text_and_never_writes_the_disk(fake: dict[str, str]) -> None:
    before = Path(fake["DISK"]).read_bytes()
    code, out, err, seconds = _boot({**fake, "LINGER": "30"}, "--expect", "READY")
    assert code == 0, err
    assert "console line 30" in out and "'READY' seen" in err
    assert seconds < 20                      # QEMU was stopped, not waited for
    copy = Path(Path(fake["SEEN"]).read_text().strip())
    assert copy != Path(fake["DISK"]) and not copy.exists()
    assert Path(fake["DISK"]).read_bytes() == before


def test_it_fails_after_the_timeout_with_the_last_lines(fake: dict[str, str]) -> None:
    code, _, err, _ = _boot({**fake, "LINGER": "30"}, "--expect", "NEVER", "--timeout", "2")
    assert code == 1
    assert "timed out after 2 s without 'NEVER'" in err
    assert "console line 30" in err and "console line 10\n" not in err   # the last 20


def test_without_expect_qemus_status_decides(fake: dict[str, str]) -> None:
    assert _boot(fake)[0] == 0
    code, _, err, _ = _boot({**fake, "STATUS": "3"})
    assert code == 1 and "QEMU ended (status 3)" in err


def test_json_reports_the_outcome_instead_of_the_console(fake: dict[str, str]) -> None:
    code, out, _, _ = _boot(fake, "--expect", "READY", "--json")
    data = json.loads(out)
    assert code == 0 and data["seen"] is True and data["firmware"] == "bios"
    assert data["tail"][-1] == "READY" and len(data["tail"]) == 20


def test_a_missing_firmware_names_its_package(fake: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(firmware.FIRMWARE, "uefi", dataclasses.replace(
        firmware.FIRMWARE["uefi"], files=("/nonexistent/OVMF.fd",)))
    proc = run_cli("boot", fake["DISK"], "--firmware", "uefi", env=fake, check=False)
    assert proc.returncode == 1
    assert "no uefi firmware at /nonexistent/OVMF.fd" in proc.stderr
    assert "install the Debian package ovmf" in proc.stderr
    assert not Path(fake["SEEN"]).exists()           # QEMU never started


def test_kernel_mode_needs_its_files_and_append_is_only_for_it(fake: dict[str, str]) -> None:
    proc = run_cli("boot", fake["DISK"], "--firmware", "kernel", env=fake, check=False)
    assert proc.returncode == 1 and "needs --kernel and --initrd" in proc.stderr
    proc = run_cli("boot", fake["DISK"], "--firmware", "bios", "--append", "quiet", env=fake,
                   check=False)
    assert proc.returncode == 1 and "--append is for --firmware kernel" in proc.stderr
    proc = run_cli("boot", "nothing.img", "--firmware", "bios", env=fake, check=False)
    assert proc.returncode == 1 and "nothing.img: no such disk image or layout" in proc.stderr


def test_a_layout_is_built_first_and_its_disk_booted(fake: dict[str, str],
                                                     tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "hello").write_text("hello\n")
    layout = tmp_path / "card.toml"
    layout.write_text('schema = 1\n[image.root]\ntype = "romfs"\ntree = "tree"\n'
                      '[disk]\ntable = "mbr"\n[[disk.partition]]\nname = "root"\n'
                      'image = "root"\n')
    build = tmp_path / "build"
    proc = run_cli("boot", f"{layout}:disk", "--firmware", "bios", "--expect", "READY",
                   "--build-dir", str(build), env=fake, check=False)
    assert proc.returncode == 0, proc.stderr
    disk = build / "card" / "card.img"
    copy = Path(Path(fake["SEEN"]).read_text().strip())
    assert copy.name == disk.name and copy != disk and not copy.exists()
    assert b"guest wrote this" not in disk.read_bytes()
    assert run_cli("ls", f"{disk}:1").stdout.split()[-1] == "hello"


def test_save_disk_keeps_what_the_guest_wrote_and_never_overwrites(fake: dict[str, str],
                                                                  tmp_path: Path) -> None:
    saved = tmp_path / "after.img"
    code, _, err, _ = _boot(fake, "--expect", "READY", "--save-disk", str(saved))
    assert code == 0, err
    assert saved.read_bytes().endswith(b"guest wrote this\n")
    assert b"guest wrote this" not in Path(fake["DISK"]).read_bytes()
    code, _, err, _ = _boot(fake, "--expect", "READY", "--save-disk", str(saved))
    assert code == 1 and "after.img: exists; --save-disk never overwrites a file" in err


def test_the_raspberry_pi_takes_only_a_power_of_two_card(fake: dict[str, str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    uboot = tmp_path / "u-boot.bin"
    uboot.write_bytes(b"u-boot")
    monkeypatch.setitem(firmware.FIRMWARE, "rpi3", dataclasses.replace(
        firmware.FIRMWARE["rpi3"], files=(str(uboot),)))
    Path(fake["DISK"]).write_bytes(bytes(4096 + 512))
    proc = run_cli("boot", fake["DISK"], "--firmware", "rpi3", env=fake, check=False)
    assert proc.returncode == 1
    assert "4608 bytes; QEMU's Raspberry Pi takes only SD cards whose size is a power of " \
        "two" in proc.stderr and not Path(fake["SEEN"]).exists()
    Path(fake["DISK"]).write_bytes(bytes(8192))
    proc = run_cli("boot", fake["DISK"], "--firmware", "rpi3", "--expect", "READY",
                   env=fake, check=False)
    assert proc.returncode == 0, proc.stderr

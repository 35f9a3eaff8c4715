"""The filesystem as partition table, judged by the kernel (QEMU, no KVM): the bundled
layouts/fsaspt*.toml boot to root.img through a busybox initramfs and the FAT's /boot/init;
the menus answer on the serial console (root-b, an EROFS, boots as the root); upgrading is
copying a file; the boot counter in the TrivialFS environment counts; one changed rootfs file
rebuilds the root image, the FAT and the disk, nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.fattree import fsck
from tests.qemu import converse, qemu_command

VMLINUZ = ROOT / "samples" / "fsaspt" / "kernel" / "vmlinuz"
FAST = "fsaspt.wait=0 fsaspt.poweroff=1"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not VMLINUZ.exists():
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-kernel")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            from tests.qemu import unavailable
            unavailable(f"scripts/fetch-kernel failed: {proc.stderr.strip()}")
    build = tmp_path_factory.mktemp("fsaspt") / "build"
    layouts = [str(ROOT / "layouts" / f"{n}.toml") for n in ("fsaspt", "fsaspt-mbr",
                                                            "fsaspt-gpt")]
    run_cli("build", *layouts, "--build-dir", str(build))
    return build


def _copy(built: Path, variant: str, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of a variant's disk (the guest writes to it) and its initramfs."""
    disk = tmp_path / f"{variant}.img"
    shutil.copy(built / variant / f"{variant}.img", disk)
    return disk, built / variant / "initramfs.img"


def _boot(disk: Path, initrd: Path, append: str = FAST,
          steps: list[tuple[str, str]] | None = None) -> str:
    return converse(qemu_command(VMLINUZ, initrd, [(disk, 512)], writable=True, append=append),
                    steps or [])


def _env_count(disk: Path, target: str, tmp_path: Path) -> str:
    env = tmp_path / "env.img"
    env.write_bytes(subprocess.run(["python3", "-m", "dfsbuild", "cat", target, "env.img"],
                                   capture_output=True, check=True, cwd=ROOT).stdout)
    return run_cli("cat", str(env), "boot/count").stdout.rstrip("\0\n")


def _part(disk: Path, variant: str) -> str:
    return str(disk) if variant == "fsaspt" else f"{disk}:1"


@pytest.mark.tool
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fsaspt", "fsaspt-mbr", "fsaspt-gpt"])
def test_each_variant_boots_root_img(variant: str, built: Path, tmp_path: Path) -> None:
    disk, initrd = _copy(built, variant, tmp_path)
    console = _boot(disk, initrd)
    assert "fsaspt-root: root-a is running" in console, console[-3000:]
    assert "root.img mounted through the offset path (romfs)" in console
    mounts = [line.split()[1:] for line in console.splitlines()
              if line.startswith("fsaspt-mount:")]
    assert ["/", "romfs"] in [m[1:] for m in mounts]
    assert any(m[0].startswith("/dev/loop") and m[1:] == ["/", "romfs"] for m in mounts)
    assert ["/boot", "vfat"] in [m[1:] for m in mounts]
    # The boot counter went from 0 to 1, written in place: the FAT stays clean.
    assert _env_count(disk, _part(disk, variant), tmp_path) == "1"
    if variant == "fsaspt":
        fsck(disk)


@pytest.mark.tool
@pytest.mark.slow
def test_the_menus_answer_on_the_serial_console(built: Path, tmp_path: Path) -> None:
    disk, initrd = _copy(built, "fsaspt-mbr", tmp_path)
    console = _boot(disk, initrd, "fsaspt.wait=4 fsaspt.poweroff=1",
                    [("press a key to choose", "x"), ("image number:", "2\n")])
    assert "fsaspt-root: root-b is running" in console, console[-3000:]
    # root-b is an EROFS, the kernel's own reader mounting dfsbuild's image as the root
    assert "root-b.img mounted through the offset path (erofs)" in console
    mounts = [line.split()[1:] for line in console.splitlines()
              if line.startswith("fsaspt-mount:")]
    assert any(m[0].startswith("/dev/loop") and m[1:] == ["/", "erofs"] for m in mounts)
    console = _boot(disk, initrd, "fsaspt.wait=4",
                    [("for the menu", "x"), ("rescue shell", "1\n"),
                     ("(exit to go on)", "echo RESCUE-$((40 + 2)); poweroff -f\n")])
    assert "RESCUE-42" in console, console[-3000:]
    assert _env_count(disk, f"{disk}:1", tmp_path) == "1"     # the rescue boot stopped in stage 1


@pytest.mark.tool
@pytest.mark.slow
def test_upgrading_is_copying_a_file(built: Path, tmp_path: Path) -> None:
    disk, initrd = _copy(built, "fsaspt-mbr", tmp_path)
    new = built / "fsaspt-mbr" / "root-b.img"
    run_cli("put", f"{disk}:1", "root.img", str(new))
    console = _boot(disk, initrd)
    # The map from the build no longer describes root.img: the vfat path takes over.
    assert "root.img mounted through the vfat path (erofs)" in console, console[-3000:]
    assert "fsaspt-root: root-b is running" in console
    rows = json.loads(run_cli("ls", str(disk), "--json").stdout)
    start, size = rows[0]["start"] * 512, rows[0]["size"] * 512
    part = tmp_path / "part.img"
    with open(disk, "rb") as f:
        f.seek(start)
        part.write_bytes(f.read(size))
    fsck(part)


def test_one_changed_root_file_rebuilds_root_fat_and_disk_only(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "layouts").mkdir(parents=True)
    shutil.copy(ROOT / "layouts" / "fsaspt.toml", project / "layouts")
    shutil.copytree(ROOT / "samples" / "fsaspt", project / "samples" / "fsaspt", symlinks=True)
    if not (project / "samples" / "fsaspt" / "kernel" / "vmlinuz").exists():
        (project / "samples" / "fsaspt" / "kernel").mkdir(parents=True, exist_ok=True)
        (project / "samples" / "fsaspt" / "kernel" / "vmlinuz").write_bytes(b"stand-in")
    run_cli("build", "--no-cache", cwd=project)
    (project / "samples" / "fsaspt" / "root-a.name").write_text("root-a, edited\n")
    report = json.loads(run_cli("build", "--no-cache", "--json", cwd=project).stdout)
    assert sorted(report["built"]) == ["fsaspt:image.boot", "fsaspt:image.root"]
    assert report["patched"] == ["fsaspt:disk"]         # the FAT's region rewritten in place
    assert sorted(report["up_to_date"]) == ["fsaspt:image.env", "fsaspt:image.initramfs",
                                            "fsaspt:image.root-b"]
    if VMLINUZ.exists():                     # and the rebuilt disk boots the edited image
        build = project / "build" / "fsaspt"
        disk = tmp_path / "disk.img"
        shutil.copy(build / "fsaspt.img", disk)
        console = _boot(disk, build / "initramfs.img")
        assert "fsaspt-root: root-a, edited is running" in console, console[-3000:]
        fsck(disk)


@pytest.mark.tool
@pytest.mark.slow
def test_a_fragmented_root_img_boots_through_vfat(built: Path, tmp_path: Path) -> None:
    disk, initrd = _copy(built, "fsaspt-mbr", tmp_path)
    info = json.loads(run_cli("inspect", "--json", f"{disk}:1").stdout)
    last = max(r[0] + r[1] for e in info["entries"] for r in e.get("clusters", []))
    cluster = info["cluster_size"]
    tail = info["clusters"] + 2 - last                  # the free run after every file
    filler = tmp_path / "filler"
    filler.write_bytes(bytes((tail - (1 << 20) // cluster) * cluster))
    run_cli("put", f"{disk}:1", "filler.bin", str(filler))
    # Free now: the 1 MiB reserve and 1 MiB at the end; root-b.img (1.9 MB) needs both.
    proc = run_cli("put", f"{disk}:1", "root.img", str(built / "fsaspt-mbr" / "root-b.img"),
                   check=False)
    assert proc.returncode == 1 and "--fragment" in proc.stderr
    run_cli("put", f"{disk}:1", "root.img", str(built / "fsaspt-mbr" / "root-b.img"),
            "--fragment")
    mapped = json.loads(run_cli("map", f"{disk}:1", "--json").stdout)
    assert [f["contiguous"] for f in mapped["files"] if f["path"] == "root.img"] == [False]
    console = _boot(disk, initrd)
    assert "root.img mounted through the vfat path" in console, console[-3000:]
    assert "fsaspt-root: root-b is running" in console


def test_boot_sample_boots_a_copy_and_removes_it(tmp_path: Path) -> None:
    """scripts/boot-sample hands QEMU a temporary copy of the built disk (never build/'s),
    passes FSASPT_WAIT, returns QEMU's status and leaves no copy behind."""
    fake = tmp_path / "bin" / "qemu-system-x86_64"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor a; do case "$a" in file=*) f=${a#file=}; f=${f%%,*};; '
                    'esac; done\necho "$f $*" > "$SEEN"; test -s "$f" || exit 9; exit 3\n')
    fake.chmod(0o755)
    temp = tmp_path / "tmp"
    temp.mkdir()
    seen = tmp_path / "seen"
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "TMPDIR": str(temp),
           "SEEN": str(seen), "FSASPT_WAIT": "0"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "boot-sample"), "fsaspt-mbr"],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 3, proc.stderr
    copy, args = seen.read_text().split(" ", 1)
    assert Path(copy).parent.parent == temp and "fsaspt.wait=0" in args
    assert not Path(copy).exists() and list(temp.iterdir()) == []


def _upgraded(saved: Path, new_root: Path, firmware: str) -> None:
    """Upgrading is copying a file on this firmware too: root-b's image put as root.img on
    the disk the first boot left, booted again; the map no longer describes root.img, so the
    vfat path takes it."""
    run_cli("put", f"{saved}:1", "root.img", str(new_root))
    proc = run_cli("boot", str(saved), "--firmware", firmware, "--timeout", "300",
                   "--expect", "fsaspt-root: root-b is running", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "root.img mounted through the vfat path" in proc.stdout


@pytest.mark.tool
@pytest.mark.slow
def test_the_gpt_sample_boots_from_its_disk_alone_under_uefi(built: Path,
                                                              tmp_path: Path) -> None:
    """No -kernel, no -initrd: OVMF runs systemd-boot from the ESP's fallback path, which
    starts the FAT's kernel with its initramfs, and the kernel mounts root.img. The loader
    entry is first replaced with `dfsbuild put` on a copy (no menu waits), and `dfsbuild
    boot` boots a copy of that."""
    if not os.path.isfile("/usr/share/ovmf/OVMF.fd"):
        from tests.qemu import unavailable
        unavailable("OVMF (package ovmf) is not installed")
    disk, _ = _copy(built, "fsaspt-gpt", tmp_path)
    entry = tmp_path / "fsaspt.conf"
    sample = (ROOT / "samples" / "fsaspt" / "efi" / "entries" / "fsaspt.conf").read_text()
    entry.write_text(sample.replace("quiet", "quiet fsaspt.wait=0"))
    run_cli("put", f"{disk}:1", "loader/entries/fsaspt.conf", str(entry))
    saved = tmp_path / "after.img"
    proc = run_cli("boot", str(disk), "--firmware", "uefi", "--timeout", "240",
                   "--expect", "fsaspt-mount: /dev/loop0 / romfs", "--save-disk", str(saved),
                   check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _env_count(saved, f"{saved}:1", tmp_path) == "1"     # the boot counter counted
    assert "fsaspt-root: root-a is running" in proc.stdout
    assert "root.img mounted through the offset path" in proc.stdout
    assert "fsaspt: booting root.img in 0s" in proc.stdout          # the entry put there
    _upgraded(saved, built / "fsaspt-gpt" / "root-b.img", "uefi")


BOARDS = {  # layout -> (scripts/fetch-kernel --arch, firmware, its file, its package)
    "fsaspt-arm64": ("arm64", "uboot-arm64", "/usr/lib/u-boot/qemu_arm64/u-boot.bin",
                     "u-boot-qemu"),
    "fsaspt-rpi3": ("rpi3", "rpi3", "/usr/lib/u-boot/rpi_3/u-boot.bin", "u-boot-rpi:arm64"),
}


@pytest.mark.tool
@pytest.mark.slow
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_arm64_cards_boot_from_their_disks_alone_under_u_boot(board: str,
                                                                  tmp_path: Path) -> None:
    """U-Boot's distro boot finds extlinux/extlinux.conf on the bootable FAT (partition 1),
    loads the arm64 kernel (and the devicetree, on the Raspberry Pi) and the initramfs from
    it, and the kernel mounts root.img: on QEMU's -M virt (virtio disk), and on its Raspberry
    Pi 3B (-M raspi3b: the card on the SD controller, /dev/mmcblk0p1). extlinux.conf is
    first given fsaspt.wait=0 with `dfsbuild put` on a copy; the boot counter counts."""
    from tests.qemu import unavailable

    arch, firmware, firmware_file, package = BOARDS[board]
    if not (ROOT / "samples" / "fsaspt" / arch / "Image").exists():
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-kernel"), "--arch",
                               arch], capture_output=True, text=True)
        if proc.returncode != 0:
            unavailable(f"scripts/fetch-kernel --arch {arch} failed: {proc.stderr.strip()}")
    if not os.path.isfile(firmware_file) or shutil.which("qemu-system-aarch64") is None:
        unavailable(f"U-Boot for {firmware} ({package}, qemu-system-arm) is not installed")
    build = tmp_path / "build"
    run_cli("build", str(ROOT / "layouts" / "boards" / f"{board}.toml"),
            "--build-dir", str(build))
    disk = tmp_path / "card.img"
    shutil.copy(build / board / f"{board}.img", disk)
    conf = tmp_path / "extlinux.conf"
    conf.write_text(run_cli("cat", f"{disk}:1", "extlinux/extlinux.conf").stdout.replace(
        "quiet", "quiet fsaspt.wait=0"))
    run_cli("put", f"{disk}:1", "extlinux/extlinux.conf", str(conf))
    saved = tmp_path / "after.img"
    proc = run_cli("boot", str(disk), "--firmware", firmware, "--timeout", "300",
                   "--expect", "fsaspt-mount: /dev/loop0 / romfs", "--save-disk", str(saved),
                   check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Retrieving file: /vmlinuz" in proc.stdout            # U-Boot loaded it
    assert "fsaspt-root: root-a is running" in proc.stdout
    assert "root.img mounted through the offset path" in proc.stdout
    assert "fsaspt: booting root.img in 0s" in proc.stdout
    device = "/dev/mmcblk0p1" if firmware == "rpi3" else "/dev/vda1"
    assert f"fsaspt-mount: {device} /boot vfat" in proc.stdout
    assert _env_count(saved, f"{saved}:1", tmp_path) == "1"     # the boot counter counted
    _upgraded(saved, build / board / "root-b.img", firmware)


@pytest.mark.tool
@pytest.mark.slow
def test_the_bios_card_boots_from_its_disk_alone_under_seabios(built: Path,
                                                               tmp_path: Path) -> None:
    """SeaBIOS runs sector 0: GRUB's boot.img code, which loads core.img from the gap before
    the first partition (both placed and patched by dfsbuild, no installer run), which reads
    boot/grub/grub.cfg from the FAT and starts the kernel; the kernel mounts root.img. The
    disk is built twice, the same bytes. grub.cfg is first given fsaspt.wait=0 with `dfsbuild
    put` on a copy; the boot counter counts."""
    from tests.qemu import unavailable

    core = ROOT / "samples" / "fsaspt" / "grub" / "core.img"
    if not core.exists():
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "make-grub")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            unavailable(f"scripts/make-grub failed: {proc.stderr.strip()}")
    layout = str(ROOT / "layouts" / "boards" / "fsaspt-bios.toml")
    for build in ("b1", "b2"):
        run_cli("build", layout, "--build-dir", str(tmp_path / build))
    disk = tmp_path / "card.img"
    shutil.copy(tmp_path / "b1" / "fsaspt-bios" / "fsaspt-bios.img", disk)
    assert disk.read_bytes() == \
        (tmp_path / "b2" / "fsaspt-bios" / "fsaspt-bios.img").read_bytes()
    conf = tmp_path / "grub.cfg"
    conf.write_text(run_cli("cat", f"{disk}:1", "boot/grub/grub.cfg").stdout.replace(
        "quiet", "quiet fsaspt.wait=0"))
    run_cli("put", f"{disk}:1", "boot/grub/grub.cfg", str(conf))
    saved = tmp_path / "after.img"
    proc = run_cli("boot", str(disk), "--firmware", "bios", "--timeout", "240",
                   "--expect", "fsaspt-mount: /dev/loop0 / romfs", "--save-disk", str(saved),
                   check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "grub: starting the kernel" in proc.stdout
    assert "fsaspt-root: root-a is running" in proc.stdout
    assert "root.img mounted through the offset path" in proc.stdout
    assert "fsaspt: booting root.img in 0s" in proc.stdout
    assert _env_count(saved, f"{saved}:1", tmp_path) == "1"     # the boot counter counted
    _upgraded(saved, tmp_path / "b1" / "fsaspt-bios" / "root-b.img", "bios")

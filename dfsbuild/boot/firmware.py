"""The firmware ``dfsbuild boot`` starts a disk with, and the QEMU command for each.

Each firmware is found at its Debian paths; a missing one is an error that names the package
to install. Facts behind each command: ``reference/firmware.md`` of the design documents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dfsbuild.errors import DfsbuildError


@dataclass(frozen=True, slots=True)
class Firmware:
    """One way to boot: its QEMU, the firmware file (None: QEMU's own), and what to say."""

    name: str
    help: str
    qemu: str                    # the QEMU binary
    qemu_package: str
    files: tuple[str, ...] = ()  # candidate paths of the firmware file, first found wins
    package: str = ""            # the Debian package that holds it
    flag: str = "-bios"
    machine: tuple[str, ...] = ()   # QEMU's machine and CPU
    memory_mib: int = 512
    drive: str = "if=virtio"        # how the disk is attached
    serial: tuple[str, ...] = ()    # where the console is, when not the first serial port


FIRMWARE = {
    f.name: f for f in (
        Firmware("uefi", "OVMF (x86-64 UEFI): boots the EFI system partition's "
                 "EFI/BOOT/BOOTX64.EFI", "qemu-system-x86_64", "qemu-system-x86",
                 ("/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"), "ovmf"),
        Firmware("uboot-arm64", "U-Boot on QEMU's arm64 -M virt: distro boot reads "
                 "extlinux/extlinux.conf from the bootable partition (else partition 1)",
                 "qemu-system-aarch64", "qemu-system-arm",
                 ("/usr/lib/u-boot/qemu_arm64/u-boot.bin",), "u-boot-qemu",
                 machine=("-M", "virt", "-cpu", "cortex-a57"), memory_mib=1024),
        Firmware("rpi3", "U-Boot on QEMU's Raspberry Pi 3B (-M raspi3b), in place of the GPU "
                 "firmware's kernel: the disk is the SD card (a power-of-two size), the "
                 "console the mini UART (Linux's ttyS1)", "qemu-system-aarch64",
                 "qemu-system-arm", ("/usr/lib/u-boot/rpi_3/u-boot.bin",),
                 "u-boot-rpi:arm64", flag="-kernel", machine=("-M", "raspi3b"),
                 memory_mib=1024, drive="if=sd", serial=("-serial", "null", "-serial",
                                                         "mon:stdio")),
        Firmware("bios", "SeaBIOS (QEMU's own PC BIOS): boots the boot code in sector 0",
                 "qemu-system-x86_64", "qemu-system-x86"),
        Firmware("kernel", "no firmware: QEMU loads --kernel and --initrd itself and gives "
                 "the disk as a virtio drive", "qemu-system-x86_64", "qemu-system-x86"),
    )
}


def command(firmware: Firmware, disk: str, memory_mib: int | None = None,
            kernel: str | None = None, initrd: str | None = None,
            append: str = "") -> list[str]:
    """The QEMU command booting ``disk`` (writable: pass a copy) on the serial console, with
    the firmware's memory unless ``memory_mib`` says otherwise."""
    import shutil  # not on every command's start (the parser names these)

    qemu = shutil.which(firmware.qemu)
    if qemu is None:
        raise DfsbuildError(f"{firmware.qemu} is not installed",
                            hint=f"install the Debian package {firmware.qemu_package}")
    cmd = [qemu, *firmware.machine, "-m", str(memory_mib or firmware.memory_mib),
           "-nographic", "-no-reboot", *firmware.serial]
    if firmware.files:
        found = next((f for f in firmware.files if os.path.isfile(f)), None)
        if found is None:
            raise DfsbuildError(f"no {firmware.name} firmware at {' or '.join(firmware.files)}",
                                hint=f"install the Debian package {firmware.package}")
        cmd += [firmware.flag, found]
    if firmware.name == "rpi3":
        size = os.path.getsize(disk)
        if size & (size - 1):
            raise DfsbuildError(f"{disk}: {size} bytes; QEMU's Raspberry Pi takes only SD "
                                "cards whose size is a power of two",
                                hint="give the layout's disk such a size (size = \"128MiB\")")
    if firmware.name == "kernel":
        if kernel is None or initrd is None:
            raise DfsbuildError("--firmware kernel needs --kernel and --initrd")
        cmd += ["-kernel", kernel, "-initrd", initrd,
                "-append", f"console=ttyS0 panic=-1 {append}".strip()]
    elif append:
        raise DfsbuildError(f"--append is for --firmware kernel; with {firmware.name} the "
                            "boot loader on the disk gives the kernel its command line")
    return [*cmd, "-drive", f"file={disk},format=raw,{firmware.drive}"]

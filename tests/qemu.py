"""Booting a Debian kernel in QEMU to let the real consumer read our disks (formats.md §9).

The kernel package comes from Debian's archive (apt-get download; cached under
``.cache/kernel``), the initramfs is packed with GNU cpio around a static busybox, and the
guest prints what its partition parsers and its romfs and vfat drivers found on the serial console.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import IN_CI, ROOT

MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
           "virtio_pci", "virtio_blk", "romfs", "fat", "vfat", "nls_cp437", "nls_utf8",
           "nls_ascii", "libcrc32c", "erofs"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in MODULES; do insmod /modules/$m.ko; done
i=0
while [ ! -e /sys/block/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
sleep 0.5
echo "@@BEGIN@@"
for disk in /sys/block/vd*; do
  echo "DISK $(basename $disk) $(cat $disk/size) $(cat $disk/queue/logical_block_size)"
  for part in $disk/vd*; do
    [ -e "$part/start" ] || continue
    name=$(basename $part)
    echo "PART $name $(cat $part/start) $(cat $part/size)"
    if mount -t romfs -o ro /dev/$name /mnt 2>/dev/null; then
      echo "ROMFS $name hostname=$(cat /mnt/etc/hostname 2>/dev/null) files=$(find /mnt | wc -l)"
      for f in /mnt/dev/*; do [ -e "$f" ] && stat -c "DEV $name %A %t %T %n" "$f"; done
      umount /mnt
    elif mount -t vfat -o ro,iocharset=utf8,shortname=mixed /dev/$name /mnt 2>/dev/null; then
      find /mnt -type f | sort | while read -r f; do
        echo "FAT $name $(sha256sum "$f" | cut -d' ' -f1) ${f#/mnt/}"
      done
      umount /mnt
    fi
  done
done
echo "@@END@@"
poweroff -f
"""


@dataclass
class Kernel:
    vmlinuz: Path
    modules: dict[str, Path]


def unavailable(message: str) -> None:
    import pytest

    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def fetch_kernel() -> Kernel:
    cache = Path(os.environ.get("DFSBUILD_KERNEL_CACHE", ROOT / ".cache" / "kernel"))
    cache.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        unavailable("no apt-get/dpkg to fetch a Debian kernel")
    extracted = cache / "root"
    if not list(extracted.glob("boot/vmlinuz-*")):
        match = _kernel_package()
        if match is None and os.geteuid() == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            match = _kernel_package()
        if match is None:
            unavailable("apt-cache knows no linux-image-cloud-amd64 (run apt-get update)")
            raise AssertionError  # unreachable
        subprocess.run(["apt-get", "download", "-q", match.group(1)], cwd=cache, check=True,
                       capture_output=True)
        debs = sorted(cache.glob(f"{match.group(1)}_*.deb"))
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(extracted)], check=True)
    vmlinuz = sorted(extracted.glob("boot/vmlinuz-*"))[-1]
    found = {p.name.split(".ko")[0]: p for p in extracted.glob("lib/modules/*/kernel/**/*.ko")}
    missing = [m for m in MODULES if m not in found]
    if missing:
        unavailable(f"the kernel package lacks modules {missing}")
    return Kernel(vmlinuz, {m: found[m] for m in MODULES})


def _kernel_package() -> re.Match[str] | None:
    depends = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"],
                             capture_output=True, text=True).stdout
    return re.search(r"Depends: (linux-image-\S+)", depends)


def make_initramfs(kernel: Kernel, work: Path, body: str | None = None,
                   tools: dict[str, Path] | None = None) -> Path:
    """The initramfs; ``body`` replaces the guest's disk report (between its markers),
    ``tools`` are copied into /bin."""
    root = work / "initramfs"
    for d in ("bin", "dev", "proc", "sys", "mnt", "modules"):
        (root / d).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    if busybox is None:
        unavailable("busybox (busybox-static) is not installed")
        raise AssertionError
    shutil.copy(busybox, root / "bin" / "busybox")
    for name, path in kernel.modules.items():
        shutil.copy(path, root / "modules" / f"{name}.ko")
    init = root / "init"
    script = INIT.replace("MODULES", " ".join(MODULES))
    if body is not None:
        begin = script.index('echo "@@BEGIN@@"') + len('echo "@@BEGIN@@"\n')
        script = script[:begin] + body + script[script.index('echo "@@END@@"'):]
    init.write_text(script)
    for name, path in (tools or {}).items():
        shutil.copy(path, root / "bin" / name)
        (root / "bin" / name).chmod(0o755)
    init.chmod(0o755)
    cpio = shutil.which("cpio")
    if cpio is None:
        unavailable("cpio is not installed")
        raise AssertionError
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    out = work / "initrd.cpio"
    with open(out, "wb") as f:
        subprocess.run([cpio, "-o", "-H", "newc", "--quiet"], cwd=root,
                       input="\n".join(names).encode(), stdout=f, check=True)
    return out


@dataclass
class GuestReport:
    disks: dict[str, tuple[int, int]]                  # name -> (size in 512 units, block)
    partitions: dict[str, tuple[int, int]]             # vda5 -> (start, size) in 512 units
    romfs: dict[str, str]                              # vda5 -> "hostname=... files=N"
    fat: dict[str, dict[str, str]]                     # vda1 -> {path: sha256}
    devices: list[tuple[str, str, int, int, str]]      # (part, type, major, minor, name)
    console: str


def qemu_command(vmlinuz: Path, initrd: Path, drives: list[tuple[Path, int]],
                 writable: bool = False, append: str = "") -> list[str]:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        unavailable("qemu-system-x86_64 (qemu-system-x86) is not installed")
        raise AssertionError
    cmd = [qemu, "-m", "512", "-nographic", "-no-reboot", "-kernel", str(vmlinuz),
           "-initrd", str(initrd), "-append", f"console=ttyS0 panic=-1 quiet {append}".strip()]
    # Software emulation: /dev/kvm may exist and still fail (seen on these machines).
    for i, (image, block) in enumerate(drives):
        mode = "" if writable else ",readonly=on"
        cmd += ["-drive", f"file={image},format=raw,if=none,id=d{i}{mode}",
                "-device", f"virtio-blk-pci,drive=d{i},logical_block_size={block},"
                           f"physical_block_size={block}"]
    return cmd


def converse(cmd: list[str], steps: list[tuple[str, str]], timeout: float = 240) -> str:
    """Run the guest on the serial console: each time the console shows a step's text, type
    its answer; the whole console when the guest ends."""
    import select
    import time

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdin is not None and proc.stdout is not None
    seen = b""
    pos = 0
    pending = list(steps)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"the guest did not finish:\n{seen.decode()[-3000:]}")
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
            while pending:
                at = seen.find(pending[0][0].encode(), pos)
                if at < 0:
                    break
                pos = at + len(pending[0][0])
                proc.stdin.write(pending.pop(0)[1].encode())
                proc.stdin.flush()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return seen.decode("utf-8", "replace").replace("\r", "")


def boot(kernel: Kernel, initrd: Path, drives: list[tuple[Path, int]],
         writable: bool = False) -> GuestReport:
    cmd = qemu_command(kernel.vmlinuz, initrd, drives, writable)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL)
    console = proc.stdout.replace("\r", "")
    if "@@END@@" not in console:
        raise AssertionError(f"the guest did not finish:\n{console[-3000:]}\n{proc.stderr}")
    body = console.split("@@BEGIN@@", 1)[1].split("@@END@@", 1)[0]
    report = GuestReport({}, {}, {}, {}, [], console)
    for line in body.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "DISK":
            report.disks[words[1]] = (int(words[2]), int(words[3]))
        elif words[0] == "PART":
            report.partitions[words[1]] = (int(words[2]), int(words[3]))
        elif words[0] == "FAT":
            report.fat.setdefault(words[1], {})[line.split(" ", 3)[3]] = words[2]
        elif words[0] == "ROMFS":
            report.romfs[words[1]] = " ".join(words[2:])
        elif words[0] == "DEV":  # DEV vda5 crw------- 5 1 /mnt/dev/console (hex numbers)
            report.devices.append((words[1], words[2][0], int(words[3], 16),
                                   int(words[4], 16), words[5].rsplit("/", 1)[-1]))
    return report

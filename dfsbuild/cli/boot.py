"""``dfsbuild boot``: a boot smoke test of a built disk in QEMU, on the serial console."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from dfsbuild.boot.firmware import FIRMWARE
from dfsbuild.cli.options import build_dirs, command
from dfsbuild.cli.output import EXIT_FAIL, EXIT_OK, print_json
from dfsbuild.errors import DfsbuildError

_ESCAPES = re.compile(r"\x1b\[[0-9;=?]*[A-Za-z]")     # the firmware's screen control


def cmd_boot(args: argparse.Namespace) -> int:
    from dfsbuild.boot.firmware import command as qemu_command
    from dfsbuild.boot.run import boot_copy

    disk = _disk_of(args)
    firmware = FIRMWARE[args.firmware]
    for name in ("kernel", "initrd"):
        path = getattr(args, name)
        if path is not None and not os.path.isfile(path):
            raise DfsbuildError(f"{path}: no such file (--{name})")
    qemu_command(firmware, disk, args.memory, args.kernel, args.initrd, args.append)  # checks
    outcome = boot_copy(
        disk, lambda copy: qemu_command(firmware, copy, args.memory, args.kernel, args.initrd,
                                        args.append),
        args.expect, args.timeout, args.interactive,
        echo=(lambda data: None) if args.json else None, save=args.save_disk)
    ok = outcome.seen if args.expect is not None else outcome.exited == 0
    if args.json:
        print_json({"disk": disk, "firmware": firmware.name, "expect": args.expect,
                    "seen": outcome.seen, "exited": outcome.exited,
                    "seconds": round(outcome.seconds, 1), "tail": outcome.tail})
    elif not args.interactive:
        print(file=sys.stderr)
        if outcome.seen:
            print(f"boot: {args.expect!r} seen after {outcome.seconds:.1f} s", file=sys.stderr)
        elif outcome.exited is not None:
            print(f"boot: QEMU ended (status {outcome.exited}) after {outcome.seconds:.1f} s"
                  + (f" without {args.expect!r}" if args.expect is not None else ""),
                  file=sys.stderr)
        else:
            print(f"boot: timed out after {args.timeout:g} s"
                  + (f" without {args.expect!r}" if args.expect is not None else ""),
                  file=sys.stderr)
        if not ok and outcome.tail:
            print("boot: the console's last lines:", file=sys.stderr)
            for line in outcome.tail:
                print(f"  {_ESCAPES.sub('', line)}", file=sys.stderr)
    if args.interactive and outcome.exited is not None:
        return outcome.exited             # QEMU's own status
    return EXIT_OK if ok else EXIT_FAIL


def _disk_of(args: argparse.Namespace) -> str:
    """The disk to boot: an image file as given, or a layout's disk, built first."""
    target: str = args.target
    layout, sep, part = target.rpartition(":")
    if not sep or os.path.exists(target):
        layout, part = target, "disk"
    if part != "disk":
        raise DfsbuildError(f"{target}: boot takes a disk (LAYOUT or LAYOUT:disk)")
    if not layout.endswith(".toml") and not os.path.isdir(layout):
        if not os.path.isfile(layout):
            raise DfsbuildError(f"{layout}: no such disk image or layout")
        return layout
    from dfsbuild.cli import build as build_commands
    from dfsbuild.engine.project import plan_project

    words = ["build", "-q", f"{layout}:disk"]
    for flag, value in (("--build-dir", args.build_dir), ("--cache-dir", args.cache_dir)):
        if value is not None:
            words += [flag, value]
    parser = argparse.ArgumentParser(prog="dfsbuild")     # `dfsbuild build`'s own parser
    build_commands.add_commands(parser.add_subparsers())
    build = parser.parse_args(words)
    if build.func(build) != EXIT_OK:
        raise DfsbuildError(f"{layout}: the disk was not built; nothing booted")
    plans = plan_project([layout], build_commands.settings_of(args), quiet=True)
    if len(plans) != 1 or plans[0].disk is None:
        raise DfsbuildError(f"{layout}: boot takes one layout with a [disk]")
    return plans[0].disk.output


def add_commands(sub: Any) -> None:
    """The boot smoke test: boot."""
    bt = command(sub, "boot", cmd_boot, "boot a copy of a built disk in QEMU",
                 "Build the layout's disk (or take a disk image as it is), copy it, and boot "
                 "the copy in QEMU on the serial console: the disk itself is never written. "
                 "With --expect, stop as soon as the text appears (exit 0), or fail after "
                 "--timeout with the console's last lines (exit 1): a boot test for CI. "
                 "Firmware: " + "; ".join(f"{f.name}: {f.help}" for f in FIRMWARE.values())
                 + ".")
    bt.add_argument("target", metavar="LAYOUT[:disk] | DISK",
                    help="a layout file (its disk is built first) or a disk image")
    bt.add_argument("--firmware", required=True, choices=tuple(FIRMWARE),
                    help="what starts the disk")
    bt.add_argument("--expect", metavar="TEXT",
                    help="succeed as soon as the console shows TEXT")
    bt.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                    help="give up after this long (default 300)")
    bt.add_argument("--interactive", action="store_true",
                    help="attach this terminal to the console (leave QEMU with Ctrl-A X)")
    bt.add_argument("--kernel", metavar="FILE", help="--firmware kernel: the kernel")
    bt.add_argument("--initrd", metavar="FILE", help="--firmware kernel: the initramfs")
    bt.add_argument("--append", default="", metavar="ARGS",
                    help="--firmware kernel: more of the kernel's command line (after "
                    "console=ttyS0 panic=-1)")
    bt.add_argument("--memory", type=int, metavar="MIB",
                    help="the guest's memory (default 512, uboot-arm64 1024)")
    bt.add_argument("--save-disk", metavar="FILE",
                    help="keep the booted copy as FILE afterwards (what the guest wrote: its "
                    "boot counter, a new root image); never overwrites a file")
    bt.add_argument("--json", action="store_true",
                    help="print the outcome as JSON instead of the console")
    build_dirs(bt)

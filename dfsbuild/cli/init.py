"""``dfsbuild init``: what a firmware repository needs to start: a layout that builds, the
tree it names, a ``dodo.py`` for doit, and ``build/`` in ``.gitignore``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from dfsbuild.cli.options import command
from dfsbuild.cli.output import EXIT_OK
from dfsbuild.errors import DfsbuildError

LAYOUT = '''\
# A first layout: edit it, then run `dfsbuild build` (or `doit`).
# Every key is described in dfsbuild's README ("Layout reference"); `dfsbuild schema`
# prints the JSON Schema for editors. Paths are relative to this file.
schema = 1

# The disk: an MBR table of 64 MiB with two partitions. Outputs go to build/board/.
[disk]
table = "mbr"            # or "gpt", "embr", "none"
size = "64MiB"           # or "auto": just large enough

[[disk.partition]]
name = "boot"
image = "boot"
type = "fat32-lba"       # sfdisk's names or a hex byte
bootable = true

[[disk.partition]]
name = "rootfs"
image = "rootfs"
size = "rest"            # what the other partitions leave

# A FAT boot partition holding single files: path in the image = { file = host path }.
[image.boot]
type = "fat"
size = "16MiB"
label = "BOOT"
files."hostname.txt" = { file = "../rootfs/etc/hostname" }
# files."zImage" = { file = "../kernel/zImage" }

# The root filesystem: a read-only romfs of the rootfs/ tree.
[image.rootfs]
type = "romfs"           # or "fat", "trivialfs", "cpio", "raw"
tree = "../rootfs"
'''

DODO = '''\
"""Build every layout in layouts/ with doit: run `doit` (or `doit -n 2`) here."""

from dfsbuild.engine.tasks import doit_config, layout_tasks

DOIT_CONFIG = doit_config()


def task_dfsbuild():  # type: ignore[no-untyped-def]
    """Every image and disk of layouts/*.toml."""
    yield from layout_tasks(["layouts"])
'''

FILES = {
    os.path.join("layouts", "board.toml"): LAYOUT,
    os.path.join("rootfs", "etc", "hostname"): "board\n",
    "dodo.py": DODO,
}
IGNORE = "build/"


def cmd_init(args: argparse.Namespace) -> int:
    root = args.directory
    if not os.path.isdir(root):
        raise DfsbuildError(f"{root}: no such directory (create it, or name another)")
    taken = [p for p in FILES if os.path.lexists(os.path.join(root, p))]
    if taken:
        raise DfsbuildError(f"{root}: {', '.join(sorted(taken))} already there; nothing was "
                            "written (init starts a repository; edit the files instead)")
    made = []
    for rel, text in FILES.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "x") as f:
            f.write(text)
        made.append(rel)
    if _add_ignore(os.path.join(root, ".gitignore")):
        made.append(".gitignore (build/)")
    if not args.quiet:
        for rel in made:
            print(f"created  {rel}")
        print("next: dfsbuild build   (outputs in build/board/; or doit)")
    return EXIT_OK


def _add_ignore(path: str) -> bool:
    """Add ``build/`` to the .gitignore at ``path`` unless a line already ignores it."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if any(line.strip() in ("build", "build/", "/build", "/build/")
           for line in text.splitlines()):
        return False
    with open(path, "a") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + IGNORE + "\n")
    return True


def add_commands(sub: Any) -> None:
    """The init command."""
    ini = command(sub, "init", cmd_init, "start a repository: a layout that builds, its "
                  "tree, dodo.py, build/ in .gitignore",
              "Write layouts/board.toml (a commented MBR disk with a FAT boot partition and a "
              "romfs root), rootfs/etc/hostname, dodo.py (for doit) and build/ in .gitignore. "
              "Nothing is overwritten: init fails, writing nothing, if any of them exists.")
    ini.add_argument("directory", nargs="?", default=".", metavar="DIR",
                     help="the repository's top directory (default: here)")
    ini.add_argument("-q", "--quiet", action="store_true", help="print nothing")

"""Commands that look inside or change one filesystem in place: map, put, rm. They name no
format: the image type found at the target says what it can do."""

from __future__ import annotations

import argparse
from typing import Any

from dfsbuild.cli.options import TARGET_HELP, command, sector_size
from dfsbuild.cli.output import EXIT_OK, print_json
from dfsbuild.cli.read import naming_the_image
from dfsbuild.errors import FormatError


def _filesystem(target: Any) -> Any:
    from dfsbuild.inspect.detect import filesystem_type, open_filesystem

    t = filesystem_type(target.src)
    if t is None:
        open_filesystem(target.src, target.name, target.partition is not None)  # says why
        raise FormatError("image", 0, f"no filesystem recognised in {target.name}")
    return t


@naming_the_image("image")
def cmd_map(args: argparse.Namespace) -> int:
    from dfsbuild.inspect.target import open_target

    target = open_target(args.image, args.sector_size)
    try:
        t = _filesystem(target)
        reader = t.reader(target.src)
        base = target.src.base
        rows = []
        for entry in reader.walk():
            if entry.kind != "file":
                continue
            extents = reader.extents(entry)
            rows.append({"path": entry.path, "size": entry.size_bytes,
                         "contiguous": len(extents) <= 1,
                         "extents": [{"offset": off, "disk_offset": base + off, "length": n}
                                     for off, n in extents]})
    finally:
        target.close()
    if args.json:
        print_json({"image": args.image, "filesystem": t.name, "filesystem_offset": base,
                    "files": rows})
        return EXIT_OK
    for row in rows:
        for ext in row["extents"] or [{"offset": 0, "disk_offset": 0, "length": 0}]:
            print(f"{ext['offset']} {ext['disk_offset']} {ext['length']} /{row['path']}")
    return EXIT_OK


def _change(args: argparse.Namespace, action: str) -> int:
    from dfsbuild.clock import build_time
    from dfsbuild.inspect.target import open_target

    target = open_target(args.image, args.sector_size, write=True)
    try:
        t = _filesystem(target)
        updater = t.updater(target.f, target.src, target.name)
        if action == "put":
            message = updater.put(args.path, args.source, build_time(), args.fragment)
        else:
            message = updater.rm(args.path)
    finally:
        target.close()
    if not args.quiet:
        print(f"{target.name}: {message}")
    return EXIT_OK


@naming_the_image("image")
def cmd_put(args: argparse.Namespace) -> int:
    return _change(args, "put")


@naming_the_image("image")
def cmd_rm(args: argparse.Namespace) -> int:
    return _change(args, "rm")


def add_commands(sub: Any) -> None:
    """The commands that change an image in place, and map: map, put, rm."""
    mp = command(sub, "map", cmd_map, "where each file's bytes lie in a filesystem image",
             "Print, for every regular file, each run of its bytes: OFFSET (from the start of "
             "the filesystem) DISK_OFFSET (from the start of the image file; the same for a "
             "bare image) LENGTH /PATH, one line per run, as a boot script reads them with "
             "`read` (for `losetup -o`).")
    mp.add_argument("image", metavar="IMAGE", help=TARGET_HELP)
    mp.add_argument("--json", action="store_true", help="machine-readable output")
    sector_size(mp)

    put = command(sub, "put", cmd_put, "replace or create one file inside a filesystem image, "
                  "in place",
              "Copy SRC into PATH inside IMAGE (or one partition of a disk) without rebuilding "
              "it. The new contents are written into free clusters first (the file's reserve, "
              "or the free run before it, or the first free run that holds it); only then does "
              "the directory entry switch to them, so an interruption leaves the old file "
              "whole. The parent directory must exist.")
    rm = command(sub, "rm", cmd_rm, "remove one file from a filesystem image, in place")
    for sp in (put, rm):
        sp.add_argument("image", metavar="IMAGE", help=TARGET_HELP)
        sp.add_argument("path", metavar="PATH", help="the file inside the image")
        sp.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
        sector_size(sp)
    put.add_argument("source", metavar="SRC", help="host file with the new contents")
    put.add_argument("--fragment", action="store_true",
                     help="allow the file to be split over several runs of clusters when no "
                     "single free run holds it")

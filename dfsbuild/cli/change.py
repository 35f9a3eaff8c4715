"""Commands that look inside or change one filesystem in place: map, put, rm. They name no
format: the image type found at the target says what it can do."""

from __future__ import annotations

import argparse
from typing import Any

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

"""Commands that read images: inspect, ls, cat, extract. Written once, against the FsReader
contract and the table readers: they name no format."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

from dfsbuild.cli.options import TARGET_HELP, command, sector_size
from dfsbuild.cli.output import EXIT_FAIL, EXIT_OK, print_json
from dfsbuild.errors import FormatError, InputError

Command = Callable[[argparse.Namespace], int]


def naming_the_image(*attrs: str) -> Callable[[Command], Command]:
    """A reader's error (a FormatError says format and offset) also names the image file the
    command was given, unless the message already does."""
    def wrap(cmd: Command) -> Command:
        @functools.wraps(cmd)
        def run(args: argparse.Namespace) -> int:
            try:
                return cmd(args)
            except FormatError as exc:
                names = [str(getattr(args, a)) for a in attrs]
                if any(n in str(exc) for n in names):
                    raise
                raise InputError(f"{' / '.join(names)}: {exc}", exc.hint) from None
        return run
    return wrap


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    """The target, and its partition table when it is a whole partitioned disk (else None)."""
    from dfsbuild.inspect.detect import table_kind
    from dfsbuild.inspect.target import open_target

    target = open_target(args.image, args.sector_size)
    try:
        kind = table_kind(target.src) if target.partition is None else None
        return target, (kind.read(target.src, args.sector_size) if kind is not None else None)
    except BaseException:
        target.close()
        raise


@naming_the_image("image")
def cmd_inspect(args: argparse.Namespace) -> int:
    from dfsbuild.inspect.detect import open_filesystem
    from dfsbuild.inspect.outside import data_outside
    from dfsbuild.inspect.render import fs_report, fs_text, table_json, table_text

    target, table = _open(args)
    try:
        if table is not None:
            outside = data_outside(target.src, table)
            if args.json:
                print_json({**table_json(table, args.image), "outside_partitions": [
                    {"start": a, "size": b - a} for a, b in outside]})
            else:
                print(table_text(table, args.image))
                for a, b in outside:
                    print(f"data outside the partitions: bytes {a}..{b - 1} ({b - a} bytes)")
            return EXIT_FAIL if table.problems else EXIT_OK
        reader = open_filesystem(target.src, target.name, target.partition is not None)
        report = fs_report(reader)
    finally:
        target.close()
    if args.json:
        print_json(report)
    else:
        print(fs_text(report))
    return EXIT_OK if report["ok"] else EXIT_FAIL


@naming_the_image("image")
def cmd_ls(args: argparse.Namespace) -> int:
    from dfsbuild.inspect.detect import open_filesystem
    from dfsbuild.inspect.outside import data_outside
    from dfsbuild.inspect.render import entry_json, ls_text, partition_rows, printable

    target, table = _open(args)
    try:
        if table is not None:
            rows = partition_rows(table, target.src)
            if args.json:
                print_json(rows)
                return EXIT_OK
            for r in rows:
                fs = r["filesystem"] or "-"
                volume = f" {printable(str(r['volume']))!r}" if "volume" in r else ""
                print(f"{r['number']:>3}  {r['start']:>12} {r['size']:>12}  {r['type']:<8} "
                      f"{fs}{volume}  {printable(str(r['name']))}")
            ss = table.sector_size
            for a, b in data_outside(target.src, table):      # regions, leftovers
                print(f"  -  {a // ss:>12} {-(-(b - a) // ss):>12}  {'data':<8} -  "
                      f"(outside the partitions: bytes {a}..{b - 1})")
            return EXIT_OK
        reader = open_filesystem(target.src, target.name, target.partition is not None)
        try:
            rows = [entry_json(e) for e in reader.listing(args.path)]
        except FileNotFoundError:
            raise InputError(f"{target.name}: no {args.path!r} in the image") from None
    finally:
        target.close()
    if args.json:
        print_json(rows)
        return EXIT_OK
    for r in rows:
        print(ls_text(r))
    return EXIT_OK


@naming_the_image("image")
def cmd_cat(args: argparse.Namespace) -> int:
    from dfsbuild.inspect.detect import open_filesystem
    from dfsbuild.inspect.target import open_target

    target = open_target(args.image, args.sector_size)
    try:
        reader = open_filesystem(target.src, target.name, target.partition is not None)
        try:
            entry = reader.resolve(reader.lookup(args.path))
        except FileNotFoundError:
            raise InputError(f"{target.name}: no {args.path!r} in the image") from None
        if entry.kind != "file":
            raise InputError(f"{target.name}: {args.path!r} is a {entry.kind}, not a file")
        out = sys.stdout.buffer
        for chunk in reader.data(entry):
            out.write(chunk)
        out.flush()
    finally:
        target.close()
    return EXIT_OK


@naming_the_image("image")
def cmd_extract(args: argparse.Namespace) -> int:
    from dfsbuild.inspect.detect import open_filesystem
    from dfsbuild.inspect.extract import extract
    from dfsbuild.inspect.target import open_target

    target = open_target(args.image, args.sector_size)
    try:
        reader = open_filesystem(target.src, target.name, target.partition is not None)
        report = extract(reader, args.dest)
    finally:
        target.close()
    print(f"extracted {report.created} objects into {args.dest}")
    for item in report.skipped:
        print(f"skipped {item}: creating it needs privileges", file=sys.stderr)
    return EXIT_OK


@naming_the_image("a", "b")
def cmd_diff(args: argparse.Namespace) -> int:
    from dfsbuild.inspect.detect import open_filesystem
    from dfsbuild.inspect.diff import (
        disk_changes,
        file_changes,
        partition_files,
        table_changes,
    )

    a_args = argparse.Namespace(image=args.a, sector_size=args.sector_size)
    b_args = argparse.Namespace(image=args.b, sector_size=args.sector_size)
    a, a_table = _open(a_args)
    try:
        b, b_table = _open(b_args)
        try:
            partitions: list[dict[str, object]] = []
            if (a_table is None) != (b_table is None):
                raise InputError(f"{args.a} and {args.b}: one is a partitioned disk, the "
                                 "other is not (name a partition: DISK:PART)")
            if a_table is not None:
                assert b_table is not None
                partitions = [*disk_changes(a.src, a_table, b.src, b_table),
                              *table_changes(a_table, b_table)]
                files = list(partition_files(a.src, a_table, b.src, b_table, a.name, b.name))
            else:
                files = list(file_changes(
                    open_filesystem(a.src, a.name, a.partition is not None),
                    open_filesystem(b.src, b.name, b.partition is not None)))
        finally:
            b.close()
    finally:
        a.close()
    if args.json:
        print_json({"partitions": partitions, "files": files})
    else:
        for c in partitions:
            detail = f": {c['a']} -> {c['b']}" if "a" in c else ""
            at = c.get("at")
            if isinstance(at, list):
                print(f"disk bytes {at[0]}..{at[1] - 1} (outside the partitions) differ")
            elif c["partition"] is None:
                print(f"disk {c['change']}{detail}")
            else:
                print(f"partition {c['partition']} {c['change']}{detail}")
        for f in files:
            where = f"{f['partition']}:" if "partition" in f else ""
            fields = ", ".join(f"{k} {v[0]} -> {v[1]}" if isinstance(v, list) else k
                               for k, v in f.items()
                               if k not in ("path", "change", "partition", "kind"))
            print(f"{f['change']:8} {where}/{f['path']}" + (f"  ({fields})" if fields else ""))
    return EXIT_FAIL if partitions or files else EXIT_OK


def add_commands(sub: Any) -> None:
    """The commands that read images and disks: diff, inspect, ls, cat, extract."""
    d = command(sub, "diff", cmd_diff, "what differs between two images or two disks (the "
                "whole disk, partitions, then files)", "Compare two disks (size, disk id, "
                "table fields, boot code, bytes outside the partitions; partitions added, "
                "removed, moved, resized, retyped or re-flagged, matched by name where the "
                "table stores names, else by number; then the files of each partition both "
                "hold) or two filesystems (files added, removed, changed in kind, size, mode, "
                "link target or contents). Exit 0 when they hold the same, 1 when they differ.")
    d.add_argument("a", metavar="A", help="an image file, or DISK:PART")
    d.add_argument("b", metavar="B", help="an image file, or DISK:PART")
    d.add_argument("--json", action="store_true", help="{partitions: [...], files: [...]}")
    d.add_argument("--sector-size", type=int, choices=(512, 4096), metavar="BYTES",
                   help="the disks' sector size where their bytes do not tell (an MBR)")

    i = command(sub, "inspect", cmd_inspect, "describe an image: a disk's partition table "
                "(as sfdisk --dump / --json shows it), or a filesystem's structure, checksums "
                "and entries")
    i.add_argument("image", metavar="IMAGE", help=TARGET_HELP)
    i.add_argument("--json", action="store_true", help="machine-readable output")
    sector_size(i)

    ls = command(sub, "ls", cmd_ls, "list a directory of a filesystem image, or a disk's "
                 "partitions with the filesystem found in each")
    ls.add_argument("image", metavar="IMAGE", help=TARGET_HELP)
    ls.add_argument("path", nargs="?", default="/", metavar="PATH")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    sector_size(ls)

    cat = command(sub, "cat", cmd_cat, "write one file of an image to standard output")
    cat.add_argument("image", metavar="IMAGE", help=TARGET_HELP)
    cat.add_argument("path", metavar="PATH")
    sector_size(cat)

    ex = command(sub, "extract", cmd_extract, "extract a filesystem image into a directory",
             "Extract every file of IMAGE under DEST. Names that would leave DEST are refused, "
             "links are never followed, existing files are never overwritten.")
    ex.add_argument("image", metavar="IMAGE", help=TARGET_HELP)
    ex.add_argument("dest", metavar="DEST")
    sector_size(ex)

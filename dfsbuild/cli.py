"""Command line: argument parsing and output only; the one place that exits."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dfsbuild import __version__
from dfsbuild.errors import DfsbuildError, FormatError, InputError
from dfsbuild.units import SizeError, is_power_of_two, parse_size

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


# -- commands ------------------------------------------------------------------------------------

def cmd_mkfs(args: argparse.Namespace) -> int:
    from dfsbuild.digest import DigestCache
    from dfsbuild.fstree import TreeBuilder
    from dfsbuild.image import write_romfs_file
    from dfsbuild.tree import scan_tree

    builder = TreeBuilder()
    entries = scan_tree(args.src, tuple(args.exclude), DigestCache(None, hashing=False))
    builder.add_scan(entries)
    root = builder.finish()
    volume = args.volume if args.volume is not None else os.path.basename(
        os.path.abspath(args.src))
    write_romfs_file(args.output, root, volume, args.align, ("mkfs romfs", args.src))
    return EXIT_OK


def _settings(args: argparse.Namespace) -> Any:
    from dfsbuild.tasks import Settings

    return Settings.from_env(args.build_dir, args.cache_dir, getattr(args, "explain", False),
                             getattr(args, "json", False))


def cmd_build(args: argparse.Namespace) -> int:
    from dfsbuild.tasks import plan_project, run_doit

    settings = _settings(args)
    plans = plan_project(args.layouts, settings)
    status = run_doit(plans, settings, args.jobs)
    return EXIT_OK if status == 0 else EXIT_FAIL


def cmd_check(args: argparse.Namespace) -> int:
    from dfsbuild.tasks import plan_project

    # Planning finds what loading cannot: overlaps, capacity, sizes of nested images.
    for lp in plan_project(args.layouts, _settings(args)):
        layout = lp.layout
        kinds = ", ".join(f"{n} ({s.type})" for n, s in layout.images.items()) or "no images"
        disk = ""
        if lp.disk is not None and lp.disk.disk is not None:
            disk = f"; {lp.disk.table} disk with {len(lp.disk.disk.partitions)} partitions"
        print(f"{layout.path}: ok: {kinds}{disk}")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from dfsbuild.tasks import plan_project

    plans = plan_project(args.layouts, _settings(args))
    data = [p.to_json() for p in plans]
    if args.json:
        _print_json(data if len(data) > 1 else data[0])
        return EXIT_OK
    for p in data:
        print(f"layout {p['name']} ({p['layout']}) -> {p['build_dir']}")
        images = p["images"]
        assert isinstance(images, list)
        for img in images:
            contains = f", contains {', '.join(img['contains'])}" if img["contains"] else ""
            print(f"  image {img['name']}: {img['type']}, {img['files']} files{contains}")
            print(f"    output {img['output']}")
            print(f"    key    {img['key']}")
        disk = p["disk"]
        if isinstance(disk, dict):
            _print_disk_plan(disk)
    return EXIT_OK


def _print_disk_plan(disk: dict[str, Any]) -> None:
    if disk["table"] == "none":
        print(f"  disk: table none, image {disk['image']} -> {disk['output']}")
        return
    print(f"  disk: table {disk['table']}, {disk['total_sectors']} sectors of "
          f"{disk['sector_size']} bytes -> {disk['output']}")
    print(f"    usable sectors {disk['first_usable_lba']}..{disk['last_usable_lba']}")
    for key in ("disk_id", "guid"):
        if key in disk:
            print(f"    {key.replace('_', '-')} {disk[key]}")
    if "extended" in disk:
        e = disk["extended"]
        print(f"    #{e['number']:<3} {e['start_lba']:>12}..{e['last_lba']:<12} extended")
    for part in disk["partitions"]:
        what = f"image {part['image']}" if part["image"] else "empty"
        print(f"    #{part['number']:<3} {part['start_lba']:>12}..{part['last_lba']:<12} "
              f"{part['name']} ({what}): {part['reason']}")
    print(f"    key    {disk['key']}")


def cmd_inspect(args: argparse.Namespace) -> int:
    from dfsbuild.inspect import romfs_report, romfs_text
    from dfsbuild.inspect_disk import table_json, table_text
    from dfsbuild.probe import disk_table, open_filesystem, open_target

    target = open_target(args.image)
    try:
        table = disk_table(target)
        if table is not None:
            if args.json:
                _print_json(table_json(table, args.image))
            else:
                print(table_text(table, args.image))
            return EXIT_FAIL if table.problems else EXIT_OK
        report = romfs_report(open_filesystem(target))
    finally:
        target.close()
    if args.json:
        _print_json(report)
    else:
        print(romfs_text(report))
    return EXIT_OK if report["checksums_ok"] else EXIT_FAIL


def cmd_ls(args: argparse.Namespace) -> int:
    from dfsbuild.inspect import ls_lines
    from dfsbuild.inspect_disk import partition_rows
    from dfsbuild.probe import disk_table, open_filesystem, open_target

    target = open_target(args.image)
    try:
        table = disk_table(target)
        if table is not None:
            rows = partition_rows(table, target.f)
            if args.json:
                _print_json(rows)
                return EXIT_OK
            for r in rows:
                fs = r["filesystem"] or "-"
                volume = f" {r['volume']!r}" if "volume" in r else ""
                print(f"{r['number']:>3}  {r['start']:>12} {r['size']:>12}  {r['type']:<8} "
                      f"{fs}{volume}  {r['name']}")
            return EXIT_OK
        reader = open_filesystem(target)
        try:
            rows = ls_lines(reader, args.path)
        except FileNotFoundError:
            raise InputError(f"{args.image}: no {args.path!r} in the image") from None
    finally:
        target.close()
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for r in rows:
        extra = f" -> {r['target']}" if "target" in r else ""
        print(f"{r['type']:<8} {r['mode']:>4} {r['size']:>10}  {r['path']}{extra}")
    return EXIT_OK


def cmd_cat(args: argparse.Namespace) -> int:
    from dfsbuild.probe import open_filesystem, open_target

    target = open_target(args.image)
    try:
        reader = open_filesystem(target)
        try:
            entry = reader.resolve(reader.lookup(args.path))
        except FileNotFoundError:
            raise InputError(f"{args.image}: no {args.path!r} in the image") from None
        if entry.type_name != "file":
            raise InputError(f"{args.image}: {args.path!r} is a {entry.type_name}, not a file")
        out = sys.stdout.buffer
        for chunk in reader.iter_data(entry):
            out.write(chunk)
        out.flush()
    finally:
        target.close()
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    from dfsbuild.extract import extract_romfs
    from dfsbuild.probe import open_filesystem, open_target

    target = open_target(args.image)
    try:
        report = extract_romfs(open_filesystem(target), args.dest)
    finally:
        target.close()
    print(f"extracted {report.created} objects into {args.dest}")
    for item in report.skipped:
        print(f"skipped {item}: creating it needs privileges", file=sys.stderr)
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------------

def _align(value: str) -> int:
    try:
        n = parse_size(value)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if n < 16 or not is_power_of_two(n):
        raise argparse.ArgumentTypeError(f"{value}: must be a power of two of at least 16")
    return n


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1 job")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dfsbuild",
        description="Build disk images from declarative TOML layouts, incrementally and "
                    "reproducibly.",
    )
    p.add_argument("--version", action="version", version=f"dfsbuild {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str,
            description: str | None = None) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=description or help_)
        sp.set_defaults(func=func)
        return sp

    def build_dirs(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--build-dir", metavar="DIR",
                        help="where outputs go (default: $DFSBUILD_BUILD_DIR or ./build)")
        sp.add_argument("--cache-dir", metavar="DIR",
                        help="content-addressed output cache (default: $DFSBUILD_CACHE_DIR "
                             "or BUILD_DIR/.cache)")

    mkfs = add("mkfs", cmd_mkfs, "make one filesystem image from a directory",
               "Make one filesystem image from a directory, like genromfs.")
    mkfs_sub = mkfs.add_subparsers(dest="fstype", metavar="TYPE", required=True)
    romfs = mkfs_sub.add_parser("romfs", help="a romfs image (like genromfs)",
                                description="Write a romfs image of SRC_DIR. Entries are "
                                "sorted by name, so the output does not depend on the host "
                                "filesystem.")
    romfs.set_defaults(func=cmd_mkfs)
    romfs.add_argument("src", metavar="SRC_DIR")
    romfs.add_argument("-o", "--output", required=True, metavar="OUT", help="image file to write")
    romfs.add_argument("-V", "--volume", metavar="NAME",
                       help="volume name (default: the base name of SRC_DIR)")
    romfs.add_argument("-a", "--align", type=_align, default=16, metavar="ALIGN",
                       help="align regular file data to ALIGN bytes (power of two, >= 16)")
    romfs.add_argument("-x", "--exclude", action="append", default=[], metavar="PATTERN",
                       help="leave out matching entries (genromfs -x rules); repeatable")

    b = add("build", cmd_build, "build layouts (only what changed)",
            "Build every output of the layouts (default: every *.toml in layouts/). Outputs "
            "whose inputs did not change are left alone; outputs in the cache are restored.")
    b.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/)")
    build_dirs(b)
    b.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                   help="build N outputs in parallel")
    b.add_argument("--explain", action="store_true",
                   help="say which input made each output be built (also $DFSBUILD_EXPLAIN=1)")
    b.add_argument("--json", action="store_true",
                   help="print the outcome of every output as JSON instead of lines")

    c = add("check", cmd_check, "validate layouts without building (every rule, partition "
            "placement included)")
    c.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/)")
    build_dirs(c)

    pl = add("plan", cmd_plan, "show what a build would produce, and each output's key")
    pl.add_argument("layouts", nargs="+", metavar="LAYOUT")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    build_dirs(pl)

    target_help = "an image file, or DISK:PART (a partition by number or name)"
    i = add("inspect", cmd_inspect, "describe an image: a disk's partition table (as sfdisk "
            "--dump / --json shows it), or a filesystem's structure, checksums and entries")
    i.add_argument("image", metavar="IMAGE", help=target_help)
    i.add_argument("--json", action="store_true", help="machine-readable output")

    ls = add("ls", cmd_ls, "list a directory of a filesystem image, or a disk's partitions "
             "with the filesystem found in each")
    ls.add_argument("image", metavar="IMAGE", help=target_help)
    ls.add_argument("path", nargs="?", default="/", metavar="PATH")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    cat = add("cat", cmd_cat, "write one file of an image to standard output")
    cat.add_argument("image", metavar="IMAGE", help=target_help)
    cat.add_argument("path", metavar="PATH")

    ex = add("extract", cmd_extract, "extract a filesystem image into a directory",
             "Extract every file of IMAGE under DEST. Names that would leave DEST are refused, "
             "links are never followed, existing files are never overwritten.")
    ex.add_argument("image", metavar="IMAGE", help=target_help)
    ex.add_argument("dest", metavar="DEST")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except FormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except DfsbuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAIL

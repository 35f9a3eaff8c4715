"""``dfsbuild mkfs TYPE``: one filesystem image from a directory, without a layout. The
subcommands come from the image registry: every type that takes a tree, every setting of it
a flag (``--KEY VALUE``), parsed by the same Setting parsers a layout goes through."""

from __future__ import annotations

import argparse
import os
from typing import Any

from dfsbuild.cli.output import EXIT_OK
from dfsbuild.vocab.settings import Context, Setting

CLI_FILE = "the command line"


def _value(s: Setting, text: str) -> object:
    """The TOML value a flag's text stands for."""
    if s.kind == "integer":
        try:
            return int(text, 0)
        except ValueError:
            return text
    if s.kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


def _parser_of(s: Setting) -> Any:
    def parse(text: str) -> object:
        try:
            return s.parse(_value(s, text), Context(CLI_FILE, os.getcwd(), where=s.name))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def add_mkfs(sub: Any) -> None:
    """``mkfs`` and one subcommand per image type that takes a tree."""
    from dfsbuild.images import IMAGE_TYPES
    from dfsbuild.images.base import EXCLUDE, TREE

    mkfs = sub.add_parser("mkfs", help="make one filesystem image from a directory",
                          description="Make one filesystem image from a directory (like "
                          "genromfs, or mkfs.fat + mcopy -s). Entries are sorted by name and "
                          "timestamps come from SOURCE_DATE_EPOCH, so the output does not "
                          "depend on the host.")
    types = mkfs.add_subparsers(dest="fstype", metavar="TYPE", required=True)
    for t in IMAGE_TYPES.values():
        if TREE not in t.contents:
            continue
        p = types.add_parser(t.name, help=t.help, description=f"Write {t.help} of SRC_DIR. "
                             "Flags are the layout keys of this type.")
        p.set_defaults(func=cmd_mkfs)
        p.add_argument("src", metavar="SRC_DIR")
        p.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="image file to write")
        p.add_argument("--compressed", choices=("xz", "zstd"), metavar="xz|zstd",
                       help="also write OUT.xz or OUT.zst, the image compressed reproducibly "
                       "(as disk.compress)")
        if EXCLUDE in t.contents:
            p.add_argument("-x", "--exclude", action="append", default=[], metavar="PATTERN",
                           help="leave out matching entries (genromfs -x rules); repeatable")
        for s in t.settings:
            if s.kind in ("table", "path"):
                continue
            flags = [f"--{s.name}", *t.short_flags.get(s.name, ())]
            p.add_argument(*flags, dest=f"set_{s.attr}", type=_parser_of(s),
                           metavar=s.kind.upper(), help=s.help)


def cmd_mkfs(args: argparse.Namespace) -> int:
    from dfsbuild.clock import build_time
    from dfsbuild.fileio.atomic import atomic_output, check_output_path
    from dfsbuild.fileio.copy import read_input
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.images import IMAGE_TYPES
    from dfsbuild.images.base import ImageJob
    from dfsbuild.trees.digest import DigestCache
    from dfsbuild.trees.fstree import TreeBuilder
    from dfsbuild.trees.walk import describe_file, scan_tree
    from dfsbuild.vocab.model import Contents, ImageSpec
    from dfsbuild.vocab.settings import build_options

    t = IMAGE_TYPES[args.fstype]
    check_output_path(args.output)
    exclude = tuple(getattr(args, "exclude", ()))
    cache = DigestCache(None, hashing=False)
    builder = TreeBuilder()
    builder.add_scan(scan_tree(args.src, exclude, cache))
    root = builder.finish()
    name = os.path.basename(os.path.abspath(args.src))
    ctx = Context(CLI_FILE, os.getcwd(), name)
    values = {s.attr: (getattr(args, f"set_{s.attr}", None) if getattr(
        args, f"set_{s.attr}", None) is not None else s.default_for(ctx)) for s in t.settings}
    options = build_options(t.options, t.settings, values)
    spec = ImageSpec(name, t.name, f"mkfs {t.name}", args.output, options,
                     Contents(args.src, exclude))
    seed = os.path.basename(args.output)
    job = ImageJob(spec, CLI_FILE, root, lambda p: describe_file(p, cache), seed, build_time(),
                   read_input)
    planned = t.plan(job)
    with atomic_output(args.output) as fd:
        sink = Sink(fd, 0, planned.size_bytes, note_other=False)     # no later build
        t.write(planned, sink)
        sink.close()
    if args.compressed is not None:
        from dfsbuild.fileio.compress import compress_file, compressed_name

        compress_file(args.output, compressed_name(args.output, args.compressed),
                      args.compressed)
    return EXIT_OK

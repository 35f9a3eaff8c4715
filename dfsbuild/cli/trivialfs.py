"""``dfsbuild trivialfs SUBCOMMAND``: the six tools of the TrivialFS design (gen, volume, file,
read, write, explode) and ``install-sh``, which writes them as POSIX-sh scripts for busybox."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dfsbuild.cli.output import EXIT_OK

TOOLS = ("trivialfs_gen", "trivialfs_volume", "trivialfs_file", "trivialfs_read",
         "trivialfs_write", "trivialfs_explode")


def add_trivialfs(sub: Any) -> None:
    top = sub.add_parser("trivialfs", help="the TrivialFS tools (gen, volume, file, read, "
                         "write, explode, install-sh)",
                         description="The tools of the TrivialFS design, for volumes whose "
                         "files boot scripts read and overwrite in place.")
    tools = top.add_subparsers(dest="tool", metavar="TOOL", required=True)

    def tool(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = tools.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=cmd_trivialfs)
        return p

    g = tool("gen", "write a TrivialFS volume of the current directory to OUTPUT (default: "
             "standard output)")
    g.add_argument("-u", "--uuid", help="the volume's UUID (default: derived from the "
                   "contents)")
    g.add_argument("-L", "--label", default="", help="the label blkid and findfs see")
    g.add_argument("--align", type=int, default=512, help="data alignment (default 512; 1 "
                   "packs)")
    g.add_argument("--no-label-fs", action="store_true", help="no ext2 label block")
    g.add_argument("output", nargs="?", metavar="OUTPUT")
    v = tool("volume", "print the block device (or IMAGE) holding the volume UUID; an error "
             "when several do")
    v.add_argument("-l", action="store_true", dest="loops", help="include loop devices")
    v.add_argument("-n", action="store_true", dest="nbd", help="include NBD devices")
    v.add_argument("uuid", metavar="UUID")
    v.add_argument("images", nargs="*", metavar="IMAGE")
    f = tool("file", "print START SIZE VOLUME of the file NAME (VOLUME from standard input "
             "when not given)")
    f.add_argument("words", nargs="+", metavar="[VOLUME] NAME")
    r = tool("read", "write a file's contents to standard output; its location (START SIZE "
             "VOLUME) as arguments or as the line on standard input")
    r.add_argument("words", nargs="*", metavar="START SIZE VOLUME")
    w = tool("write", "overwrite the start of a file with at most SIZE bytes of standard input "
             "(never a byte outside it); the location as arguments or the first input line")
    w.add_argument("words", nargs="*", metavar="START SIZE VOLUME")
    e = tool("explode", "recreate a volume's files in the current directory (names, contents, "
             "modes, mtimes, hard links); IMAGE from standard input when not given")
    e.add_argument("image", nargs="?", metavar="IMAGE")
    i = tool("install-sh", "write the six tools as POSIX-sh scripts for busybox into DIR")
    i.add_argument("dir", metavar="DIR")


def cmd_trivialfs(args: argparse.Namespace) -> int:
    handlers = {"gen": _gen, "volume": _volume, "file": _file, "read": _read, "write": _write,
                "explode": _explode, "install-sh": _install}
    return handlers[args.tool](args)


def _stdin_line() -> list[str]:
    raw = sys.stdin.buffer.readline()
    return raw.rstrip(b"\n").decode("utf-8", "surrogateescape").split(" ")


def _gen(args: argparse.Namespace) -> int:
    import hashlib
    import json

    from dfsbuild.clock import build_time
    from dfsbuild.errors import DfsbuildError
    from dfsbuild.fileio.atomic import atomic_output, check_output_path
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.images.trivialfs.write import TrivialSettings, plan_trivialfs, write_trivialfs
    from dfsbuild.trees.digest import DigestCache
    from dfsbuild.trees.fstree import TreeBuilder, manifest
    from dfsbuild.trees.walk import scan_tree
    from dfsbuild.vocab.settings import Context, p_uuid

    builder = TreeBuilder()
    builder.add_scan(scan_tree(".", (), DigestCache(None)))
    root = builder.finish()
    if args.uuid is not None:
        try:
            volume = p_uuid(args.uuid, Context("the command line", "."))
        except ValueError as exc:
            raise DfsbuildError(f"-u {args.uuid}: {exc}") from None
    else:
        digest = hashlib.sha256(json.dumps(manifest(root)).encode()).hexdigest()
        from dfsbuild.ids import derive_uuid
        volume = str(derive_uuid(digest, "trivialfs-gen"))
    settings = TrivialSettings(volume, args.label, max(1, args.align),
                               "none" if args.no_label_fs else "ext2", (), build_time())
    plan = plan_trivialfs(root, settings, ("the command line", "trivialfs gen"))
    if args.output is not None:
        check_output_path(args.output)
        with atomic_output(args.output) as fd:
            sink = Sink(fd, 0, plan.image_size)
            write_trivialfs(plan, sink)
            sink.close()
        return EXIT_OK
    import shutil
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        sink = Sink(tmp.fileno(), 0, plan.image_size)
        write_trivialfs(plan, sink)
        sink.close()
        tmp.seek(0)
        shutil.copyfileobj(tmp, sys.stdout.buffer)
    return EXIT_OK


def _volume(args: argparse.Namespace) -> int:
    from dfsbuild.images.trivialfs.tools import block_devices, find_volume

    candidates = args.images or block_devices(args.loops, args.nbd)
    print(find_volume(args.uuid, candidates))
    return EXIT_OK


def _file(args: argparse.Namespace) -> int:
    from dfsbuild.cli.output import EXIT_USAGE
    from dfsbuild.images.trivialfs.tools import locate

    if len(args.words) == 2:
        volume, name = args.words
    elif len(args.words) == 1:
        volume, name = " ".join(_stdin_line()), args.words[0]
    else:
        print("usage: dfsbuild trivialfs file [VOLUME] NAME", file=sys.stderr)
        return EXIT_USAGE
    start, size = locate(volume, name.encode("utf-8", "surrogateescape"))
    print(f"{start} {size} {volume}")
    return EXIT_OK


def _read(args: argparse.Namespace) -> int:
    from dfsbuild.images.trivialfs.tools import parse_location, read_range

    start, size, volume = parse_location(args.words or _stdin_line())
    read_range(volume, start, size, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _write(args: argparse.Namespace) -> int:
    from dfsbuild.images.trivialfs.tools import parse_location, write_range

    start, size, volume = parse_location(args.words or _stdin_line())
    write_range(volume, start, size, sys.stdin.buffer)
    return EXIT_OK


def _explode(args: argparse.Namespace) -> int:
    from dfsbuild.fileio.source import ByteSource, open_image
    from dfsbuild.images.trivialfs.read import TrivialReader
    from dfsbuild.images.trivialfs.tools import MAX_MTIME, ToolError
    from dfsbuild.inspect.extract import extract

    image = args.image if args.image is not None else " ".join(_stdin_line())
    f = open_image(image)
    try:
        reader = TrivialReader(ByteSource(f))
        for e in reader.walk():          # before anything is created
            mtime = dict(e.extra).get("mtime")
            if isinstance(mtime, int) and mtime > MAX_MTIME:
                raise ToolError(f"{image}: {e.path}: mtime {mtime} is after 9999-12-31; "
                                "nothing extracted")
        report = extract(reader, ".")
        for e in reader.walk():
            mtime = dict(e.extra).get("mtime")
            if e.kind in ("file", "hardlink") and isinstance(mtime, int):
                os.utime(e.path, (mtime, mtime), follow_symlinks=False)
    finally:
        f.close()
    print(f"{report.created} files and directories", file=sys.stderr)
    return EXIT_OK


def _install(args: argparse.Namespace) -> int:
    from dfsbuild.fileio.atomic import atomic_output
    from dfsbuild.layout.contents import builtins

    shipped = builtins()
    os.makedirs(args.dir, exist_ok=True)
    for name in TOOLS:
        target = os.path.join(args.dir, name)
        with open(shipped[name], "rb") as src, atomic_output(target) as fd:
            os.write(fd, src.read())
            os.fchmod(fd, 0o755)
        print(target)
    return EXIT_OK

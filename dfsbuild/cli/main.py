"""Command line: the parser and ``main``, the one place that turns errors into exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from dfsbuild import __version__
from dfsbuild.cli.build import cmd_build, cmd_check, cmd_plan, cmd_schema, cmd_verify
from dfsbuild.cli.change import cmd_map, cmd_put, cmd_rm
from dfsbuild.cli.completion import cmd_completion
from dfsbuild.cli.housekeeping import cmd_cache, cmd_clean
from dfsbuild.cli.init import cmd_init
from dfsbuild.cli.mkfs import add_mkfs
from dfsbuild.cli.output import EXIT_FAIL
from dfsbuild.cli.read import cmd_cat, cmd_diff, cmd_extract, cmd_inspect, cmd_ls
from dfsbuild.cli.trivialfs import add_trivialfs
from dfsbuild.engine.environment import epilog
from dfsbuild.errors import DfsbuildError, InternalError, LayoutErrors
from dfsbuild.units import SizeError, parse_size

# -- parser --------------------------------------------------------------------------------------

def _size(value: str) -> int:
    try:
        return parse_size(value)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _days(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from None
    if not n >= 0:
        raise argparse.ArgumentTypeError("at least 0 days")
    return n


def _var(value: str) -> tuple[str, str]:
    from dfsbuild.layout.variables import parse_override

    try:
        return parse_override(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1 job")
    return n


def _unparsed_mkfs(args: argparse.Namespace) -> int:
    raise InternalError("mkfs was parsed without its image types")


def build_parser(mkfs: bool = True) -> argparse.ArgumentParser:
    """The whole parser; ``mkfs=False`` leaves out the mkfs types (which import every image
    type), for commands that do not need them."""
    p = argparse.ArgumentParser(
        prog="dfsbuild",
        description="Build disk images from declarative TOML layouts, incrementally and "
                    "reproducibly.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""exit codes:
  0  success          1  an error (printed as "error: …")          2  a usage error

environment (booleans: 1/true/yes/on or 0/false/no/off):
""" + epilog() + """

shell completion: source <(dfsbuild completion bash)   (also zsh, fish)""",
    )
    p.add_argument("--version", action="version", version=f"dfsbuild {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str,
            description: str | None = None) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=description or help_)
        sp.set_defaults(func=func)
        return sp

    def no_wait(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--no-wait", action="store_true",
                        help="fail at once if another build holds the build directory, "
                        "instead of waiting for it")

    def variables(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--var", action="append", type=_var, metavar="NAME=VALUE",
                        help="set the layout variable NAME (${NAME} in string values; "
                        "overrides [vars] and $DFSBUILD_VAR_NAME); repeatable")

    def strict(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--strict", action="store_true",
                        help="layout warnings (settings that do nothing or surprise) are "
                        "errors (also $DFSBUILD_STRICT=1)")

    def build_dirs(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--build-dir", metavar="DIR",
                        help="where outputs go (default: $DFSBUILD_BUILD_DIR or ./build)")
        sp.add_argument("--cache-dir", metavar="DIR",
                        help="content-addressed output cache (default: $DFSBUILD_CACHE_DIR "
                             "or BUILD_DIR/.cache)")

    if mkfs:
        add_mkfs(sub)
    else:                  # listed in --help; never run (its types are parsed when named)
        add("mkfs", _unparsed_mkfs, "make one filesystem image from a directory")

    b = add("build", cmd_build, "build layouts (only what changed)",
            "Build every output of the layouts (default: every *.toml in layouts/). Outputs "
            "whose inputs did not change are left alone; outputs in the cache are restored.")
    b.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/); "
                   "LAYOUT:disk or LAYOUT:image.NAME builds that output and what it needs")
    build_dirs(b)
    b.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                   help="build N outputs in parallel")
    b.add_argument("--explain", action="store_true",
                   help="say which input made each output be built (also $DFSBUILD_EXPLAIN=1)")
    b.add_argument("--json", action="store_true",
                   help="print every output (task, path, outcome, reason, size, sha256, "
                   "seconds) as one JSON document instead of lines")
    b.add_argument("--force", action="store_true",
                   help="rebuild every output, without restoring from the cache")
    b.add_argument("-k", "--keep-going", action="store_true",
                   help="a layout with errors is left out (its errors reported) and a failed "
                   "output does not stop the others; the exit status is still 1")
    b.add_argument("--no-cache", action="store_true",
                   help="neither restore from nor store in the cache (also "
                   "$DFSBUILD_NO_CACHE=1)")
    b.add_argument("--remote-cache", metavar="URL",
                   help="also use a Bazel HTTP cache (bazel-remote, or any WebDAV server): "
                   "outputs at URL/cas/SHA256, records at URL/ac/KEY (also "
                   "$DFSBUILD_REMOTE_CACHE; credentials from the URL, ~/.netrc or "
                   "$DFSBUILD_REMOTE_CACHE_HEADER)")
    b.add_argument("--remote-cache-read-only", action="store_true",
                   help="restore from the remote cache, never upload (untrusted builds; also "
                   "$DFSBUILD_REMOTE_CACHE_READ_ONLY=1)")
    no_wait(b)
    strict(b)
    variables(b)
    loud = b.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="print only errors and warnings")
    loud.add_argument("-v", "--verbose", action="store_true",
                      help="also say why each output was built, and list those up to date")

    ini = add("init", cmd_init, "start a repository: a layout that builds, its tree, dodo.py, "
              "build/ in .gitignore",
              "Write layouts/board.toml (a commented MBR disk with a FAT boot partition and a "
              "romfs root), rootfs/etc/hostname, dodo.py (for doit) and build/ in .gitignore. "
              "Nothing is overwritten: init fails, writing nothing, if any of them exists.")
    ini.add_argument("directory", nargs="?", default=".", metavar="DIR",
                     help="the repository's top directory (default: here)")
    ini.add_argument("-q", "--quiet", action="store_true", help="print nothing")

    cl = add("clean", cmd_clean, "remove the outputs of layouts (never the cache unless "
             "--cache)", "Remove the build subdirectory of each layout (outputs of images "
             "since renamed included) and its build state. The cache is kept unless --cache "
             "is given. `doit clean` does the same for a dodo.py.")
    cl.add_argument("layouts", nargs="*", metavar="LAYOUT",
                    help="layout files or directories of them (default: layouts/)")
    build_dirs(cl)
    cl.add_argument("--all", action="store_true",
                    help="everything in the build directory but the cache, layouts since "
                    "deleted included")
    cl.add_argument("--cache", action="store_true", help="also empty the cache")
    cl.add_argument("--json", action="store_true", help="list what was removed as JSON")
    cl.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    no_wait(cl)

    ca = add("cache", cmd_cache, "look after the output cache: stats, prune")
    ca_sub = ca.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = ca_sub.add_parser("stats", help="entries, bytes, and when they were last used",
                           description="How many entries the cache holds, their size, and "
                           "when the least and most recently used were last used.")
    pr = ca_sub.add_parser("prune", help="remove entries, least recently used first",
                           description="Remove entries not used for DAYS days, then the least "
                           "recently used until the cache holds at most SIZE; also "
                           "leftovers of interrupted stores.")
    pr.add_argument("--max-size", type=_size, metavar="SIZE",
                    help="keep at most this much (e.g. 10GiB, 500MiB)")
    pr.add_argument("--older-than", type=_days, metavar="DAYS",
                    help="remove entries not used for this many days")
    for sp in (st, pr):
        sp.set_defaults(func=cmd_cache)
        build_dirs(sp)
        sp.add_argument("--json", action="store_true", help="machine-readable output")

    c = add("check", cmd_check, "validate layouts without building (every rule, partition "
            "placement included)")
    c.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/)")
    build_dirs(c)
    strict(c)
    variables(c)
    c.add_argument("--json", action="store_true", help="print every error and warning as a "
                   "JSON list of objects (severity, file, key, value, rule, hint); [] when "
                   "all is well")

    pl = add("plan", cmd_plan, "show what a build would produce, and each output's key")
    pl.add_argument("layouts", nargs="*", metavar="LAYOUT",
                    help="layout files or directories of them (default: layouts/)")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    build_dirs(pl)
    variables(pl)

    d = add("diff", cmd_diff, "what differs between two images or two disks (partitions, "
            "then files)", "Compare two disks (partitions added, removed, moved, resized, "
            "retyped; matched by name where the table stores names, else by number; then the "
            "files of each partition both hold) or two filesystems (files added, removed, "
            "changed in kind, size, mode, link target or contents). Exit 0 when they hold the "
            "same, 1 when they differ.")
    d.add_argument("a", metavar="A", help="an image file, or DISK:PART")
    d.add_argument("b", metavar="B", help="an image file, or DISK:PART")
    d.add_argument("--json", action="store_true", help="{partitions: [...], files: [...]}")
    d.add_argument("--sector-size", type=int, choices=(512, 4096), metavar="BYTES",
                   help="the disks' sector size where their bytes do not tell (an MBR)")

    v = add("verify", cmd_verify, "check that outputs on disk are what the layouts build now "
            "(writes nothing)", "For each output: is the build state's key the layout's "
            "current key for the file as it is, and are its bytes those the layout builds now "
            "(made again in a temporary file, compared by sha256)? Nothing in the build "
            "directory or the cache is written. Exit 0 when all are, 1 otherwise.")
    v.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/); "
                   "LAYOUT:disk or LAYOUT:image.NAME verifies that output and what it needs")
    v.add_argument("--json", action="store_true", help="a list of {task, path, ok, check, "
                   "reason}")
    build_dirs(v)
    variables(v)

    add("schema", cmd_schema, "print the JSON Schema of layout files (for editors)",
        "Print a JSON Schema (draft 2020-12) of the layout format, generated from the same "
        "tables as the loader: every key with its type, default and help. Editors that read "
        "TOML with a schema (taplo, Even Better TOML) complete and check layouts with it: "
        "put `#:schema ./schema/layout.schema.json` on a layout's first line.")

    target_help = "an image file, or DISK:PART (a partition by number or name)"

    def sector_size(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--sector-size", type=int, choices=(512, 4096), metavar="BYTES",
                        help="the disk's sector size, where its bytes do not tell (an MBR); "
                        "default: found from GPT and eMBR signatures, else 512")

    i = add("inspect", cmd_inspect, "describe an image: a disk's partition table (as sfdisk "
            "--dump / --json shows it), or a filesystem's structure, checksums and entries")
    i.add_argument("image", metavar="IMAGE", help=target_help)
    i.add_argument("--json", action="store_true", help="machine-readable output")
    sector_size(i)

    ls = add("ls", cmd_ls, "list a directory of a filesystem image, or a disk's partitions "
             "with the filesystem found in each")
    ls.add_argument("image", metavar="IMAGE", help=target_help)
    ls.add_argument("path", nargs="?", default="/", metavar="PATH")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    sector_size(ls)

    cat = add("cat", cmd_cat, "write one file of an image to standard output")
    cat.add_argument("image", metavar="IMAGE", help=target_help)
    cat.add_argument("path", metavar="PATH")
    sector_size(cat)

    ex = add("extract", cmd_extract, "extract a filesystem image into a directory",
             "Extract every file of IMAGE under DEST. Names that would leave DEST are refused, "
             "links are never followed, existing files are never overwritten.")
    ex.add_argument("image", metavar="IMAGE", help=target_help)
    ex.add_argument("dest", metavar="DEST")
    sector_size(ex)

    mp = add("map", cmd_map, "where each file's bytes lie in a filesystem image",
             "Print, for every regular file, each run of its bytes: OFFSET (from the start of "
             "the filesystem) DISK_OFFSET (from the start of the image file; the same for a "
             "bare image) LENGTH /PATH, one line per run, as a boot script reads them with "
             "`read` (for `losetup -o`).")
    mp.add_argument("image", metavar="IMAGE", help=target_help)
    mp.add_argument("--json", action="store_true", help="machine-readable output")
    sector_size(mp)

    put = add("put", cmd_put, "replace or create one file inside a filesystem image, in place",
              "Copy SRC into PATH inside IMAGE (or one partition of a disk) without rebuilding "
              "it. The new contents are written into free clusters first (the file's reserve, "
              "or the free run before it, or the first free run that holds it); only then does "
              "the directory entry switch to them, so an interruption leaves the old file "
              "whole. The parent directory must exist.")
    add_trivialfs(sub)

    comp = add("completion", cmd_completion, "print shell completion for bash, zsh or fish",
               "Print a completion script: source <(dfsbuild completion bash) in ~/.bashrc; "
               "zsh the same; fish: dfsbuild completion fish | source.")
    comp.add_argument("shell", choices=("bash", "zsh", "fish"))
    comp.set_defaults(parser_factory=build_parser)

    rm = add("rm", cmd_rm, "remove one file from a filesystem image, in place")
    for sp in (put, rm):
        sp.add_argument("image", metavar="IMAGE", help=target_help)
        sp.add_argument("path", metavar="PATH", help="the file inside the image")
        sp.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
        sector_size(sp)
    put.add_argument("source", metavar="SRC", help="host file with the new contents")
    put.add_argument("--fragment", action="store_true",
                     help="allow the file to be split over several runs of clusters when no "
                     "single free run holds it")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(mkfs="mkfs" in words)
    args = parser.parse_args(words)
    try:
        result: int = args.func(args)
        return result
    except LayoutErrors as exc:
        for e in exc.errors:
            print(f"error: {e}", file=sys.stderr)
            if e.hint:
                print(f"hint: {e.hint}", file=sys.stderr)
        files = len({e.file for e in exc.errors})
        print(f"{len(exc.errors)} errors in {files} layout{'s' if files > 1 else ''}",
              file=sys.stderr)
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
        # The reader went away (``| head``): stop quietly, as other tools do.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL
    except OSError as exc:
        # Faults of the machine (a full disk, a read-only directory) outside a build step.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAIL
    except RecursionError:
        print("error: the input is nested too deeply", file=sys.stderr)
        return EXIT_FAIL

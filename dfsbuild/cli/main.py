"""Command line: the parser and ``main``, the one place that turns errors into exit codes."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from dfsbuild import __version__
from dfsbuild.cli.options import command
from dfsbuild.cli.output import EXIT_FAIL
from dfsbuild.errors import DfsbuildError, InternalError, LayoutErrors

# -- parser --------------------------------------------------------------------------------------

def _unparsed_mkfs(args: argparse.Namespace) -> int:
    raise InternalError("mkfs was parsed without its image types")


def build_parser(mkfs: bool = True, only_mkfs: bool = False) -> argparse.ArgumentParser:
    """The whole parser; ``mkfs=False`` leaves out the mkfs types (which import every image
    type), for commands that do not need them; ``only_mkfs`` is the parser of ``dfsbuild
    mkfs …`` alone (its start-up is most of a small image's time)."""
    if only_mkfs:
        from dfsbuild.cli.mkfs import add_mkfs

        p = argparse.ArgumentParser(prog="dfsbuild")
        add_mkfs(p.add_subparsers(dest="command", metavar="COMMAND", required=True))
        return p
    from dfsbuild.cli import boot, build, change, housekeeping, init, read
    from dfsbuild.cli.completion import cmd_completion
    from dfsbuild.cli.trivialfs import add_trivialfs
    from dfsbuild.engine.environment import epilog

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

    if mkfs:
        from dfsbuild.cli.mkfs import add_mkfs

        add_mkfs(sub)
    else:                  # listed in --help; never run (its types are parsed when named)
        command(sub, "mkfs", _unparsed_mkfs, "make one filesystem image from a directory")
    for module in (build, init, housekeeping, read, change, boot):
        module.add_commands(sub)
    add_trivialfs(sub)
    comp = command(sub, "completion", cmd_completion, "print shell completion for bash, zsh "
                   "or fish", "Print a completion script: source <(dfsbuild completion bash) "
                   "in ~/.bashrc; zsh the same; fish: dfsbuild completion fish | source.")
    comp.add_argument("shell", choices=("bash", "zsh", "fish"))
    comp.set_defaults(parser_factory=build_parser)
    return p


def run() -> NoReturn:
    """The ``dfsbuild`` command (and ``python -m dfsbuild``): ``main`` in a process of its
    own. A build's trees, plans and extents are tens of thousands of objects without
    reference cycles, freed by their counts as they go: the cyclic collector's passes over
    them cost a third of an edit's build, so it is off; and freeing them all one by one when
    the interpreter shuts down costs a sixth more, so the process ends as soon as its output
    is flushed (every file it wrote is closed by then; nothing registers exit handlers)."""
    gc.disable()
    try:
        code: object = main()
    except SystemExit as exc:         # argparse: --help, usage errors
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = EXIT_FAIL
    status = code if isinstance(code, int) else 0
    if sys.getprofile() is not None or sys.gettrace() is not None:
        raise SystemExit(status)      # a profiler or coverage writes its results at exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:               # the reader went away (``| head``)
            status = status or EXIT_FAIL
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(mkfs="mkfs" in words, only_mkfs=words[:1] == ["mkfs"])
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

"""What the command parsers share: adding a command, the options several commands take,
and the types of their values. Each command's module adds its own commands (its
``add_commands``); ``main.build_parser`` calls them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dfsbuild.units import SizeError, parse_size

TARGET_HELP = "an image file, or DISK:PART (a partition by number or name)"


def command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str,
            description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that runs ``func``."""
    sp: argparse.ArgumentParser = sub.add_parser(name, help=help_,
                                                 description=description or help_)
    sp.set_defaults(func=func)
    return sp


def no_wait(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--no-wait", action="store_true",
                    help="fail at once if another build holds the build directory, "
                    "instead of waiting for it")


def variables(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--var", action="append", type=var, metavar="NAME=VALUE",
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


def sector_size(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--sector-size", type=int, choices=(512, 4096), metavar="BYTES",
                    help="the disk's sector size, where its bytes do not tell (an MBR); "
                    "default: found from GPT and eMBR signatures, else 512")


def size_arg(value: str) -> int:
    try:
        return parse_size(value)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def days(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from None
    if not n >= 0:
        raise argparse.ArgumentTypeError("at least 0 days")
    return n


def var(value: str) -> tuple[str, str]:
    from dfsbuild.layout.variables import parse_override

    try:
        return parse_override(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def jobs(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1 job")
    return n

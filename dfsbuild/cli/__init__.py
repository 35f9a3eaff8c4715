"""Command line: argparse and printing only; the one place that exits."""

from dfsbuild.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]

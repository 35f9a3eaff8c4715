"""``python -m dfsbuild``."""

from dfsbuild.cli import run

run()

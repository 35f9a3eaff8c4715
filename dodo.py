"""Build every layout in layouts/ with doit: run `doit` (or `doit -n 2`) here.

A firmware repository can copy this file as it is.
"""

from dfsbuild.engine.tasks import doit_config, layout_tasks

DOIT_CONFIG = doit_config()


def task_dfsbuild():  # type: ignore[no-untyped-def]
    """Every image and disk of layouts/*.toml."""
    yield from layout_tasks(["layouts"])

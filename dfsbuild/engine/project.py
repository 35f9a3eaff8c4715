"""Finding layouts and planning all of them (hashing inputs through the digest cache)."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Sequence
from pathlib import Path

from dfsbuild.engine.settings import DEFAULT_LAYOUT_DIR, Settings
from dfsbuild.errors import DfsbuildError, LayoutError
from dfsbuild.layout.load import load_layouts
from dfsbuild.plan import LayoutPlan, plan_layout
from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.walk import describe_file, scan_tree


def find_layouts(paths: Sequence[str]) -> list[str]:
    """Layout files named, or found in named directories (``*.toml``, sorted)."""
    found: list[str] = []
    for path in paths or [DEFAULT_LAYOUT_DIR]:
        if os.path.isdir(path):
            found += sorted(glob.glob(os.path.join(glob.escape(path), "*.toml")))
        else:
            found.append(path)
    if not found:
        raise LayoutError(", ".join(paths or [DEFAULT_LAYOUT_DIR]), "", "no layout files found")
    return found


def plan_project(layout_paths: Sequence[str], settings: Settings) -> list[LayoutPlan]:
    """Load, validate and plan every layout."""
    layouts = load_layouts(find_layouts(layout_paths))
    digests = DigestCache(Path(settings.build_dir) / ".dfsbuild" / "digests.json")
    plans = []
    for layout in layouts:
        try:
            plans.append(plan_layout(
                layout, settings.build_dir,
                lambda root, exclude: scan_tree(root, exclude, digests),
                lambda path: describe_file(path, digests),
            ))
        except DfsbuildError as exc:
            if isinstance(exc, LayoutError):
                raise
            raise LayoutError(layout.path, "", str(exc)) from None
    # A read-only checkout still plans: the stat cache is only a speed-up.
    with contextlib.suppress(OSError):
        digests.save()
    return plans

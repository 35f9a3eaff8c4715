"""Finding layouts and planning all of them (hashing inputs through the digest cache)."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Sequence

from dfsbuild.engine.memo import KeyMemoFile
from dfsbuild.engine.settings import DEFAULT_LAYOUT_DIR, Settings, project_root
from dfsbuild.errors import DfsbuildError, LayoutError, LayoutErrors, warn
from dfsbuild.layout.load import load_some
from dfsbuild.plan import DiskPlan, ImagePlan, LayoutPlan, plan_layout
from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.walk import Stats, describe_file, scan_tree, stat_lines
from dfsbuild.vocab.model import Layout


def find_layouts(paths: Sequence[str]) -> list[str]:
    """Layout files named, or found in named directories (``*.toml``, sorted)."""
    found: list[str] = []
    default = os.path.normpath(os.path.join(project_root(), DEFAULT_LAYOUT_DIR))
    for path in paths or [default]:
        if os.path.isdir(path):
            found += sorted(glob.glob(os.path.join(glob.escape(path), "*.toml")))
        else:
            found.append(path)
    if not found:
        raise LayoutError(", ".join(paths or [default]), "", "no layout files found")
    return found


def plan_project(layout_paths: Sequence[str], settings: Settings, hints: bool = True,
                 quiet: bool = False,
                 broken: list[LayoutError] | None = None) -> list[LayoutPlan]:
    """Load, validate and key every layout. Plans of images and disks are made when asked
    for (``prepare``); with ``hints``, an output that is current gives its recorded size, so
    a disk around unchanged images never plans them. Errors of all layouts at once
    (LayoutErrors); given ``broken``, a layout with errors is left out and its errors are
    added there instead (``--keep-going``)."""
    keep_going = broken is not None
    layouts, errors = load_some(find_layouts(layout_paths), dict(settings.variables))
    if not keep_going:
        LayoutErrors.raise_if(errors)
    try:
        report_warnings(layouts, settings, quiet)
    except LayoutErrors as exc:                 # --strict: warnings are errors
        if not keep_going:
            raise
        errors += exc.errors
        bad = {e.file for e in exc.errors}
        layouts = [layout for layout in layouts if layout.path not in bad]
    digests = DigestCache(os.path.join(settings.build_dir, ".dfsbuild", "digests.json"))
    state = settings.state
    # Keys by stats: for a build (which checks every key against the state), not when forced.
    memo = KeyMemoFile(os.path.join(settings.build_dir, ".dfsbuild", "keys.json")) \
        if hints and not settings.force else None

    def known_size(task: str, key: str, output: str, placement: str | None) -> int | None:
        record = state.current(task, key, output)
        if record is None and placement is not None:
            record = state.placed(task, placement, output)
        return record.size if record is not None else None

    plans = []
    seen: Stats = {}          # the stats the keys-by-stats pass took: the scan takes no more
    for layout in layouts:
        try:
            plans.append(plan_layout(
                layout, settings.build_dir,
                lambda root, exclude, limit: scan_tree(root, exclude, digests, limit, seen),
                lambda path, limit: describe_file(path, digests, limit),
                known_size if hints else None,
                lambda root, exclude: stat_lines(root, exclude, seen), memo,
            ))
        except DfsbuildError as exc:
            errors.append(_of_layout(layout.path, exc))
    seen.clear()              # a scan asked for later (a lazy key) takes its own stats
    if broken is None:
        LayoutErrors.raise_if(errors)
    else:
        broken += errors
    # A read-only checkout still plans: the stat cache is only a speed-up.
    with contextlib.suppress(OSError):
        digests.save()
    if memo is not None:
        memo.save()
    return plans


def report_warnings(layouts: Sequence[Layout], settings: Settings, quiet: bool) -> None:
    """Print each layout's warnings (not when ``quiet``: a JSON report lists them); with
    ``strict``, they are errors."""
    found = [LayoutError(w.file, w.where, w.message + " (an error with --strict)", hint=w.hint)
             for layout in layouts for w in layout.warnings] if settings.strict else []
    LayoutErrors.raise_if(found)
    for layout in layouts:
        for w in layout.warnings:
            if not quiet:
                warn(str(w))


def prepare(outputs: Sequence[ImagePlan | DiskPlan],
            broken: list[LayoutError] | None = None) -> None:
    """Plan these outputs now, in this process: their errors are layout errors, and doit's
    worker processes inherit the plans instead of making them again. Given ``broken``, an
    output's error is added there and the rest are still planned (``--keep-going``)."""
    for p in outputs:
        try:
            if isinstance(p, ImagePlan):
                if p.known_size is None:    # else the previous build's placement: no errors
                    p.planned  # noqa: B018
            else:
                p.placed  # noqa: B018
        except DfsbuildError as exc:
            if broken is None:
                raise _of_layout(p.layout_file, exc) from None
            broken.append(_of_layout(p.layout_file, exc))


def _of_layout(path: str, exc: DfsbuildError) -> LayoutError:
    """An error met while planning a layout, as an error of that layout (its hint kept)."""
    if isinstance(exc, LayoutError):
        return exc
    return LayoutError(path, "", str(exc), hint=exc.hint)

"""Commands that tidy up: ``clean`` (outputs, never the cache unless asked) and ``cache``
(``stats``, ``prune``)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from dfsbuild.cli.options import build_dirs, command, days, no_wait, size_arg
from dfsbuild.cli.output import EXIT_OK, print_json
from dfsbuild.errors import DfsbuildError


def cmd_clean(args: argparse.Namespace) -> int:
    from dfsbuild.cli.build import settings_of
    from dfsbuild.engine.jobs import clean_layout
    from dfsbuild.engine.lock import BuildLock
    from dfsbuild.engine.project import find_layouts
    from dfsbuild.layout.load import load_layouts

    settings = settings_of(args)
    if not os.path.isdir(settings.build_dir):
        print(f"nothing to clean: {settings.build_dir} does not exist")
        return EXIT_OK
    lock = BuildLock.acquire(settings.build_dir, wait=not args.no_wait)
    removed: list[str] = []
    if args.all:
        keep = {os.path.realpath(settings.cache_dir)}
        with os.scandir(settings.build_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            real = os.path.realpath(e.path)
            if e.name == ".dfsbuild":
                removed += _clear_dir(e.path, {"lock"})     # the lock held right now
            elif not any(os.path.commonpath([k, real]) == real for k in keep):
                _remove(e.path)
                removed.append(e.path)
    else:
        for layout in load_layouts(find_layouts(args.layouts)):
            removed += clean_layout(layout.name, os.path.join(settings.build_dir, layout.name),
                                    settings)
    if args.cache and os.path.isdir(settings.cache_dir):
        import shutil

        shutil.rmtree(settings.cache_dir)
        removed.append(settings.cache_dir)
    lock.release()
    if args.json:
        print_json({"removed": removed})
    elif not args.quiet:
        for path in removed:
            print(f"removed {path}")
        print(f"dfsbuild: {len(removed)} removed")
    return EXIT_OK


def _clear_dir(path: str, keep: set[str]) -> list[str]:
    gone = []
    with os.scandir(path) as it:
        for e in sorted(it, key=lambda e: e.name):
            if e.name not in keep:
                _remove(e.path)
                gone.append(e.path)
    return gone


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil

        shutil.rmtree(path)
    else:
        os.unlink(path)


def cmd_cache(args: argparse.Namespace) -> int:
    from dfsbuild.cli.build import settings_of

    cache = settings_of(args).cache
    if args.action == "prune":
        if args.max_size is None and args.older_than is None:
            raise DfsbuildError("cache prune: give --max-size SIZE and/or --older-than DAYS")
        pruned = cache.prune(args.max_size, args.older_than)
        left, stored = cache.entries(), cache.stored_bytes()
        if args.json:
            print_json({"removed": [e.to_json() for e in pruned.removed],
                        "freed_bytes": pruned.freed, "entries": len(left), "bytes": stored})
        else:
            print(f"removed {len(pruned.removed)} entries ({_mib(pruned.freed)}); "
                  f"{len(left)} left ({_mib(stored)}) in {cache.root}")
        return EXIT_OK
    entries = cache.entries()
    total, outputs = cache.stored_bytes(), sum(e.size for e in entries)
    now = time.time()
    data: dict[str, object] = {
        "cache_dir": str(cache.root), "entries": len(entries), "bytes": total,
        "outputs_bytes": outputs,
        "oldest_use_days": round((now - entries[0].last_used) / 86400, 2) if entries else None,
        "newest_use_days": round((now - entries[-1].last_used) / 86400, 2) if entries else None,
    }
    if args.json:
        print_json({**data, "items": [e.to_json() for e in entries]})
        return EXIT_OK
    print(f"cache {cache.root}: {len(entries)} entries ({_mib(outputs)} of outputs) stored "
          f"in {_mib(total)}")
    if entries:
        print(f"  least recently used {data['oldest_use_days']} days ago, most recently "
              f"{data['newest_use_days']} days ago")
    return EXIT_OK


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def add_commands(sub: Any) -> None:
    """The commands that look after the build directory and the cache: clean, cache."""
    cl = command(sub, "clean", cmd_clean, "remove the outputs of layouts (never the cache unless "
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

    ca = command(sub, "cache", cmd_cache, "look after the output cache: stats, prune")
    ca_sub = ca.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = ca_sub.add_parser("stats", help="entries, bytes, and when they were last used",
                           description="How many entries the cache holds, their size, and "
                           "when the least and most recently used were last used.")
    pr = ca_sub.add_parser("prune", help="remove entries, least recently used first",
                           description="Remove entries not used for DAYS days, then the least "
                           "recently used until their pieces take at most SIZE; then every "
                           "piece no entry uses, and leftovers of interrupted stores.")
    pr.add_argument("--max-size", type=size_arg, metavar="SIZE",
                    help="keep at most this much (e.g. 10GiB, 500MiB)")
    pr.add_argument("--older-than", type=days, metavar="DAYS",
                    help="remove entries not used for this many days")
    for sp in (st, pr):
        sp.set_defaults(func=cmd_cache)
        build_dirs(sp)
        sp.add_argument("--json", action="store_true", help="machine-readable output")

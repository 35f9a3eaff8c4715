"""Commands that make images: mkfs, build, check, plan. Imports are lazy: ``--help`` and the
commands that do not build stay quick."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from dfsbuild.cli.options import build_dirs, command, jobs, no_wait, strict, variables
from dfsbuild.cli.output import EXIT_FAIL, EXIT_OK, print_json

if TYPE_CHECKING:
    from dfsbuild.errors import DfsbuildError, LayoutError
    from dfsbuild.plan import LayoutPlan


PLAN_FORMAT = 1      # `plan --json`: bumped when a field changes meaning or goes away


def settings_of(args: argparse.Namespace) -> Any:
    from dfsbuild.engine.settings import Settings

    verbosity = 1
    if getattr(args, "quiet", False):
        verbosity = 0
    elif getattr(args, "verbose", False):
        verbosity = 2
    return Settings.from_env(args.build_dir, args.cache_dir, getattr(args, "explain", False),
                             getattr(args, "json", False), getattr(args, "force", False),
                             getattr(args, "no_cache", False), verbosity,
                             getattr(args, "remote_cache", None),
                             getattr(args, "remote_cache_read_only", False),
                             getattr(args, "strict", False),
                             getattr(args, "var", None) or ())


def cmd_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    from dfsbuild.engine.lock import BuildLock
    from dfsbuild.errors import FAULTS

    settings = settings_of(args)
    lock = None
    cannot_write = ""
    try:
        lock = BuildLock.acquire(settings.build_dir, wait=not args.no_wait)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        # A read-only build directory is fine as long as nothing has to be written.
        cannot_write = FAULTS.get(exc.errno or 0, str(exc.strerror))
    try:
        return _build(args, settings, lock, cannot_write, started)
    finally:                    # a process ends with its lock; one that goes on (a test) too
        if lock is not None:
            lock.release()


def _build(args: argparse.Namespace, settings: Any, lock: Any, cannot_write: str,
           started: float) -> int:
    from dfsbuild.engine.jobs import outputs, stale
    from dfsbuild.engine.project import prepare
    from dfsbuild.engine.reporter import Results
    from dfsbuild.errors import DfsbuildError, LayoutError, LayoutErrors

    keep_going = getattr(args, "keep_going", False)
    broken: list[LayoutError] | None = [] if keep_going else None
    try:
        plans, only = _plan_targets(args.layouts, settings, hints=True, broken=broken)
    except (LayoutError, LayoutErrors) as exc:
        _json_errors(settings, exc)
        raise
    todo = stale(plans, settings, only)
    if todo and lock is None:
        raise DfsbuildError(f"{settings.build_dir}: {cannot_write}; {len(todo)} outputs need "
                            f"building ({todo[0].task} first)",
                            hint="build elsewhere with --build-dir")
    try:
        prepare(todo, broken)
    except LayoutError as exc:
        _json_errors(settings, exc)
        raise
    if broken:                          # --keep-going: build what the others need
        left_out = {e.file for e in broken}
        plans = [lp for lp in plans if lp.layout.path not in left_out]
        todo = [p for p in todo if p.layout_file not in left_out]
        if only is not None:
            only = {t for lp in plans for t in (p.task for p in outputs(lp)) if t in only}
    failed = EXIT_FAIL if broken else EXIT_OK
    if not todo:
        results = Results(settings, sys.stdout, started)
        results.layout_errors(broken or [])
        for lp in plans:
            for p in outputs(lp):
                if only is None or p.task in only:
                    results.up_to_date(p.task, p.output)
        results.finish()
        return failed
    from dfsbuild.engine.tasks import run_doit

    status = run_doit(plans, settings, args.jobs, started,
                      sorted(only) if only is not None else None, keep_going,
                      tuple(broken or ()))
    return EXIT_OK if status == 0 and not broken else EXIT_FAIL


def _plan_targets(words: list[str], settings: Any, hints: bool,
                  broken: Any = None) -> tuple[Any, set[str] | None]:
    """Plans of the layouts named (``LAYOUT:disk`` / ``LAYOUT:image.NAME`` name one output),
    and the tasks to run: the named outputs and what they are made of (None: all). Given
    ``broken``, layouts with errors are left out and their errors added there."""
    from dfsbuild.engine.jobs import selected, split_target
    from dfsbuild.engine.project import plan_project

    named = [(_layout_file(path) if target is not None else path, target)
             for path, target in map(split_target, words)]
    plans = plan_project(list(dict.fromkeys(path for path, _ in named)), settings,
                         hints=hints, quiet=settings.json, broken=broken)
    return plans, selected(plans, [(p, t) for p, t in named if t is not None])


def _layout_file(word: str) -> str:
    """``board`` of a task name as builds print it (``board:disk``): the layout
    ``layouts/board.toml`` of the project, when no file is called ``board``."""
    from dfsbuild.engine.settings import DEFAULT_LAYOUT_DIR, project_root

    if os.path.exists(word) or os.sep in word or word.endswith(".toml"):
        return word
    candidate = os.path.join(project_root(), DEFAULT_LAYOUT_DIR, f"{word}.toml")
    return os.path.normpath(candidate) if os.path.isfile(candidate) else word


def _json_errors(settings: Any, exc: DfsbuildError) -> None:
    """With --json, a build that fails before it starts still prints one document: the
    errors as objects (the ``error:`` lines go to standard error as always)."""
    from dfsbuild.errors import LayoutErrors

    if settings.json:
        found: list[LayoutError] = []
        LayoutErrors.gather(found, exc)
        print_json({"outputs": [], "errors": [e.to_json() for e in found]})


def cmd_check(args: argparse.Namespace) -> int:
    from dfsbuild.engine.project import plan_project, prepare
    from dfsbuild.errors import LayoutError, LayoutErrors

    settings = settings_of(args)
    found: list[LayoutError] = []
    lines: list[str] = []
    warnings: list[dict[str, object]] = []
    try:
        plans = plan_project(args.layouts, settings, hints=False, quiet=args.json)
    except (LayoutError, LayoutErrors) as exc:
        LayoutErrors.gather(found, exc)
        plans = []
    # Planning finds what loading cannot: overlaps, capacity, sizes of nested images.
    for lp in plans:
        layout = lp.layout
        warnings += [w.to_json() for w in layout.warnings]
        try:
            prepare([*lp.images.values(), *([lp.disk] if lp.disk is not None else [])])
        except LayoutError as exc:
            found.append(exc)
            continue
        too_large = _too_large(lp)
        if too_large is not None:
            found.append(too_large)
            continue
        kinds = ", ".join(f"{n} ({s.type})" for n, s in layout.images.items()) or "no images"
        disk = ""
        if lp.disk is not None and lp.disk.placed.partitions:
            disk = f"; {lp.disk.table} disk with {len(lp.disk.placed.partitions)} partitions"
        lines.append(f"{layout.path}: ok: {kinds}{disk}")
    if args.json:
        print_json([*(e.to_json() for e in found), *warnings])
        return EXIT_FAIL if found else EXIT_OK
    for line in lines:
        print(line)
    LayoutErrors.raise_if(found)
    return EXIT_OK


def _too_large(lp: LayoutPlan) -> LayoutError | None:
    """An output the build directory's filesystem cannot hold (the build would fail there)."""
    from dfsbuild.errors import LayoutError
    from dfsbuild.fileio.limits import file_fits

    sizes = [(f"image.{name}", p.output, p.size_bytes) for name, p in lp.images.items()]
    if lp.disk is not None:
        sizes.append(("disk", lp.disk.output, lp.disk.placed.size_bytes))
    for key, output, size in sizes:
        if not file_fits(os.path.dirname(output), size):
            return LayoutError(lp.layout.path, key, f"{size} bytes is more than a file can "
                               f"hold on the filesystem of {os.path.dirname(output)}",
                               hint="build on a filesystem that holds larger files (ext4 "
                               "stops at 16 TiB), or make the output smaller")
    return None


def cmd_verify(args: argparse.Namespace) -> int:
    from dfsbuild.engine.jobs import outputs
    from dfsbuild.engine.project import prepare
    from dfsbuild.engine.verify import verify

    settings = settings_of(args)
    plans, only = _plan_targets(args.layouts, settings, hints=False)
    for lp in plans:
        prepare([p for p in outputs(lp) if only is None or p.task in only])
    results = verify(plans, settings, only)
    bad = [r for r in results if not r["ok"]]
    if args.json:
        print_json(results)
    else:
        for r in results:
            print(f"{'ok' if r['ok'] else 'DIFFERS':8} {r['task']}  {r['path']}"
                  + (f"\n         {r['reason']}" if r["reason"] else ""))
        print(f"{len(results) - len(bad)} of {len(results)} outputs are what the layouts "
              "build now")
    return EXIT_FAIL if bad else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    if args.manifest:
        from dfsbuild.engine.manifest import schema_text as manifest_schema

        sys.stdout.write(manifest_schema())
        return EXIT_OK
    from dfsbuild.layout.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from dfsbuild.engine.project import plan_project, prepare

    plans = plan_project(args.layouts, settings_of(args), hints=False)
    for lp in plans:
        prepare([*lp.images.values(), *([lp.disk] if lp.disk is not None else [])])
    from dfsbuild.shown import shown

    data = [p.to_json() for p in plans]
    if args.json:
        print_json([{"format-version": PLAN_FORMAT, **p} for p in data])
        return EXIT_OK
    for p in data:
        print(f"layout {p['name']} ({p['layout']}) -> {p['build_dir']}")
        images = p["images"]
        assert isinstance(images, list)
        for img in images:
            contains = f", contains {', '.join(img['contains'])}" if img["contains"] else ""
            print(f"  image {img['name']}: {img['type']}, {img['size_bytes']} bytes, "
                  f"{img['files']} files{contains}")
            # An option left unset takes its default (see the key table): "default".
            options = ", ".join(f"{k} {shown(v, 'default')}"
                                for k, v in img["options"].items())
            if options:
                print(f"    options {options}")
            print(f"    output {img['output']}")
            print(f"    key    {img['key']}")
        disk = p["disk"]
        if isinstance(disk, dict):
            _print_disk_plan(disk)
    return EXIT_OK


def _print_disk_plan(disk: dict[str, Any]) -> None:
    if "image" in disk:
        print(f"  disk: table {disk['table']}, image {disk['image']} -> {disk['output']}")
        print(f"    key    {disk['key']}")
        return
    print(f"  disk: table {disk['table']}, {disk['total_sectors']} sectors of "
          f"{disk['sector_size']} bytes -> {disk['output']}")
    print(f"    usable sectors {disk['first_usable_lba']}..{disk['last_usable_lba']}")
    for key in ("disk_id", "guid"):
        if key in disk:
            print(f"    {key.replace('_', '-')} {disk[key]}")
    if "extended" in disk:
        e = disk["extended"]
        print(f"    #{e['number']:<3} {e['start_lba']:>12}..{e['last_lba']:<12} extended")
    for part in disk["partitions"]:
        what = f"image {part['image']}" if part["image"] else "empty"
        print(f"    #{part['number']:<3} {part['start_lba']:>12}..{part['last_lba']:<12} "
              f"{part['name']} ({what}): {part['reason']}")
    for r in disk.get("regions", []):
        print(f"    region {r['start']:>9}..{r['end'] - 1:<9} bytes {r['name']} (image "
              f"{r['image']}, {r['image_bytes']} of {r['size']} bytes)")
    print(f"    key    {disk['key']}")


def add_commands(sub: Any) -> None:
    """The commands that key and build layouts: build, check, plan, verify, schema."""
    b = command(sub, "build", cmd_build, "build layouts (only what changed)",
            "Build every output of the layouts (default: every *.toml in layouts/). Outputs "
            "whose inputs did not change are left alone; outputs in the cache are restored.")
    b.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/); "
                   "LAYOUT:disk or LAYOUT:image.NAME builds that output and what it needs")
    build_dirs(b)
    b.add_argument("-j", "--jobs", type=jobs, default=1, metavar="N",
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

    c = command(sub, "check", cmd_check, "validate layouts without building (every rule, partition "
            "placement included)")
    c.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/)")
    build_dirs(c)
    strict(c)
    variables(c)
    c.add_argument("--json", action="store_true", help="print every error and warning as a "
                   "JSON list of objects (severity, file, key, value, rule, hint); [] when "
                   "all is well")

    pl = command(sub, "plan", cmd_plan, "show what a build would produce, and each output's key")
    pl.add_argument("layouts", nargs="*", metavar="LAYOUT",
                    help="layout files or directories of them (default: layouts/)")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    build_dirs(pl)
    variables(pl)

    v = command(sub, "verify", cmd_verify, "check that outputs on disk are what the layouts "
                "build now (writes nothing)", "For each output: is the build state's key the "
                "layout's current key for the file as it is, and are its bytes those the "
                "layout builds now (made again in a temporary file, compared by sha256)? "
                "Nothing in the build directory or the cache is written. Exit 0 when all "
                "are, 1 otherwise.")
    v.add_argument("layouts", nargs="*", metavar="LAYOUT",
                   help="layout files or directories of them (default: layouts/); "
                   "LAYOUT:disk or LAYOUT:image.NAME verifies that output and what it needs")
    v.add_argument("--json", action="store_true", help="a list of {task, path, ok, check, "
                   "reason}")
    build_dirs(v)
    variables(v)

    sc = command(sub, "schema", cmd_schema, "print the JSON Schema of layout files (for "
                 "editors), or of the disk manifest",
                 "Print a JSON Schema (draft 2020-12) of the layout format, generated from the "
                 "same tables as the loader: every key with its type, default and help. "
                 "Editors that read TOML with a schema (taplo, Even Better TOML) complete and "
                 "check layouts with it: put `#:schema ./schema/layout.schema.json` on a "
                 "layout's first line. With --manifest: the schema of OUTPUT.json, the "
                 "manifest written beside every disk.")
    sc.add_argument("--manifest", action="store_true",
                    help="the schema of the disk manifest (OUTPUT.json) instead")

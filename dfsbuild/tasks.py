"""doit tasks from layouts: the only module that imports doit.

Used by a repository's ``dodo.py`` (see the one at the top of this project) and by
``dfsbuild build``, which embeds doit. Up-to-date is decided by content keys (cache.py), the
output is restored from the content-addressed cache when it holds the key, and every output is
written to a temporary file and renamed into place.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.exceptions import TaskFailed
from doit.loader import generate_tasks
from doit.reporter import ConsoleReporter

from dfsbuild.cache import OutputCache
from dfsbuild.digest import DigestCache
from dfsbuild.disktable import table_structures
from dfsbuild.errors import DfsbuildError, InputError, LayoutError
from dfsbuild.image import (
    place_file,
    remove_stale_temporaries,
    resolve_sizes,
    write_copy,
    write_disk,
    write_romfs_file,
)
from dfsbuild.layout import load_layouts
from dfsbuild.plan import DiskPlan, ImagePlan, LayoutPlan, plan_layout
from dfsbuild.state import StateStore, explain
from dfsbuild.tree import describe_file, scan_tree

DEFAULT_LAYOUT_DIR = "layouts"
DEFAULT_BUILD_DIR = "build"
CACHE_ENV = "DFSBUILD_CACHE_DIR"
BUILD_ENV = "DFSBUILD_BUILD_DIR"
EXPLAIN_ENV = "DFSBUILD_EXPLAIN"


@dataclass(frozen=True, slots=True)
class Settings:
    build_dir: str
    cache_dir: str
    explain: bool = False
    json: bool = False

    @classmethod
    def from_env(cls, build_dir: str | None = None, cache_dir: str | None = None,
                 explain: bool = False, json: bool = False) -> Settings:
        build = build_dir or os.environ.get(BUILD_ENV) or DEFAULT_BUILD_DIR
        cache = cache_dir or os.environ.get(CACHE_ENV) or os.path.join(build, ".cache")
        explain = explain or bool(os.environ.get(EXPLAIN_ENV))
        return cls(os.path.abspath(build), os.path.abspath(cache), explain, json)

    @property
    def state(self) -> StateStore:
        return StateStore(Path(self.build_dir) / ".dfsbuild" / "state")

    @property
    def cache(self) -> OutputCache:
        return OutputCache(Path(self.cache_dir))


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
    """Load, validate and plan every layout (hashing inputs through the digest cache)."""
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
    digests.save()
    return plans


# -- actions (run in doit workers) ---------------------------------------------------------------

def _produce(task: str, key: str, output: str, material: dict[str, object], settings: Settings,
             write: Any) -> dict[str, str]:
    state = settings.state
    reason = ""
    if settings.explain or settings.json:  # the old manifest can be large: read it on demand
        reason = explain(state.previous_material(task), material, output)
    remove_stale_temporaries(output)
    cached = settings.cache.lookup(key)
    if cached is not None:
        place_file(str(cached), output)
        outcome = "restored"
    else:
        write()
        settings.cache.store(key, Path(output))
        outcome = "built"
    state.record(task, key, output, material)
    return {"outcome": outcome, "reason": reason}


def run_image(plan: ImagePlan, outputs: dict[str, str], settings: Settings) -> Any:
    spec = plan.spec

    def write() -> None:
        if spec.type == "raw":
            assert spec.file is not None
            write_copy(plan.output, spec.file)
            return
        assert plan.root is not None
        resolve_sizes(plan.root, outputs)
        write_romfs_file(plan.output, plan.root, spec.volume, spec.align_bytes,
                         (plan.layout_file, spec.key))

    try:
        return _produce(plan.task, plan.key, plan.output, plan.material, settings, write)
    except DfsbuildError as exc:
        return TaskFailed(str(exc))


def run_disk(plan: DiskPlan, outputs: dict[str, str], settings: Settings) -> Any:
    def write() -> None:
        if plan.image is not None:
            write_copy(plan.output, outputs[plan.image])
            return
        disk = plan.disk
        assert disk is not None
        code = b""
        if plan.boot_code is not None:
            try:
                code = Path(plan.boot_code).read_bytes()
            except OSError as exc:
                raise InputError(f"{plan.boot_code}: cannot read: {exc.strerror}") from None
        structures = table_structures(disk, code, plan.layout_file)
        contents = [(p.start_lba * disk.sector_size, outputs[p.image],
                     p.size_sectors * disk.sector_size)
                    for p in disk.partitions if p.image is not None]
        write_disk(plan.output, disk.size_bytes, disk.sector_size, structures, contents)

    try:
        return _produce(plan.task, plan.key, plan.output, plan.material, settings, write)
    except DfsbuildError as exc:
        return TaskFailed(str(exc))


# -- task dictionaries ---------------------------------------------------------------------------

class UpToDate:
    """doit uptodate check: the output holds exactly what the current key describes."""

    def __init__(self, settings: Settings, task: str, key: str, output: str) -> None:
        self.args = (settings, task, key, output)

    def __call__(self, task: Any = None, values: Any = None) -> bool:
        settings, name, key, output = self.args
        return settings.state.is_current(name, key, output)


def task_dicts(plans: list[LayoutPlan], settings: Settings) -> Iterator[dict[str, Any]]:
    def task(plan: ImagePlan | DiskPlan, doc: str, action: Any, inner: list[str],
             lp: LayoutPlan) -> dict[str, Any]:
        return {
            "basename": plan.task,
            "doc": doc,
            "actions": [(action, [plan, lp.outputs(), settings])],
            "targets": [plan.output],
            "task_dep": [lp.images[name].task for name in inner],
            "uptodate": [UpToDate(settings, plan.task, plan.key, plan.output)],
            "verbosity": 2,
        }

    for lp in plans:
        for plan in lp.images.values():
            yield task(plan, f"{plan.spec.type} image {plan.spec.name} of {lp.layout.path}",
                       run_image, list(plan.deps), lp)
        if lp.disk is not None:
            yield task(lp.disk, f"{lp.disk.table} disk of {lp.layout.path}", run_disk,
                       lp.disk.images, lp)


def doit_config(settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings.from_env()
    os.makedirs(s.build_dir, exist_ok=True)
    return {
        "dep_file": os.path.join(s.build_dir, ".doit.db"),
        "backend": "json",
        "reporter": type("BoundReporter", (Reporter,), {"settings": s}),
        "verbosity": 2,
    }


def layout_tasks(paths: Sequence[str] = (DEFAULT_LAYOUT_DIR,),
                 settings: Settings | None = None) -> Iterator[dict[str, Any]]:
    """Task dicts for a ``dodo.py``: ``yield from layout_tasks(["layouts"])``."""
    s = settings or Settings.from_env()
    try:
        plans = plan_project(paths, s)
    except DfsbuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        raise SystemExit(1) from None
    yield from task_dicts(plans, s)


# -- reporting -----------------------------------------------------------------------------------

class Reporter(ConsoleReporter):  # type: ignore[misc]
    """One line per output produced, failures as ``error:`` lines, and a summary at the end."""

    desc = "dfsbuild: one line per output and a summary"
    settings = Settings("build", "build/.cache")

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.names: dict[str, list[str]] = {"built": [], "restored": [], "up_to_date": [],
                                            "failed": []}
        self.reasons: dict[str, str] = {}
        self.started = time.monotonic()
        self._errors: list[str] = []

    def execute_task(self, task: Any) -> None:
        pass

    def skip_uptodate(self, task: Any) -> None:
        self.names["up_to_date"].append(task.name)

    def skip_ignore(self, task: Any) -> None:
        pass

    def add_success(self, task: Any) -> None:
        values = getattr(task, "values", None) or {}
        outcome = "restored" if values.get("outcome") == "restored" else "built"
        self.names[outcome].append(task.name)
        self.reasons[task.name] = str(values.get("reason", ""))
        if self.settings.json:
            return
        line = f"{outcome:<8} {task.name}"
        if self.settings.explain and values.get("reason"):
            line += f"  ({values['reason']})"
        self.outstream.write(line + "\n")
        self.outstream.flush()

    def add_failure(self, task: Any, fail: Any) -> None:
        self.names["failed"].append(task.name)
        message = fail.get_msg() if hasattr(fail, "get_msg") else str(fail)
        self._errors.append(f"error: {task.name}: {message.strip()}\n")

    def runtime_error(self, msg: str) -> None:
        self._errors.append(f"error: {msg.strip()}\n")

    def complete_run(self) -> None:
        for err in self._errors:
            sys.stderr.write(err)
        seconds = time.monotonic() - self.started
        if self.settings.json:
            data = {**self.names, "reasons": self.reasons, "seconds": round(seconds, 3)}
            self.outstream.write(json.dumps(data, indent=2) + "\n")
            return
        n = {k: len(v) for k, v in self.names.items()}
        self.outstream.write(
            f"dfsbuild: {n['built']} built, {n['restored']} restored from cache, "
            f"{n['up_to_date']} up to date, {n['failed']} failed ({seconds:.2f}s)\n"
        )


class Loader(TaskLoader2):  # type: ignore[misc]
    def __init__(self, plans: list[LayoutPlan], settings: Settings) -> None:
        super().__init__()
        self.plans = plans
        self.settings = settings

    def setup(self, opt_values: dict[str, Any]) -> None:
        pass

    def load_doit_config(self) -> dict[str, Any]:
        return doit_config(self.settings)

    def load_tasks(self, cmd: Any, pos_args: Any) -> list[Any]:
        tasks: list[Any] = []
        for d in task_dicts(self.plans, self.settings):
            tasks += generate_tasks(d["basename"], d)
        return tasks


def run_doit(plans: list[LayoutPlan], settings: Settings, jobs: int = 1) -> int:
    """Run the build of every planned output through doit; returns doit's exit status."""
    args = ["run"]
    if jobs > 1:
        args += ["-n", str(jobs), "-P", "process"]
    return int(DoitMain(Loader(plans, settings)).run(args))

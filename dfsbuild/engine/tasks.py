"""doit tasks from layout plans: the only module that imports doit.

Used by a repository's ``dodo.py`` (see the one at the top of this project) and by
``dfsbuild build``, which embeds doit when something has to be produced. Up-to-date is
decided by content keys and the state (state.py); the work of each task is the one-output
build step (step.py); ``doit clean`` removes what ``dfsbuild clean`` removes.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.exceptions import TaskFailed
from doit.loader import generate_tasks

from dfsbuild.engine.jobs import clean_layout, disk_job, image_job, outputs, stale
from dfsbuild.engine.lock import BuildLock
from dfsbuild.engine.project import plan_project, prepare
from dfsbuild.engine.reporter import Reporter
from dfsbuild.engine.settings import DEFAULT_LAYOUT_DIR, Settings
from dfsbuild.engine.step import produce
from dfsbuild.engine.workdir import DB_NAME, doit_db
from dfsbuild.errors import DfsbuildError
from dfsbuild.plan import DiskPlan, ImagePlan, LayoutPlan

# -- actions (run in doit workers) ---------------------------------------------------------------

def run_output(plan: ImagePlan | DiskPlan, lp: LayoutPlan, settings: Settings) -> Any:
    job = image_job(plan, lp) if isinstance(plan, ImagePlan) else disk_job(plan, lp)
    try:
        return produce(job, settings)
    except DfsbuildError as exc:
        return TaskFailed(str(exc))


def run_clean(lp: LayoutPlan, settings: Settings) -> None:
    for path in clean_layout(lp.layout.name, lp.build_dir, settings):
        print(f"removed {path}")


# -- task dictionaries ---------------------------------------------------------------------------

class UpToDate:
    """doit uptodate check: the output holds exactly what the current key describes, and
    the files made from it (a disk's .bmap, .simg, .xz) are there."""

    def __init__(self, settings: Settings, task: str, key: str, output: str,
                 companions: Sequence[str] = ()) -> None:
        self.args = (settings, task, key, output, tuple(companions))

    def __call__(self, task: Any = None, values: Any = None) -> bool:
        settings, name, key, output, companions = self.args
        return not settings.force and settings.state.is_current(name, key, output) and \
            all(os.path.isfile(c) for c in companions)


def task_dicts(plans: list[LayoutPlan], settings: Settings) -> Iterator[dict[str, Any]]:
    for lp in plans:
        first = True
        for plan in outputs(lp):
            if isinstance(plan, ImagePlan):
                doc = f"{plan.spec.type} image {plan.spec.name} of {lp.layout.path}"
                inner = list(plan.deps)
            else:
                doc = f"{plan.table} disk of {lp.layout.path}"
                inner = [*plan.images, *plan.reads]
            yield {
                "basename": plan.task,
                "doc": doc,
                "actions": [(run_output, [plan, lp, settings])],
                "targets": [plan.output],
                "task_dep": [lp.images[name].task for name in inner],
                "uptodate": [UpToDate(settings, plan.task, plan.key, plan.output,
                                      plan.companions())],
                # The layout's first task cleans the whole layout: stale outputs too.
                "clean": [(run_clean, [lp, settings])] if first else [],
                "verbosity": 2,
            }
            first = False


def doit_config(settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings.from_env()
    return {
        "dep_file": doit_db(s.build_dir),
        "backend": "sqlite3",
        "reporter": type("BoundReporter", (Reporter,), {"settings": s}),
        "verbosity": 2,
        # doit's own default is the sys.stdout of when doit was imported; a program that
        # builds more than once (a test, an IDE) may have another one now.
        "outfile": sys.stdout,
    }


_LOCKS: list[BuildLock] = []


def layout_tasks(paths: Sequence[str] = (DEFAULT_LAYOUT_DIR,),
                 settings: Settings | None = None) -> Iterator[dict[str, Any]]:
    """Task dicts for a ``dodo.py``: ``yield from layout_tasks(["layouts"])``. Holds the build
    directory's lock until doit exits."""
    s = settings or Settings.from_env()
    try:
        _LOCKS.append(BuildLock.acquire(s.build_dir))
        plans = plan_project(paths, s)
        prepare(stale(plans, s))
    except DfsbuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        raise SystemExit(1) from None
    yield from task_dicts(plans, s)


# -- embedding doit ----------------------------------------------------------------------------

class Loader(TaskLoader2):  # type: ignore[misc]
    def __init__(self, plans: list[LayoutPlan], settings: Settings, started: float,
                 broken: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.plans = plans
        self.settings = settings
        self.started = started
        self.broken = broken

    def setup(self, opt_values: dict[str, Any]) -> None:
        pass

    def load_doit_config(self) -> dict[str, Any]:
        config = doit_config(self.settings)
        config["reporter"] = type("BoundReporter", (Reporter,), {"settings": self.settings,
                                                                 "started_at": self.started,
                                                                 "broken": self.broken})
        return config

    def load_tasks(self, cmd: Any, pos_args: Any) -> list[Any]:
        tasks: list[Any] = []
        for d in task_dicts(self.plans, self.settings):
            tasks += generate_tasks(d["basename"], d)
        return tasks


def run_doit(plans: list[LayoutPlan], settings: Settings, jobs: int, started: float,
             tasks: list[str] | None = None, keep_going: bool = False,
             broken: tuple[Any, ...] = ()) -> int:
    """Run the build of every planned output (or of ``tasks``, which hold what they need)
    through doit; returns doit's exit status. ``keep_going``: a failed output does not stop
    the others (doit's --continue); ``broken``: errors of layouts left out, reported too."""
    args = ["run"]
    if jobs > 1:
        args += ["-n", str(jobs), "-P", "process"]
    if keep_going:
        args.append("--continue")
    args += tasks or []
    try:
        return int(DoitMain(Loader(plans, settings, started, broken)).run(args))
    except sqlite3.Error as exc:     # doit's database, written after each task
        raise DfsbuildError(f"{os.path.join(settings.build_dir, DB_NAME)}: {exc}; the outputs "
                            "already built are in place, build again") from None

"""doit tasks from layout plans: the only module that imports doit.

Used by a repository's ``dodo.py`` (see the one at the top of this project) and by
``dfsbuild build``, which embeds doit. Up-to-date is decided by content keys (cache.py); the
work of each task is the one-output build step (step.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.exceptions import TaskFailed
from doit.loader import generate_tasks

from dfsbuild.engine.project import plan_project
from dfsbuild.engine.reporter import Reporter
from dfsbuild.engine.settings import DEFAULT_LAYOUT_DIR, Settings
from dfsbuild.engine.step import produce
from dfsbuild.engine.write import write_disk, write_image
from dfsbuild.errors import DfsbuildError
from dfsbuild.plan import DiskPlan, ImagePlan, LayoutPlan

# -- actions (run in doit workers) ---------------------------------------------------------------

def run_image(plan: ImagePlan, lp: LayoutPlan, settings: Settings) -> Any:
    try:
        return produce(plan.task, plan.key, plan.output, plan.material, settings,
                       lambda: write_image(plan))
    except DfsbuildError as exc:
        return TaskFailed(str(exc))


def run_disk(plan: DiskPlan, lp: LayoutPlan, settings: Settings) -> Any:
    sizes = {name: p.size_bytes for name, p in lp.images.items()}
    try:
        return produce(plan.task, plan.key, plan.output, plan.material, settings,
                       lambda: write_disk(plan, lp.outputs(), sizes))
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
            "actions": [(action, [plan, lp, settings])],
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


# -- embedding doit ----------------------------------------------------------------------------

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

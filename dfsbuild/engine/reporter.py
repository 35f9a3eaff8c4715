"""What a build prints: a line when an output starts and when it is done, failures as
``error:`` lines, a summary that counts planning; or, with ``--json``, one document with every
output (task, path, outcome, reason, size, sha256, seconds). ``-q`` keeps only errors and
warnings; ``-v`` adds the reasons and the outputs that were up to date."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from dfsbuild.engine.settings import Settings

OUTCOMES = ("built", "patched", "restored", "remote", "up_to_date", "failed")


class Results:
    """Every output's outcome, printed as it comes and summed up at the end."""

    def __init__(self, settings: Settings, out: Any, started: float) -> None:
        self.settings = settings
        self.out = out
        self.started = started
        self.planned_at = time.monotonic()
        self.rows: list[dict[str, object]] = []
        self.errors: list[str] = []
        self.error_objects: list[dict[str, object]] = []
        self.broken_layouts = 0

    def _say(self, line: str, level: int = 1) -> None:
        if not self.settings.json and self.settings.verbosity >= level:
            self.out.write(line + "\n")
            self.out.flush()

    def starting(self, task: str) -> None:
        self._say(f"building {task}")

    def done(self, task: str, values: dict[str, Any]) -> None:
        outcome = str(values.get("outcome") or "built")
        row = {"task": task, "path": values.get("path"), "outcome": outcome,
               "reason": values.get("reason", ""), "size": values.get("size"),
               "sha256": values.get("sha256"), "seconds": values.get("seconds")}
        if values.get("remote_problem"):
            row["remote_problem"] = values["remote_problem"]
        self.rows.append(row)
        size = values.get("size")
        what = f"{outcome:<8} {task}"
        if values.get("path"):
            what += f"  {_shown_path(str(values['path']))}"
        if isinstance(size, int):
            what += f"  {_size(size)} in {values.get('seconds', 0):.2f}s"
        if self.settings.explain and values.get("reason"):
            what += f"  ({values['reason']})"
        self._say(what)

    def up_to_date(self, task: str, output: str) -> None:
        record = self.settings.state.load(task)
        sha = record.sha256 if record is not None else None
        size = record.size if record is not None else None
        if self.settings.json and sha is None and size is not None:
            sha = _hash(output, size)
        self.rows.append({"task": task, "path": output, "outcome": "up_to_date", "reason": "",
                          "size": size, "sha256": sha, "seconds": 0.0})
        self._say(f"current  {task}  {_shown_path(output)}", level=2)

    def failed(self, task: str, output: str | None, message: str) -> None:
        self.rows.append({"task": task, "path": output, "outcome": "failed",
                          "reason": message, "size": None, "sha256": None, "seconds": None})
        self.errors.append(f"error: {task}: {message}")
        self.error_objects.append({"severity": "error", "task": task, "path": output,
                                   "rule": message})

    def layout_errors(self, errors: list[Any]) -> None:
        """Errors of layouts left out of a ``--keep-going`` build (LayoutError objects)."""
        for e in errors:
            self.errors.append(f"error: {e}" + (f"\nhint: {e.hint}" if e.hint else ""))
            self.error_objects.append(e.to_json())
        self.broken_layouts = len({e.file for e in errors})

    def error(self, message: str) -> None:
        self.errors.append(f"error: {message}")
        self.error_objects.append({"severity": "error", "task": None, "path": None,
                                   "rule": message})

    def finish(self) -> None:
        for err in self.errors:
            sys.stderr.write(err + "\n")
        now = time.monotonic()
        planning = self.planned_at - self.started
        total = now - self.started
        counts = {k: sum(1 for r in self.rows if r["outcome"] == k) for k in OUTCOMES}
        if self.settings.json:
            data: dict[str, object] = {
                k: [r["task"] for r in self.rows if r["outcome"] == k] for k in OUTCOMES}
            data.update(outputs=self.rows, errors=self.error_objects,
                        planning_seconds=round(planning, 3),
                        seconds=round(total, 3),
                        reasons={str(r["task"]): r["reason"] for r in self.rows
                                 if r["outcome"] not in ("up_to_date", "failed")})
            self.out.write(json.dumps(data, indent=2) + "\n")
            return
        remote = ""
        if self.settings.remote_cache:
            problems = sum(1 for r in self.rows if r.get("remote_problem"))
            remote = f"{counts['remote']} restored from remote cache, "
            if problems:
                remote += f"{problems} remote cache problem{'s' if problems > 1 else ''}, "
        broken = ""
        if self.broken_layouts:
            n = self.broken_layouts
            broken = f", {n} layout{'s' if n > 1 else ''} left out"
        self._say(f"dfsbuild: {counts['built']} built, {counts['patched']} patched, "
                  f"{counts['restored']} restored from cache, {remote}{counts['up_to_date']} "
                  f"up to date, {counts['failed']} failed{broken} (planning {planning:.2f}s, "
                  f"total {total:.2f}s)")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def _hash(path: str, size: int) -> str | None:
    try:
        from dfsbuild.fileio.digest import sha256_path

        return sha256_path(path, size)
    except OSError:
        return None


class Reporter:
    """doit's reporter interface, implemented whole (doit calls these by name), over Results."""

    desc = "dfsbuild: a line per output and a summary"
    settings = Settings("build", "build/.cache")
    started_at: float | None = None
    broken: tuple[Any, ...] = ()          # layouts left out (--keep-going): their errors

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        started = self.started_at if self.started_at is not None else time.monotonic()
        self.results = Results(self.settings, outstream, started)
        if self.broken:
            self.results.layout_errors(list(self.broken))

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        pass

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        self.results.starting(task.name)

    def teardown_task(self, task: Any) -> None:
        pass

    def cleanup_error(self, exception: Any) -> None:
        self.results.error(exception.get_msg().strip())

    def skip_uptodate(self, task: Any) -> None:
        self.results.up_to_date(task.name, task.targets[0] if task.targets else "")

    def skip_ignore(self, task: Any) -> None:
        pass

    def add_success(self, task: Any) -> None:
        self.results.done(task.name, getattr(task, "values", None) or {})

    def add_failure(self, task: Any, fail: Any) -> None:
        message = fail.get_msg() if hasattr(fail, "get_msg") else str(fail)
        self.results.failed(task.name, task.targets[0] if task.targets else None,
                            message.strip())

    def runtime_error(self, msg: str) -> None:
        self.results.error(msg.strip())

    def complete_run(self) -> None:
        self.results.finish()


def _shown_path(path: str) -> str:
    """An output's path as the user would type it: relative to here when it is below."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel

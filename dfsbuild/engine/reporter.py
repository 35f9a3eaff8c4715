"""What a build prints: one line per output produced, failures as ``error:`` lines, a
summary; or one JSON document."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from dfsbuild.engine.settings import Settings


class Reporter:
    """One line per output produced, failures as ``error:`` lines, and a summary at the end.

    doit's reporter interface, implemented whole (doit calls these by name)."""

    desc = "dfsbuild: one line per output and a summary"
    settings = Settings("build", "build/.cache")

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        self.outstream = outstream
        self.names: dict[str, list[str]] = {"built": [], "restored": [], "up_to_date": [],
                                            "failed": []}
        self.reasons: dict[str, str] = {}
        self.started = time.monotonic()
        self._errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        pass

    def get_status(self, task: Any) -> None:
        pass

    def execute_task(self, task: Any) -> None:
        pass

    def teardown_task(self, task: Any) -> None:
        pass

    def cleanup_error(self, exception: Any) -> None:
        self._errors.append(f"error: {exception.get_msg().strip()}\n")

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

"""Keys remembered by the stats of the inputs they were computed from (``plan.KeyMemo``), so a
build whose inputs are untouched takes each image's key from one ``lstat`` per input, without
hashing, assembling a tree or making a manifest (as git's index answers ``git status``).

A key is remembered only when every input was older than the racy-stat window when it was
read: a later write within the filesystem's timestamp granularity changes the ctime, which
nobody can set back, so equal stats mean equal contents. Kept in
``BUILD/.dfsbuild/keys.json``; losing it costs one full keying, nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from dfsbuild.trees.digest import RACY_NS

VERSION = 1


class KeyMemoFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._entries: dict[str, list[str]] = {}
        self._dirty = False
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == VERSION and \
                isinstance(data.get("keys"), dict):
            self._entries = data["keys"]

    def lookup(self, task: str, stats: str) -> str | None:
        entry = self._entries.get(task)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == stats and \
                isinstance(entry[1], str):
            return entry[1]
        return None

    def remember(self, task: str, stats: str, key: str, newest_ns: int) -> None:
        if time.time_ns() - newest_ns <= RACY_NS:
            if self._entries.pop(task, None) is not None:
                self._dirty = True
            return
        if self._entries.get(task) != [stats, key]:
            self._entries[task] = [stats, key]
            self._dirty = True

    def save(self) -> None:
        """Written when something changed; a read-only build directory just keeps none."""
        if not self._dirty:
            return
        head, name = os.path.split(self.path)
        with contextlib.suppress(OSError):
            os.makedirs(head, exist_ok=True)
            tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
            with open(tmp, "w") as f:
                f.write(json.dumps({"version": VERSION, "keys": self._entries}))
            os.replace(tmp, self.path)
        self._dirty = False

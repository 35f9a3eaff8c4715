"""doit's own database in the build directory: a sqlite file (written in transactions, so an
interrupted build cannot leave it half-written); one that will not open is set aside with a
warning and doit starts a new one. dfsbuild's decisions never depend on its contents."""

from __future__ import annotations

import contextlib
import os
import sqlite3

from dfsbuild.errors import warn

DB_NAME = ".doit.sqlite"


def doit_db(build_dir: str) -> str:
    os.makedirs(build_dir, exist_ok=True)
    path = os.path.join(build_dir, DB_NAME)
    if os.path.exists(path) and not _healthy(path):
        aside = f"{path}.corrupt"
        os.replace(path, aside)
        warn(f"{path}: doit's database is damaged; set aside as {os.path.basename(aside)}, "
             "starting a new one")
    return path


def _healthy(path: str) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("PRAGMA quick_check").fetchone()
            return bool(row) and row[0] == "ok"
    except sqlite3.Error:
        return False

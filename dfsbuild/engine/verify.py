"""``dfsbuild verify``: does each output on disk hold exactly what the layout builds now?

Keys first: the build state must record the output's current key for the file as it is (same
size, mtime and inode). Then bytes: the output is made again into an anonymous temporary file
(never into the build directory, never into the cache) and its sha256 compared with the
file's. Nothing in the build directory is written; the state is only read.
"""

from __future__ import annotations

import os
import tempfile

from dfsbuild.engine.jobs import outputs
from dfsbuild.engine.settings import Settings
from dfsbuild.engine.state import explain
from dfsbuild.engine.write import write_disk, write_image
from dfsbuild.fileio.digest import sha256_fd, sha256_path
from dfsbuild.plan import DiskPlan, ImagePlan, LayoutPlan


def verify(plans: list[LayoutPlan], settings: Settings,
           only: set[str] | None = None) -> list[dict[str, object]]:
    """One result per output: ``task``, ``path``, ``ok``, ``check`` (``key`` or ``bytes``,
    whichever decided) and ``reason``."""
    state = settings.state
    results: list[dict[str, object]] = []
    for lp in plans:
        for p in outputs(lp):
            if only is not None and p.task not in only:
                continue
            row: dict[str, object] = {"task": p.task, "path": p.output, "ok": False,
                                      "check": "key", "reason": ""}
            results.append(row)
            if not os.path.lexists(p.output):
                row["reason"] = "missing"
                continue
            record = state.load(p.task)
            if record is None or record.in_progress:
                row["reason"] = "no build state (built elsewhere, or interrupted)"
                continue
            if state.current(p.task, p.key, p.output) is None:
                row["reason"] = ("the layout or its inputs changed since it was built: " +
                                 explain(state.previous_material(p.task), p.material,
                                         p.output)) if record.key != p.key else \
                    "the file changed since it was built"
                continue
            row["check"] = "bytes"
            size = os.stat(p.output).st_size
            found = sha256_path(p.output, size)
            want, want_size = _rebuilt(p, lp)
            if (found, size) != (want, want_size):
                row["reason"] = f"holds other bytes than the layout builds now (sha256 " \
                                f"{found[:12]}…, expected {want[:12]}…)"
                continue
            row["ok"] = True
    return results


def _rebuilt(p: ImagePlan | DiskPlan, lp: LayoutPlan) -> tuple[str, int]:
    """sha256 and size of the output made again in an anonymous temporary file."""
    with tempfile.TemporaryFile(prefix="dfsbuild-verify-") as f:
        fd = f.fileno()
        if isinstance(p, ImagePlan):
            write_image(p, fd)
        else:
            write_disk(p, {name: lp.images[name] for name in p.images}, fd)
        size = os.fstat(fd).st_size
        return sha256_fd(fd, size), size

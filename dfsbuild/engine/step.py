"""The one-output build step: restore from the cache when it holds the key, else write the
output and store it; record what was produced. Faults become DfsbuildErrors, never
tracebacks."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from dfsbuild.engine.settings import Settings
from dfsbuild.engine.state import explain
from dfsbuild.errors import DfsbuildError
from dfsbuild.fileio.atomic import place_file, remove_stale_temporaries

FAULTS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
          errno.EACCES: "permission denied", errno.EFBIG: "the file system cannot hold a file "
          "that large", errno.EDQUOT: "disk quota exceeded"}


def produce(task: str, key: str, output: str, material: dict[str, object], settings: Settings,
            write: Callable[[], None]) -> dict[str, str]:
    state = settings.state
    reason = ""
    try:
        if settings.explain or settings.json:  # the old manifest can be large: read on demand
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
    except OSError as exc:
        what = FAULTS.get(exc.errno or 0, exc.strerror or str(exc))
        where = exc.filename if isinstance(exc.filename, str) else os.path.dirname(output)
        raise DfsbuildError(f"{where}: {what}; {output} was left as it was") from None
    return {"outcome": outcome, "reason": reason}

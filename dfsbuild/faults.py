"""Named points where a test stops the process dead, as a power cut or ``kill -9`` would.

``DFSBUILD_FAULT=NAME`` sends SIGKILL to the process the first time it passes the point NAME;
a test then knows the build died exactly in the window it means to check (a timed kill
cannot tell). Nothing sets the variable but tests. The points:

- ``written``: an output written to its temporary, before its inputs are checked;
- ``stored``: stored in the cache, before the temporary takes the output's place;
- ``rewrite-begun`` / ``rewritten``: an image's in-place rewrite marked "in progress", and
  its bytes written but not yet recorded;
- ``patch-begun`` / ``patch-region-written``: a disk patch marked "in progress", and its
  first changed region copied.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "DFSBUILD_FAULT"
POINTS = ("written", "stored", "rewrite-begun", "rewritten", "patch-begun",
          "patch-region-written")


def point(name: str) -> None:
    """Die here when the test asked for this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

"""Anonymous scratch files: room for bytes a format must hold before it knows their size (a
compressed archive while planning, a decompressed one while reading), on disk, never in
memory, gone when closed."""

from __future__ import annotations

import tempfile
from typing import BinaryIO


def scratch() -> BinaryIO:
    """An unnamed read-write file in the temporary directory; the caller closes it."""
    return tempfile.TemporaryFile()

"""The build's single notion of time.

Formats that store timestamps use one value for every object: ``SOURCE_DATE_EPOCH`` when it is
set, else a fixed default. It is clamped to what every supported format can store: not before
1980-01-01 (FAT and eMBR cannot go earlier) and not after 2106-02-07 (32-bit unsigned seconds,
as cpio newc stores them). Host file mtimes never reach an image.
"""

from __future__ import annotations

import os

from dfsbuild.errors import DfsbuildError

EPOCH_1980 = 315532800  # 1980-01-01T00:00:00Z
MAX_U32 = 0xFFFFFFFF
DEFAULT_EPOCH = EPOCH_1980


def build_time(environ: dict[str, str] | None = None) -> int:
    """Seconds since the Unix epoch used for every stored timestamp."""
    env = os.environ if environ is None else environ
    raw = env.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return DEFAULT_EPOCH
    try:
        value = int(raw)
    except ValueError:
        raise DfsbuildError(
            f"SOURCE_DATE_EPOCH={raw!r} is not an integer number of seconds"
        ) from None
    return min(max(value, EPOCH_1980), MAX_U32)

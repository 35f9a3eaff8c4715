"""Every ID dfsbuild writes (disk signatures, GUIDs, serials) is derived from the layout's
seed and the ID's purpose: the same layout gives the same bytes anywhere."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid


def derive_uuid(seed: str, purpose: str) -> uuid.UUID:
    import uuid  # with platform behind it: only when an ID is made

    digest = hashlib.sha256(f"dfsbuild:{seed}:{purpose}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def derive_u32(seed: str, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"dfsbuild:{seed}:{purpose}".encode()).digest()[:4],
                          "little")

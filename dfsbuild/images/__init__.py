"""Image types: one registry, one package (or module) per type.

Adding a type is one package under ``images/`` (records, write, read, handler) and one line
here. The order is the order in which ``inspect`` probes an unknown image.
"""

from __future__ import annotations

from dfsbuild.images import raw
from dfsbuild.images.base import ImageType
from dfsbuild.images.cpio import handler as cpio
from dfsbuild.images.erofs import handler as erofs
from dfsbuild.images.fat import handler as fat
from dfsbuild.images.romfs import handler as romfs
from dfsbuild.images.trivialfs import handler as trivialfs
from dfsbuild.images.verity import handler as verity

IMAGE_TYPES: dict[str, ImageType] = {
    "romfs": romfs.TYPE,
    "fat": fat.TYPE,
    "trivialfs": trivialfs.TYPE,
    "erofs": erofs.TYPE,
    "cpio": cpio.TYPE,
    "verity": verity.TYPE,
    "raw": raw.TYPE,
}

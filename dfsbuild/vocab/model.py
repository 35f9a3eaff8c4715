"""The typed, frozen model a layout file is loaded into.

The fields every image, disk and partition has are here; what only one image type or table
kind has lives in that type's options record (``options``), built from its Setting table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEVICE_KINDS = ("char", "block", "fifo", "socket")


@dataclass(frozen=True, slots=True)
class FileSpec:
    """``files."DEST" = {...}``: one file added to a filesystem image."""

    dest: str                 # path inside the image, "/"-separated, no leading slash
    where: str                # its dotted key in the layout, for messages
    file: str | None = None   # host path (absolute) of the content
    image: str | None = None  # name of a nested image whose output is the content
    mode: int | None = None   # permission bits; None: the host file's, or 0644 for images
    reserve: int | None = None  # bytes kept for the file on disk (types with file_reserve)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """``devices."DEST" = {...}``: a special file declared without needing root."""

    dest: str
    where: str
    kind: str                 # char | block | fifo | socket
    major: int = 0
    minor: int = 0
    mode: int = 0o600


@dataclass(frozen=True, slots=True)
class Contents:
    """What a filesystem image holds: a host tree, single files, declared special files."""

    tree: str | None = None          # host directory (absolute)
    exclude: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    dirs: tuple[str, ...] = ()           # empty directories to create


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """``[image.NAME]``: one image, also an output of its own."""

    name: str
    type: str                  # a key of images.IMAGE_TYPES
    where: str                 # "image.NAME"
    output: str                # relative to the layout's build directory
    options: Any               # the type's frozen options record
    contents: Contents = field(default_factory=Contents)
    origin: str | None = None  # the included file that defines it (None: the layout itself)
    uses: tuple[tuple[str, str], ...] = ()   # (setting, image): images its type reads

    def nested(self) -> tuple[str, ...]:
        """Names of the images this one contains or reads, in layout order."""
        return tuple(f.image for f in self.contents.files if f.image is not None) + \
            tuple(name for _, name in self.uses)


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """``[[disk.partition]]``: one partition, filled by an image or left empty."""

    index: int
    where: str                      # "disk.partition[N]"
    name: str
    image: str | None = None
    start_bytes: int | None = None  # None: after the previous partition, aligned
    size_bytes: int | None = None   # None: fit the image
    rest: bool = False              # size = "rest": up to the end of the disk
    options: Any = None             # the table kind's partition options record
    sparse: bool = False            # also an Android sparse image of its bytes

    @property
    def label(self) -> str:
        """How messages name it: ``disk.partition[2] (rootfs)``."""
        return f"{self.where} ({self.name})"


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """``[[disk.region]]``: an image at a fixed byte offset, outside the partition table
    (a boot loader blob)."""

    index: int
    where: str                      # "disk.region[N]"
    name: str
    image: str
    start_bytes: int
    size_bytes: int | None = None   # None: the image's size

    @property
    def label(self) -> str:
        return f"{self.where} ({self.name})"


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """``[disk]``."""

    table: str                       # a key of tables.TABLE_KINDS
    output: str
    options: Any                     # the table kind's frozen options record
    partitions: tuple[PartitionSpec, ...] = ()
    regions: tuple[RegionSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Layout:
    """One layout file: its images (dependency order decided by planning) and its disk."""

    path: str                  # the layout file as given
    name: str                  # file stem: names the build subdirectory and the doit tasks
    schema: int
    images: dict[str, ImageSpec] = field(default_factory=dict)
    disk: DiskSpec | None = None
    warnings: tuple[Any, ...] = ()   # layout.warnings.LayoutWarning, found when loaded

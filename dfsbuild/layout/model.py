"""The typed, frozen model a layout file is loaded into."""

from __future__ import annotations

from dataclasses import dataclass, field

IMAGE_TYPES = ("romfs", "raw")
DEVICE_KINDS = ("char", "block", "fifo", "socket")
TABLE_KINDS = ("none",)


@dataclass(frozen=True, slots=True)
class FileSpec:
    """``files."DEST" = {...}``: one file added to a filesystem image."""

    dest: str                 # path inside the image, "/"-separated, no leading slash
    key: str                  # dotted key path, for messages
    file: str | None = None   # host path (absolute) of the content
    image: str | None = None  # name of a nested image whose output is the content
    mode: int | None = None   # permission bits; None: the host file's, or 0644 for images


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """``devices."DEST" = {...}``: a special file declared without needing root."""

    dest: str
    key: str
    kind: str                 # char | block | fifo | socket
    major: int = 0
    minor: int = 0
    mode: int = 0o600


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """``[image.NAME]``: one image, also an output of its own."""

    name: str
    type: str                  # romfs | raw
    key: str                   # "image.NAME"
    output: str                # relative to the layout's build directory
    volume: str = ""           # romfs volume name
    align_bytes: int = 16      # romfs: alignment of regular file data
    tree: str | None = None    # host directory (absolute)
    exclude: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    file: str | None = None    # raw: the host file taken as is

    def nested(self) -> tuple[str, ...]:
        """Names of the images this one contains, in layout order."""
        return tuple(f.image for f in self.files if f.image is not None)

    def options(self) -> dict[str, object]:
        """The settings that shape the output bytes (host paths excluded: contents count)."""
        return {
            "type": self.type,
            "volume": self.volume,
            "align": self.align_bytes,
            "exclude": list(self.exclude),
        }


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """``[disk]``."""

    table: str
    output: str
    image: str | None = None   # table = "none": the one image that is the disk


@dataclass(frozen=True, slots=True)
class Layout:
    path: str                  # the layout file as given
    name: str                  # file stem: names the build subdirectory and the doit tasks
    schema: int
    images: dict[str, ImageSpec] = field(default_factory=dict)
    disk: DiskSpec | None = None

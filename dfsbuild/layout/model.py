"""The typed, frozen model a layout file is loaded into."""

from __future__ import annotations

from dataclasses import dataclass, field

IMAGE_TYPES = ("romfs", "raw")
DEVICE_KINDS = ("char", "block", "fifo", "socket")
TABLE_KINDS = ("none", "mbr", "gpt", "embr")


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
class PartitionSpec:
    """``[[disk.partition]]``: one partition, filled by an image or left empty."""

    index: int
    key: str                       # "disk.partition[N]"
    name: str
    image: str | None = None
    start_bytes: int | None = None  # None: after the previous partition, aligned
    size_bytes: int | None = None   # None: fit the image
    rest: bool = False              # size = "rest": up to the end of the disk
    type: int | str | None = None   # MBR type byte or GPT type GUID (resolved)
    bootable: bool = False
    logical: bool = False           # MBR: inside the extended partition
    uuid: str | None = None         # GPT unique partition GUID
    attributes: int = 0             # GPT attribute bits
    hidden: bool = False            # eMBR flag bit 1
    os_signature: int = 0           # eMBR
    hybrid: bool = False            # GPT: also listed in a hybrid MBR
    mbr_type: int | None = None     # GPT hybrid: the MBR type byte


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """``[disk]``."""

    table: str
    output: str
    image: str | None = None         # table = "none": the one image that is the disk
    size_bytes: int | None = None    # None: "auto", the smallest disk that fits
    sector_size: int = 512
    align_bytes: int = 1 << 20
    seed: str = ""
    disk_id: int | None = None       # MBR disk signature
    guid: str | None = None          # GPT disk GUID
    lba48: bool = False              # MBR: 48-bit entries for partitions past 2^32 sectors
    boot_code: str | None = None     # eMBR: host file for the sectors from LBA 1
    boot_delay: int = 10             # eMBR seconds
    legacy_boot: bool = True         # eMBR: keep within the 64 KiB legacy limit
    spare_entries: int = 4           # eMBR: unused entries after the partitions
    partitions: tuple[PartitionSpec, ...] = ()

    def options(self) -> dict[str, object]:
        """Everything but host paths; those count through their contents."""
        return {
            "table": self.table, "size": self.size_bytes, "sector-size": self.sector_size,
            "align": self.align_bytes, "seed": self.seed, "disk-id": self.disk_id,
            "guid": self.guid, "lba48": self.lba48, "boot-delay": self.boot_delay,
            "legacy-boot": self.legacy_boot, "spare-entries": self.spare_entries,
            "partitions": [
                {"name": p.name, "image": p.image, "start": p.start_bytes,
                 "size": p.size_bytes, "rest": p.rest, "type": p.type,
                 "bootable": p.bootable, "logical": p.logical, "uuid": p.uuid,
                 "attributes": p.attributes, "hidden": p.hidden,
                 "os-signature": p.os_signature, "hybrid": p.hybrid, "mbr-type": p.mbr_type}
                for p in self.partitions
            ],
        }


@dataclass(frozen=True, slots=True)
class Layout:
    path: str                  # the layout file as given
    name: str                  # file stem: names the build subdirectory and the doit tasks
    schema: int
    images: dict[str, ImageSpec] = field(default_factory=dict)
    disk: DiskSpec | None = None

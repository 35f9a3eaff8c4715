"""What a partition-table kind is: its settings, its plan (every sector decided, every
structure's bytes made), its detection and its reader; and the two models they share: the
planned disk (PlacedDisk) and the disk as read (DiskTable)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.vocab.model import DiskSpec, PartitionSpec, RegionSpec
from dfsbuild.vocab.settings import (
    Context,
    Setting,
    build_options,
    options_json,
    read_settings,
)
from dfsbuild.vocab.table import Table

Structures = list[tuple[int, bytes]]     # (LBA, bytes) of every table structure
MAX_FILE_BYTES = (1 << 63) - 1           # the largest file offset a host can address


# -- planning ---------------------------------------------------------------------------------

@dataclass(slots=True)
class DiskJob:
    """What planning a disk needs from outside the layout: image sizes, the build's time,
    and host inputs named by the layout (read here, so the worker never plans again)."""

    file: str                              # the layout file, for messages
    sizes: dict[str, int]                  # image name -> output size in bytes
    created: int                           # the build time rule, as Unix seconds
    read_input: Callable[[str], bytes]     # a small host file named by the layout
    # image name -> the partition GUID its contents give it (a root hash's half); None: given
    # once the images are built
    partition_uuids: dict[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class PlacedPartition:
    """A partition of the layout with its sectors and number decided."""

    number: int                  # MBR: 1-4 primary, 5.. logical; GPT/eMBR: entry index + 1
    name: str
    image: str | None
    start_lba: int
    size_sectors: int
    reason: str
    spec: PartitionSpec
    header_lba: int | None = None   # a sector of the table just before it (MBR: its EBR)
    image_bytes: int = 0
    facts: dict[str, object] = field(default_factory=dict)   # derived IDs, resolved types

    @property
    def last_lba(self) -> int:  # inclusive
        return self.start_lba + self.size_sectors - 1


@dataclass(frozen=True, slots=True)
class PlacedRegion:
    """A ``[[disk.region]]`` where it lands: bytes ``start .. start + size``."""

    name: str
    image: str
    start: int
    size: int
    image_bytes: int
    spec: RegionSpec

    @property
    def end(self) -> int:  # exclusive
        return self.start + self.size


@dataclass(slots=True)
class PlacedDisk:
    """A planned disk: every partition's sectors and every table structure's bytes."""

    table: str
    sector_size: int
    total_sectors: int
    first_usable: int
    last_usable: int             # inclusive
    partitions: list[PlacedPartition]
    structures: Structures = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)   # disk ID, GUID, extended, …
    whole_image: str | None = None   # table "none": the image that is the whole disk
    regions: list[PlacedRegion] = field(default_factory=list)
    pending: bool = False            # some bytes wait for the built images (DiskPlan.settled)

    @property
    def size_bytes(self) -> int:
        return self.total_sectors * self.sector_size

    def contents(self) -> list[tuple[int, str, int]]:
        """(byte offset, image name, room in bytes) of every partition filled by an image."""
        if self.whole_image is not None:
            return [(0, self.whole_image, self.size_bytes)]
        ss = self.sector_size
        return [*((r.start, r.image, r.size) for r in self.regions),
                *((p.start_lba * ss, p.image, p.size_sectors * ss)
                  for p in self.partitions if p.image is not None)]

    def to_json(self, partition_settings: tuple[Setting, ...]) -> dict[str, object]:
        data: dict[str, object] = {
            "table": self.table, "sector_size": self.sector_size,
            "total_sectors": self.total_sectors, "size_bytes": self.size_bytes,
            "first_usable_lba": self.first_usable, "last_usable_lba": self.last_usable,
        }
        data.update(self.facts)
        parts = []
        for p in self.partitions:
            item: dict[str, object] = {
                "number": p.number, "name": p.name, "image": p.image,
                "start_lba": p.start_lba, "size_sectors": p.size_sectors,
                "start": p.start_lba, "size": p.size_sectors,  # sfdisk's and the manifest's
                "last_lba": p.last_lba, "reason": p.reason, "image_bytes": p.image_bytes,
            }
            if p.header_lba is not None:
                item["ebr_lba"] = p.header_lba
            if p.spec.options is not None:
                item.update(options_json(partition_settings, p.spec.options))
            item.update(p.facts)
            parts.append(item)
        data["partitions"] = parts
        data["regions"] = [{"name": r.name, "image": r.image, "start": r.start, "size": r.size,
                            "end": r.end, "image_bytes": r.image_bytes}
                           for r in self.regions]
        return data


# -- reading ----------------------------------------------------------------------------------

@dataclass(slots=True)
class DiskPartition:
    """One partition as a table read from bytes describes it."""

    number: int
    start_lba: int
    size_sectors: int
    type: str                    # MBR: hex byte ("83"); GPT: type GUID; eMBR: "embr"
    bootable: bool = False       # the MBR active flag (JSON "bootable", as sfdisk)
    name: str = ""
    extra: dict[str, object] = field(default_factory=dict)   # JSON fields beyond sfdisk's
    dump: list[str] = field(default_factory=list)   # ``sfdisk --dump`` fields after type=

    @property
    def last_lba(self) -> int:
        return self.start_lba + self.size_sectors - 1


_NUMBER = re.compile(r"[0-9]+")


@dataclass(slots=True)
class DiskTable:
    """A partition table read from a disk image."""

    label: str                   # dos | gpt | embr (sfdisk's names)
    id: str
    sector_size: int
    partitions: list[DiskPartition]
    problems: list[tuple[int, str]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)   # JSON fields of the table
    dump_header: list[str] = field(default_factory=list)     # ``--dump`` lines after unit:
    dump_trailer: list[str] = field(default_factory=list)    # lines after the partitions
    # (offset, size) in bytes of the table's own structures outside its partitions (sector
    # 0; GPT headers and entry arrays); ``diff`` reports their changes as table changes.
    structures: list[tuple[int, int]] = field(default_factory=list)
    boot_code: int = 0           # bytes of boot code at the start of sector 0 (MBR: 440)

    def find(self, selector: str) -> DiskPartition:
        """A partition by number (ASCII digits only) or by name."""
        if _NUMBER.fullmatch(selector):
            for p in self.partitions:
                if p.number == int(selector):
                    return p
        elif selector:
            for p in self.partitions:
                if p.name == selector:
                    return p
        names = ", ".join(f"{p.number}" + (f" ({p.name})" if p.name else "")
                          for p in self.partitions)
        raise FormatError(self.label, None, f"no partition {selector!r}; there are: "
                          f"{names or 'none'}")


# -- the kind ---------------------------------------------------------------------------------

class TableKind:
    """Base of every partition-table kind: override what the kind has."""

    name: ClassVar[str]
    help: ClassVar[str]
    revision: ClassVar[int]              # bump when the bytes change for the same plan
    disk_settings: ClassVar[tuple[Setting, ...]]
    disk_options: ClassVar[type]
    partition_settings: ClassVar[tuple[Setting, ...]] = ()
    partition_options: ClassVar[type | None] = None   # None: the kind has no partitions

    def load_disk(self, table: Table, ctx: Context) -> Any:
        return build_options(self.disk_options, self.disk_settings,
                             read_settings(table, self.disk_settings, ctx))

    def load_partition(self, table: Table, ctx: Context, name: str) -> Any:
        if self.partition_options is None:
            return None
        return build_options(self.partition_options, self.partition_settings,
                             read_settings(table, self.partition_settings, ctx))

    def check(self, spec: DiskSpec, file: str) -> None:
        """Rules across the partitions of one disk, checked when the layout is loaded."""

    def expects(self, options: Any) -> tuple[str, ...]:
        """The filesystems a partition of this type is meant to hold (empty: any)."""
        return ()

    def is_esp(self, options: Any) -> bool:
        """Whether a partition of this type is an EFI system partition (UEFI firmware boots
        its EFI/BOOT/BOOT<ARCH>.EFI)."""
        return False

    def inputs(self, spec: DiskSpec) -> tuple[str, ...]:
        """Host files the table's own structures are made from (eMBR boot code)."""
        return ()

    def sector_size(self, options: Any) -> int:
        return int(getattr(options, "sector_size", 512))

    def images(self, spec: DiskSpec) -> tuple[str, ...]:
        """The images this disk is made of (regions first, then partitions)."""
        return (*(r.image for r in spec.regions),
                *(p.image for p in spec.partitions if p.image is not None))

    def plan(self, spec: DiskSpec, job: DiskJob) -> PlacedDisk:
        raise NotImplementedError

    def detect(self, src: ByteSource) -> bool:
        """True if the bytes hold a table of this kind (the first detected kind is read)."""
        return False

    def read(self, src: ByteSource, sector_size: int | None) -> DiskTable:
        raise FormatError(self.name, 0, "no reader for this kind")

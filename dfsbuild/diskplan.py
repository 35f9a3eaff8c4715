"""Disk planning: every partition's first and last sector, every ID, and why. Pure.

Partitions are placed in layout order. A partition without ``start`` goes at the first
``align`` boundary after the previous one; without ``size`` it takes its image's size in whole
sectors; ``size = "rest"`` (last partition only) runs to the last usable sector. Logical MBR
partitions each get an EBR at an aligned sector with the data at the next boundary, as sfdisk
lays them out.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass

from dfsbuild.errors import CapacityError, LayoutError
from dfsbuild.formats import embr, gpt
from dfsbuild.formats.mbr import MAX_U32, MAX_U48
from dfsbuild.layout.model import DiskSpec, PartitionSpec
from dfsbuild.units import align_up, format_size


@dataclass(slots=True)
class PlacedPartition:
    number: int                  # MBR: 1-4 primary, 5.. logical; GPT/eMBR: entry index + 1
    name: str
    image: str | None
    start_lba: int
    size_sectors: int
    reason: str
    type: int | str | None = None   # MBR byte or GPT type GUID
    bootable: bool = False
    logical: bool = False
    ebr_lba: int | None = None
    uuid: str | None = None
    attributes: int = 0
    hidden: bool = False
    os_signature: int = 0
    hybrid: bool = False
    mbr_type: int | None = None
    image_bytes: int = 0

    @property
    def last_lba(self) -> int:  # inclusive
        return self.start_lba + self.size_sectors - 1


@dataclass(slots=True)
class DiskLayout:
    table: str
    sector_size: int
    total_sectors: int
    align_sectors: int
    first_usable: int
    last_usable: int             # inclusive
    partitions: list[PlacedPartition]
    disk_id: int = 0             # MBR signature
    guid: str = ""               # GPT disk GUID
    extended: tuple[int, int, int] | None = None   # MBR: (slot, start LBA, sectors)
    lba48: bool = False
    embr_geometry: embr.EmbrGeometry | None = None
    boot_delay: int = 0
    created: int = 0             # eMBR: seconds since 1980-01-01

    @property
    def size_bytes(self) -> int:
        return self.total_sectors * self.sector_size

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "table": self.table, "sector_size": self.sector_size,
            "total_sectors": self.total_sectors, "size_bytes": self.size_bytes,
            "first_usable_lba": self.first_usable, "last_usable_lba": self.last_usable,
        }
        if self.table == "mbr":
            data["disk_id"] = f"0x{self.disk_id:08x}"
            if self.extended:
                slot, start, size = self.extended
                data["extended"] = {"number": slot, "start_lba": start, "size_sectors": size,
                                    "last_lba": start + size - 1}
        if self.table == "gpt":
            data["guid"] = self.guid
        if self.embr_geometry is not None:
            data["embr"] = {"header_lba": self.embr_geometry.header_lba,
                            "remaining": self.embr_geometry.remaining,
                            "entry_count": self.embr_geometry.entry_count,
                            "boot_delay": self.boot_delay, "created": self.created}
        parts = []
        for p in self.partitions:
            item = asdict(p)
            item["last_lba"] = p.last_lba
            if isinstance(p.type, int):
                item["type"] = f"0x{p.type:02x}"
            parts.append(item)
        data["partitions"] = parts
        return data


def derive_uuid(seed: str, purpose: str) -> uuid.UUID:
    digest = hashlib.sha256(f"dfsbuild:{seed}:{purpose}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def derive_u32(seed: str, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"dfsbuild:{seed}:{purpose}".encode()).digest()[:4],
                          "little")


def plan_disk(spec: DiskSpec, file: str, image_sizes: dict[str, int], created: int = 0,
              boot_code_bytes: int = 0) -> DiskLayout:
    """Place every partition; ``image_sizes`` maps image names to their output sizes."""
    ss = spec.sector_size
    a = spec.align_bytes // ss
    total = spec.size_bytes // ss if spec.size_bytes is not None else None
    geo = None
    if spec.table == "mbr":
        first = 1
    elif spec.table == "gpt":
        first = gpt.first_usable(ss)
    else:
        code_sectors = max(1, -(-boot_code_bytes // ss))
        geo = embr.geometry(len(spec.partitions) + spec.spare_entries, ss, code_sectors)
        first = geo.last_lba + 1
        if spec.legacy_boot and (1 + geo.remaining) * ss > embr.LEGACY_LIMIT:
            raise LayoutError(file, "disk.spare-entries", f"the eMBR area needs "
                              f"{(1 + geo.remaining) * ss} bytes from LBA 1; legacy firmware "
                              f"loads at most {embr.LEGACY_LIMIT}",
                              hint="fewer entries, or legacy-boot = false")

    def last_usable(n: int) -> int:
        return gpt.last_usable(n, ss) if spec.table == "gpt" else n - 1

    placed: list[PlacedPartition] = []
    cursor = first
    extended_start: int | None = None
    for p in spec.partitions:
        size_note = ""
        ebr_lba = None
        if p.logical:
            if extended_start is None:
                extended_start = align_up(cursor, a)
            ebr_lba = align_up(cursor, a) if p.start_bytes is None else p.start_bytes // ss - 1
            if p.start_bytes is None:
                start = align_up(ebr_lba + 1, a)
                where = f"EBR at {ebr_lba}, data at the next {format_size(spec.align_bytes)} " \
                        "boundary"
            else:
                start = p.start_bytes // ss
                where = f"start given; EBR at {ebr_lba}"
        elif p.start_bytes is not None:
            start = p.start_bytes // ss
            where = "start given"
        else:
            start = align_up(cursor, a)
            after = f"after {placed[-1].name}" if placed else "first usable sector " + str(first)
            where = f"aligned to {format_size(spec.align_bytes)}, {after}"
        check_from = ebr_lba if ebr_lba is not None else start
        if check_from < cursor:
            _overlap(file, p, check_from, placed, first)
        image_bytes = image_sizes.get(p.image, 0) if p.image else 0
        if p.rest:
            if total is None:
                raise LayoutError(file, f"{p.key}.size", "\"rest\" needs a disk size (size "
                                  "is \"auto\")")
            size = last_usable(total) + 1 - start
            size_note = "rest of the disk"
            if size <= 0:
                raise CapacityError(file, f"{p.key}.size", f"no room left: the partition would "
                                    f"start at sector {start}, the last usable is "
                                    f"{last_usable(total)}")
        elif p.size_bytes is not None:
            size = p.size_bytes // ss
            size_note = "size given"
        else:
            size = max(1, -(-image_bytes // ss))
            size_note = f"fits image {p.image} ({image_bytes} bytes)"
        if image_bytes > size * ss:
            raise CapacityError(file, f"{p.key}.size", f"image {p.image!r} needs {image_bytes} "
                                f"bytes; the partition holds {size * ss} ({size} sectors)")
        placed.append(PlacedPartition(
            0, p.name, p.image, start, size, f"{where}; {size_note}", p.type, p.bootable,
            p.logical, ebr_lba, None, p.attributes, p.hidden, p.os_signature, p.hybrid,
            p.mbr_type, image_bytes))
        cursor = start + size
    end = cursor
    if total is None:
        backup = gpt.array_sectors(ss) + 1 if spec.table == "gpt" else 0
        total = align_up(end + backup, a)
    last = last_usable(total)
    for pp, p in zip(placed, spec.partitions, strict=True):
        if pp.last_lba > last:
            raise CapacityError(file, p.key, f"partition {p.name!r} ends at sector "
                                f"{pp.last_lba}, past the last usable sector {last} of a "
                                f"{total}-sector disk")
    layout = DiskLayout(spec.table, ss, total, a, first, last, placed, lba48=spec.lba48)
    if spec.table == "mbr":
        _number_mbr(layout, spec, file)
        layout.disk_id = spec.disk_id if spec.disk_id is not None else \
            derive_u32(spec.seed, "mbr-disk-id")
    elif spec.table == "gpt":
        layout.guid = spec.guid or str(derive_uuid(spec.seed, "gpt-disk")).upper()
        for i, (pp, p) in enumerate(zip(placed, spec.partitions, strict=True)):
            pp.number = i + 1
            pp.uuid = p.uuid or str(derive_uuid(spec.seed, f"gpt-partition:{p.name}")).upper()
    else:
        for i, pp in enumerate(placed):
            pp.number = i + 1
        layout.embr_geometry = geo
        layout.boot_delay = spec.boot_delay
        layout.created = created
    return layout


def _overlap(file: str, p: PartitionSpec, start: int, placed: list[PlacedPartition],
             first: int) -> None:
    for q in placed:
        low = q.ebr_lba if q.ebr_lba is not None else q.start_lba
        if low <= start <= q.last_lba or start < low:
            raise LayoutError(file, f"{p.key}.start", f"partition {p.name!r} would start at "
                              f"sector {start}, inside partition {q.name!r} (sectors {low}.."
                              f"{q.last_lba})", hint="partitions are placed in layout order")
    raise LayoutError(file, f"{p.key}.start", f"partition {p.name!r} would start at sector "
                      f"{start}, before the first usable sector {first}")


def _number_mbr(layout: DiskLayout, spec: DiskSpec, file: str) -> None:
    slot = 0
    logical_no = 4
    for pp in layout.partitions:
        if pp.logical:
            if layout.extended is None:
                slot += 1
                first = pp.ebr_lba
                assert first is not None
                layout.extended = (slot, first, 0)
            logical_no += 1
            pp.number = logical_no
        else:
            slot += 1
            pp.number = slot
    if slot > 4:
        raise LayoutError(file, "disk.partition", f"{slot} primary partitions (the extended "
                          "one included); an MBR holds four", hint="mark some logical = true")
    if layout.extended is not None:
        n, start, _ = layout.extended
        end = max(pp.last_lba for pp in layout.partitions if pp.logical)
        if spec.partitions and spec.partitions[-1].logical and spec.partitions[-1].rest:
            end = layout.total_sectors - 1
        layout.extended = (n, start, end - start + 1)
    for pp, p in zip(layout.partitions, spec.partitions, strict=True):
        limit = MAX_U48 if (spec.lba48 and not pp.logical) else MAX_U32
        if pp.start_lba > limit or pp.size_sectors > limit:
            hint = None if spec.lba48 else "lba48 = true writes 48-bit entries (understood by " \
                "dfsbuild only)"
            what = "logical partitions cannot use 48-bit entries" if spec.lba48 else \
                "MBR entries address at most 2^32 - 1 sectors"
            raise CapacityError(file, p.key, f"partition {p.name!r} at sectors "
                                f"{pp.start_lba}..{pp.last_lba}: {what}", hint=hint)
    if layout.extended is not None and (layout.extended[1] + layout.extended[2] > MAX_U32 + 1):
        raise CapacityError(file, "disk.partition", "the extended partition passes 2^32 "
                            "sectors")

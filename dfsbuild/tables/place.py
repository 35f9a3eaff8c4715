"""Placement: every partition's first and last sector, and why. Pure.

Partitions are placed in layout order. A partition without ``start`` goes at the first
``align`` boundary after the previous one; without ``size`` it takes its image's size in whole
sectors; ``size = "rest"`` (last partition only) runs to the last usable sector. A partition
that needs a table sector before it (an MBR logical partition's EBR) gets it at an aligned
sector with its data at the next boundary, as sfdisk lays them out.

Also the settings every partitioned disk and every partition has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dfsbuild.errors import CapacityError, LayoutError
from dfsbuild.tables.base import (
    MAX_FILE_BYTES,
    DiskJob,
    PlacedDisk,
    PlacedPartition,
    PlacedRegion,
)
from dfsbuild.units import align_up, format_size
from dfsbuild.vocab.model import DiskSpec, PartitionSpec, RegionSpec
from dfsbuild.vocab.settings import (
    Context,
    Setting,
    p_bool,
    p_choice,
    p_host_path,
    p_sector_multiple,
    p_size,
    p_str,
)


def _disk_size(value: object, ctx: Context) -> int | None:
    if value == "auto":
        return None
    return p_sector_multiple(value, ctx)


def _align(value: object, ctx: Context) -> int:
    size = p_size(value, ctx)
    if size == 0 or size % ctx.sector_size:
        raise ValueError(f"{size} bytes is not a whole, non-zero number of {ctx.sector_size}-"
                         "byte sectors")
    return size


@dataclass(frozen=True, slots=True)
class PartitionedOptions:
    """Settings of every partitioned disk (each kind's options record extends this)."""

    size: int | None             # bytes; None: "auto"
    sector_size: int
    align: int                   # bytes
    seed: str
    bmap: bool
    sparse: bool
    sparse_crc: bool
    compress: str
    manifest: bool


SECTOR_SIZE = Setting("sector-size", p_choice(512, 4096), 512, "`512` or `4096`; "
                      "`\"2048s\"` sizes count these", kind="integer")
PARTITIONED_SETTINGS = (
    Setting("size", _disk_size, None, "a size, or `\"auto\"` (default): the smallest multiple "
            "of `align` that holds every partition (and the table's backup)", kind="size"),
    SECTOR_SIZE,
    Setting("align", _align, 1 << 20, "where partitions without `start` begin; default "
            "`\"1MiB\"`", kind="size"),
    Setting("seed", p_str, lambda ctx: ctx.name, "every ID not given is derived from it "
            "(default: the layout name): same layout, same bytes"),
    Setting("bmap", p_bool, False, "also write `OUTPUT.bmap` beside the disk: its data blocks "
            "with sha256s, in bmaptool's format, so `bmaptool copy` writes only those",
            kind="boolean"),
    Setting("sparse", p_bool, False, "also write `OUTPUT.simg` beside the disk: an Android "
            "sparse image (fastboot, U-Boot's `mmc swrite`, NXP's uuu) that skips only the "
            "bytes no reader looks at and fills the zeros that matter; the disk's size must "
            "be a multiple of 4096", kind="boolean"),
    Setting("sparse-crc", p_bool, False, "end each sparse image (the disk's and the "
            "partitions') with a CRC32 chunk over the whole image, as `img2simg` cannot; "
            "the blocks left out count as zeros", kind="boolean"),
    Setting("compress", p_choice("none", "xz", "zstd"), "none", "`none` (default), `xz` or "
            "`zstd`: also write `OUTPUT.xz` / `OUTPUT.zst`, the disk compressed reproducibly "
            "(a `.bmap` stays the raw disk's, where `bmaptool copy` looks for it)"),
    Setting("manifest", p_bool, True, "write `OUTPUT.json` beside the disk (default): the "
            "table, each partition and region with its image (content key, sha256, size, "
            "filesystem type, UUID and label as blkid reports them) and the files made "
            "beside the disk; its JSON Schema: `dfsbuild schema --manifest`",
            kind="boolean"),
)


MBR_CODE_BYTES = 440
BOOT_CODE = Setting("boot-code", p_host_path, None, "a file of at most 440 bytes of boot code "
                    "for bytes 0–439 of sector 0 (the MBR, or the GPT's protective MBR); the "
                    "disk signature and the table stay dfsbuild's; default: zeros",
                    kind="path", cached=False)


def mbr_boot_code(path: str | None, job: DiskJob) -> bytes:
    """The bytes of ``disk.boot-code`` (none: b""); CapacityError past 440 bytes."""
    if path is None:
        return b""
    code = job.read_input(path)
    if len(code) > MBR_CODE_BYTES:
        raise CapacityError(job.file, "disk.boot-code", f"{path}: {len(code)} bytes; the MBR "
                            f"holds {MBR_CODE_BYTES} bytes of boot code (a larger boot loader "
                            "goes into a [[disk.partition]] or after the table)")
    return code


def _part_size(value: object, ctx: Context) -> int | str:
    if value == "rest":
        return "rest"
    size = p_sector_multiple(value, ctx)
    if size == 0:
        raise ValueError("a partition cannot be empty")
    return size


# Read by the loader for every kind that has partitions; kept out of the options records.
PARTITION_SETTINGS = (
    Setting("name", p_str, None, "unique; stored where the table has names (GPT ≤ 36 UTF-16 "
            "units, eMBR ≤ 63 bytes)", required=True),
    Setting("image", p_str, None, "the image of this layout that fills it (omit for an empty "
            "partition)"),
    Setting("start", p_sector_multiple, None, "a size from the disk's start; default: the next "
            "`align` boundary", kind="size"),
    Setting("size", _part_size, None, "a size; omitted: the image's size in whole sectors; "
            "`\"rest\"`: up to the last usable sector (last partition only)", kind="size"),
    Setting("sparse", p_bool, False, "also write `OUTPUT.NAME.simg` beside the disk: this "
            "partition's bytes (its image and the room after it) as an Android sparse image, "
            "what `fastboot flash NAME` takes; NAME of letters, digits, `.`, `_`, `-`; the "
            "partition's start and size must be multiples of 4096", kind="boolean"),
)


def _region_size(value: object, ctx: Context) -> int:
    size = p_size(value, ctx)
    if size == 0:
        raise ValueError("a region cannot be empty")
    return size


# Read by the loader for every [[disk.region]].
REGION_SETTINGS = (
    Setting("name", p_str, None, "unique among regions and partitions; names it in messages "
            "and `plan`", required=True),
    Setting("image", p_str, None, "the image of this layout written there", required=True),
    Setting("start", p_size, None, "bytes from the disk's start (`\"8KiB\"`, `\"64s\"`); "
            "it must not overlap the table's own sectors, a partition or another region",
            kind="size", required=True),
    Setting("size", _region_size, None, "room kept for it (default: the image's size); the "
            "image must fit", kind="size"),
)


@dataclass(frozen=True, slots=True)
class Frame:
    """What the kind tells the loop: where partitions may go."""

    first_usable: int                        # LBA
    last_usable: Callable[[int], int]        # total sectors -> last usable LBA (inclusive)
    backup_sectors: int = 0                  # after the last usable sector
    needs_header: Callable[[PartitionSpec], bool] = lambda p: False


def place(spec: DiskSpec, job: DiskJob, frame: Frame) -> tuple[list[PlacedPartition], int]:
    """Place every partition; returns them and the disk's total sectors."""
    opts: PartitionedOptions = spec.options
    file = job.file
    ss = opts.sector_size
    a = opts.align // ss
    total = opts.size // ss if opts.size is not None else None
    first = frame.first_usable
    placed: list[PlacedPartition] = []
    cursor = first
    for p in spec.partitions:
        header_lba = None
        if frame.needs_header(p):
            header_lba = align_up(cursor, a) if p.start_bytes is None else p.start_bytes // ss - 1
            if p.start_bytes is None:
                start = align_up(header_lba + 1, a)
                where = f"EBR at {header_lba}, data at the next {format_size(opts.align)} " \
                        "boundary"
            else:
                start = p.start_bytes // ss
                where = f"start given; EBR at {header_lba}"
        elif p.start_bytes is not None:
            start = p.start_bytes // ss
            where = "start given"
        else:
            start = align_up(cursor, a)
            after = f"after {placed[-1].name}" if placed else "first usable sector " + str(first)
            where = f"aligned to {format_size(opts.align)}, {after}"
        check_from = header_lba if header_lba is not None else start
        if check_from < cursor:
            _overlap(file, p, check_from, placed, first)
        image_bytes = job.sizes.get(p.image, 0) if p.image else 0
        if p.rest:
            if total is None:
                raise LayoutError(file, f"{p.where}.size", "\"rest\" needs a disk size (size "
                                  "is \"auto\")")
            size = frame.last_usable(total) + 1 - start
            size_note = "rest of the disk"
            if size <= 0:
                raise CapacityError(file, f"{p.where}.size", f"no room left for {p.label}: it "
                                    f"would start at sector {start}, the last usable is "
                                    f"{frame.last_usable(total)}")
        elif p.size_bytes is not None:
            size = p.size_bytes // ss
            size_note = "size given"
        else:
            size = max(1, -(-image_bytes // ss))
            size_note = f"fits image {p.image} ({image_bytes} bytes)"
        if image_bytes > size * ss:
            raise CapacityError(file, f"{p.where}.size", f"image {p.image!r} needs {image_bytes} "
                                f"bytes; the partition holds {size * ss} ({size} sectors)")
        placed.append(PlacedPartition(0, p.name, p.image, start, size, f"{where}; {size_note}",
                                      p, header_lba, image_bytes))
        cursor = start + size
    if total is None:
        ends = [cursor, *(-(-(r.start_bytes + _room(r, job)) // ss) for r in spec.regions)]
        total = align_up(max(ends) + frame.backup_sectors, a)
    if total * ss > MAX_FILE_BYTES:
        raise CapacityError(file, "disk.size", f"a disk of {total} sectors of {ss} bytes "
                            f"({total * ss} bytes) is larger than any file can be "
                            f"({MAX_FILE_BYTES} bytes)")
    last = frame.last_usable(total)
    for pp in placed:
        if pp.last_lba > last:
            raise CapacityError(file, pp.spec.where, f"partition {pp.name!r} ends at sector "
                                f"{pp.last_lba}, past the last usable sector {last} of a "
                                f"{total}-sector disk")
    return placed, total


def _overlap(file: str, p: PartitionSpec, start: int, placed: list[PlacedPartition],
             first: int) -> None:
    for q in placed:
        low = q.header_lba if q.header_lba is not None else q.start_lba
        if low <= start <= q.last_lba or start < low:
            raise LayoutError(file, f"{p.where}.start", f"partition {p.name!r} would start at "
                              f"sector {start}, inside partition {q.name!r} (sectors {low}.."
                              f"{q.last_lba})", hint="partitions are placed in layout order")
    raise LayoutError(file, f"{p.where}.start", f"partition {p.name!r} would start at sector "
                      f"{start}, before the first usable sector {first}")


def _room(r: RegionSpec, job: DiskJob) -> int:
    return r.size_bytes if r.size_bytes is not None else job.sizes.get(r.image, 0)


def place_regions(spec: DiskSpec, job: DiskJob, disk: PlacedDisk) -> None:
    """Put every ``[[disk.region]]`` into the planned disk, after checking that it overlaps
    none of the table's own sectors, no partition (nor its EBR) and no other region."""
    ss = disk.sector_size
    taken: list[tuple[int, int, str]] = [
        (lba * ss, lba * ss + len(data), _structure_name(disk, lba)) for lba, data in
        disk.structures]
    for p in disk.partitions:
        if p.header_lba is not None:
            taken.append((p.header_lba * ss, (p.header_lba + 1) * ss, f"the EBR of {p.name!r}"))
        taken.append((p.start_lba * ss, (p.last_lba + 1) * ss, f"partition {p.name!r}"))
    for r in spec.regions:
        image_bytes = job.sizes.get(r.image, 0)
        size = _room(r, job)
        if image_bytes > size:
            raise CapacityError(job.file, f"{r.where}.size", f"image {r.image!r} needs "
                                f"{image_bytes} bytes; the region holds {size}")
        end = r.start_bytes + size
        if end > disk.size_bytes:
            raise CapacityError(job.file, f"{r.where}.start", f"region {r.name!r} (bytes "
                                f"{r.start_bytes}..{end - 1}) passes the end of the "
                                f"{disk.size_bytes}-byte disk")
        for low, high, what in taken:
            if r.start_bytes < high and low < end:
                raise LayoutError(job.file, f"{r.where}.start", f"region {r.name!r} (bytes "
                                  f"{r.start_bytes}..{end - 1}) overlaps {what} (bytes "
                                  f"{low}..{high - 1})", hint=_overlap_hint(disk, what))
        taken.append((r.start_bytes, end, f"region {r.name!r}"))
        disk.regions.append(PlacedRegion(r.name, r.image, r.start_bytes, size, image_bytes, r))


def _structure_name(disk: PlacedDisk, lba: int) -> str:
    if lba == 0:
        return "the MBR (sector 0)"
    return f"the {disk.table} table's sectors at LBA {lba}"


def _overlap_hint(disk: PlacedDisk, what: str) -> str | None:
    if disk.table == "gpt" and "table's" in what:
        return ("move the GPT entry array out of the way with disk.gpt-entries-lba (e.g. "
                "2048), or shorten it with disk.gpt-entries")
    if what.startswith("partition"):
        return "give the partitions a later start, or a larger disk.align"
    return None

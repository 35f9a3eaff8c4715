"""``table = "mbr"``: settings, planning (numbering, the extended partition, EBRs) and the
structures' bytes; reading is in read.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dfsbuild.errors import CapacityError, FormatError, LayoutError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.ids import derive_u32
from dfsbuild.tables import parttypes
from dfsbuild.tables.base import DiskJob, DiskTable, PlacedDisk, TableKind
from dfsbuild.tables.mbr import grub
from dfsbuild.tables.place import (
    BOOT_CODE,
    PARTITIONED_SETTINGS,
    Frame,
    PartitionedOptions,
    mbr_boot_code,
    place,
)
from dfsbuild.vocab.model import DiskSpec
from dfsbuild.vocab.settings import Context, Setting, p_bool, p_host_path
from dfsbuild.vocab.table import describe

if TYPE_CHECKING:                 # the records are imported when a disk is planned
    from dfsbuild.tables.mbr.records import MbrEntry


GRUB_BOOT_IMG = "/usr/lib/grub/i386-pc/boot.img"


def _grub(opts: MbrOptions, job: DiskJob) -> tuple[bytes, bytes]:
    """Sector 0's code and the sectors from LBA 1 of a disk that boots GRUB (grub.py)."""
    assert opts.grub_core is not None
    if opts.boot_code is not None:
        raise LayoutError(job.file, "disk.grub-core", "GRUB's boot code fills sector 0: "
                          "leave out boot-code")
    if opts.sector_size != grub.SECTOR:
        raise LayoutError(job.file, "disk.grub-core", "GRUB boots from 512-byte sectors; "
                          f"this disk has {opts.sector_size}")
    try:
        return grub.grub_sectors(job.read_input(opts.grub_boot),
                                 job.read_input(opts.grub_core))
    except ValueError as exc:
        raise LayoutError(job.file, "disk.grub-core", str(exc)) from None


def _disk_id(value: object, ctx: Context) -> int:
    from dfsbuild.tables.mbr.records import MAX_U32

    if isinstance(value, str) and re.fullmatch(r"0x[0-9A-Fa-f]{1,8}", value):
        return int(value, 16)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_U32:
        return value
    raise ValueError(f"{describe(value)} is not a 32-bit disk signature such as "
                     "\"0x12345678\"")


def _mbr_type(value: object, ctx: Context) -> int:
    byte = parttypes.mbr_type(value)
    if byte in parttypes.EXTENDED_TYPES:
        raise ValueError("extended partitions are made by logical = true")
    if byte == parttypes.MBR_TYPES["protective"]:
        raise ValueError("0xee marks a GPT's protective MBR: every reader would take this "
                         "disk for a GPT; use table = \"gpt\"")
    return byte


@dataclass(frozen=True, slots=True)
class MbrOptions(PartitionedOptions):
    """The disk settings of ``table = "mbr"``."""

    disk_id: int | None          # None: derived from the seed
    lba48: bool
    boot_code: str | None        # host file for bytes 0..439
    grub_core: str | None        # GRUB's core.img, embedded from LBA 1 (grub.py)
    grub_boot: str               # GRUB's boot.img, its code in sector 0


@dataclass(frozen=True, slots=True)
class MbrPartitionOptions:
    """The partition settings of an MBR disk."""

    type: int
    bootable: bool
    logical: bool


class MbrKind(TableKind):
    name = "mbr"
    help = "an MBR: four primaries, or an extended partition with logical ones"
    revision = 1
    disk_options = MbrOptions
    disk_settings = (
        *PARTITIONED_SETTINGS,
        Setting("disk-id", _disk_id, None, "the 32-bit disk signature, `\"0x12345678\"` "
                "(default: from the seed)"),
        Setting("lba48", p_bool, False, "`true`: primaries past 2^32 sectors get 48-bit entries "
                "(understood by dfsbuild only) instead of an error", kind="boolean"),
        BOOT_CODE,
        Setting("grub-core", p_host_path, None, "GRUB's `core.img` (`grub-mkimage -O i386-pc "
                "-p '(hd0,msdos1)/boot/grub' biosdisk part_msdos fat normal linux …`): "
                "written from sector 1, before the first partition, with `grub-boot`'s code "
                "in sector 0, both patched to find each other as grub-bios-setup would: the "
                "disk boots GRUB on a PC BIOS", kind="path", cached=False),
        Setting("grub-boot", p_host_path, GRUB_BOOT_IMG, "GRUB's `boot.img`, for "
                f"`grub-core`; default `{GRUB_BOOT_IMG}` (Debian's grub-pc-bin)",
                kind="path", cached=False),
    )
    partition_options = MbrPartitionOptions
    partition_settings = (
        Setting("type", _mbr_type, 0x83, "a byte (`0x83`, `\"83\"`) or `linux`, `swap`, "
                "`fat12`, `fat16`, `fat16-lba`, `fat32`, `fat32-lba`, `efi`, `ntfs`, "
                "`linux-lvm`, `linux-raid`, `data`, …; default `linux`"),
        Setting("bootable", p_bool, False, "the active flag (status 0x80)", kind="boolean"),
        Setting("logical", p_bool, False, "inside the extended partition (logical partitions "
                "must be listed together)", kind="boolean"),
    )

    def expects(self, options: Any) -> tuple[str, ...]:
        return parttypes.MBR_FAMILIES.get(options.type, ())

    def is_esp(self, options: Any) -> bool:
        return bool(options.type == parttypes.MBR_TYPES["efi"])

    def check(self, spec: DiskSpec, file: str) -> None:
        parts = spec.partitions
        logical = [i for i, p in enumerate(parts) if p.options.logical]
        if logical and logical != list(range(logical[0], logical[-1] + 1)):
            raise LayoutError(file, f"{parts[logical[0]].where}.logical", "logical partitions "
                              "must be listed one after another (they share one extended "
                              "partition)")

    def inputs(self, spec: DiskSpec) -> tuple[str, ...]:
        opts: MbrOptions = spec.options
        grub = (opts.grub_core, opts.grub_boot) if opts.grub_core is not None else ()
        return (*((opts.boot_code,) if opts.boot_code is not None else ()), *grub)

    def plan(self, spec: DiskSpec, job: DiskJob) -> PlacedDisk:
        opts: MbrOptions = spec.options
        code = mbr_boot_code(opts.boot_code, job)
        core = b""
        if opts.grub_core is not None:
            code, core = _grub(opts, job)
        placed, total = place(spec, job, Frame(1, lambda n: n - 1,
                                               needs_header=lambda p: p.options.logical))
        first = min((p.start_lba for p in placed), default=total)
        if core and 1 + len(core) // 512 > first:
            raise CapacityError(job.file, "disk.grub-core", f"core.img takes sectors "
                                f"1..{len(core) // 512}, and the first partition starts at "
                                f"sector {first}", hint="start the first partition later "
                                "(align = \"1MiB\", the default, leaves 2047 sectors)")
        layout = PlacedDisk(self.name, opts.sector_size, total, 1, total - 1, placed)
        extended = _number(layout, spec, job.file)
        disk_id = opts.disk_id if opts.disk_id is not None else \
            derive_u32(opts.seed, "mbr-disk-id")
        layout.facts["disk_id"] = f"0x{disk_id:08x}"
        if extended is not None:
            slot, start, size = extended
            layout.facts["extended"] = {"number": slot, "start_lba": start,
                                        "size_sectors": size, "last_lba": start + size - 1}
        for p in placed:
            p.facts["type"] = f"{p.spec.options.type:x}"     # as sfdisk --json and inspect
        layout.structures = _structures(layout, disk_id, extended, opts.lba48, code)
        if core:
            layout.structures.append((grub.CORE_LBA, core))
        return layout

    def detect(self, src: ByteSource) -> bool:
        from dfsbuild.tables.mbr.read import detect_mbr

        return detect_mbr(src)

    def read(self, src: ByteSource, sector_size: int | None) -> DiskTable:
        from dfsbuild.tables.mbr.read import read_mbr

        try:
            return read_mbr(src, sector_size or 512)
        except FormatError as exc:
            if sector_size is None and exc.hint is None:
                exc.hint = ("an MBR does not record its sector size, and 512 was assumed: for "
                            "a disk with 4096-byte sectors give --sector-size 4096")
            raise


def _number(layout: PlacedDisk, spec: DiskSpec, file: str) -> tuple[int, int, int] | None:
    from dfsbuild.tables.mbr.records import MAX_U32, MAX_U48

    """Slots 1-4 for primaries and the extended partition, 5.. for logicals."""
    opts: MbrOptions = spec.options
    slot = 0
    logical_no = 4
    extended: tuple[int, int, int] | None = None
    for pp in layout.partitions:
        if pp.spec.options.logical:
            if extended is None:
                slot += 1
                assert pp.header_lba is not None
                extended = (slot, pp.header_lba, 0)
            logical_no += 1
            pp.number = logical_no
        else:
            slot += 1
            pp.number = slot
    if slot > 4:
        raise LayoutError(file, "disk.partition", f"{slot} primary partitions (the extended "
                          "one included); an MBR holds four", hint="mark some logical = true")
    if extended is not None:
        n, start, _ = extended
        end = max(pp.last_lba for pp in layout.partitions if pp.spec.options.logical)
        if spec.partitions[-1].options.logical and spec.partitions[-1].rest:
            end = layout.total_sectors - 1
        extended = (n, start, end - start + 1)
    for pp in layout.partitions:
        limit = MAX_U48 if (opts.lba48 and not pp.spec.options.logical) else MAX_U32
        if pp.start_lba > limit or pp.size_sectors > limit:
            hint = None if opts.lba48 else "lba48 = true writes 48-bit entries (understood by " \
                "dfsbuild only)"
            what = "logical partitions cannot use 48-bit entries" if opts.lba48 else \
                "MBR entries address at most 2^32 - 1 sectors"
            raise CapacityError(file, pp.spec.where, f"partition {pp.name!r} at sectors "
                                f"{pp.start_lba}..{pp.last_lba}: {what}", hint=hint)
    if extended is not None and extended[1] + extended[2] > MAX_U32 + 1:
        raise CapacityError(file, "disk.partition", "the extended partition passes 2^32 "
                            "sectors")
    return extended


def _structures(layout: PlacedDisk, disk_id: int, extended: tuple[int, int, int] | None,
                lba48: bool, code: bytes = b"") -> list[tuple[int, bytes]]:
    from dfsbuild.tables.mbr.ebr import Logical, ebr_chain
    from dfsbuild.tables.mbr.records import MAX_U32, MbrEntry, pack_sector

    slots: dict[int, MbrEntry] = {}
    logicals = []
    for p in layout.partitions:
        o: Any = p.spec.options
        if o.logical:
            assert p.header_lba is not None
            logicals.append(Logical(p.header_lba, p.start_lba, p.size_sectors, o.type,
                                    o.bootable))
            continue
        status = 0x80 if o.bootable else 0
        if lba48 and (p.start_lba > MAX_U32 or p.size_sectors > MAX_U32):
            slots[p.number] = MbrEntry(status, o.type, p.start_lba, p.size_sectors, True)
        else:
            slots[p.number] = MbrEntry.classic(status, o.type, p.start_lba, p.size_sectors)
    out: list[tuple[int, bytes]] = []
    if extended is not None:
        slot, start, size = extended
        slots[slot] = MbrEntry.classic(0, 0x05, start, size)
        out += ebr_chain(start, logicals)
    entries = [slots.get(i, MbrEntry(0, 0, 0, 0)) for i in range(1, 5)]
    while entries and entries[-1].empty:
        entries.pop()
    ss = layout.sector_size
    sector = pack_sector(entries, disk_id, code).ljust(ss, b"\0")
    return [(0, sector), *[(lba, data.ljust(ss, b"\0")) for lba, data in out]]


KIND = MbrKind()

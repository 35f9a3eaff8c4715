"""``table = "gpt"``: settings, planning (entry numbers, derived GUIDs, a hybrid MBR) and the
structures' bytes; reading is in read.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from dfsbuild.errors import LayoutError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.ids import derive_uuid
from dfsbuild.tables import parttypes
from dfsbuild.tables.base import DiskJob, DiskTable, PlacedDisk, TableKind
from dfsbuild.tables.gpt import records as gpt
from dfsbuild.tables.place import (
    BOOT_CODE,
    PARTITIONED_SETTINGS,
    Frame,
    PartitionedOptions,
    mbr_boot_code,
    place,
)
from dfsbuild.vocab.model import DiskSpec
from dfsbuild.vocab.settings import Context, Setting, p_bool, p_guid, p_int_range
from dfsbuild.vocab.table import Table

LEGACY_BIOS_BOOTABLE = 1 << parttypes.GPT_ATTRIBUTES["legacy-bios-bootable"]


def _gpt_type(value: object, ctx: Context) -> str:
    guid = parttypes.gpt_type(value)
    if uuid.UUID(guid).int == 0:
        raise ValueError("the all-zero GUID marks an unused entry: every reader would skip "
                         "this partition")
    return guid


def _attributes(value: object, ctx: Context) -> int:
    return parttypes.gpt_attribute_bits(value)


def _mbr_type(value: object, ctx: Context) -> int:
    return parttypes.mbr_type(value)


@dataclass(frozen=True, slots=True)
class GptOptions(PartitionedOptions):
    """The disk settings of ``table = "gpt"``."""

    guid: str | None             # None: derived from the seed
    boot_code: str | None        # host file for the protective MBR's bytes 0..439
    gpt_entries_lba: int         # where the primary entry array starts
    gpt_entries: int             # entries in each array


@dataclass(frozen=True, slots=True)
class GptPartitionOptions:
    """The partition settings of a GPT disk."""

    type: str
    bootable: bool
    uuid: str | None
    attributes: int
    hybrid: bool
    mbr_type: int | None


class GptKind(TableKind):
    name = "gpt"
    help = "a GUID partition table (UEFI), optionally with a hybrid MBR"
    revision = 1
    disk_options = GptOptions
    disk_settings = (
        *PARTITIONED_SETTINGS,
        Setting("guid", p_guid, None, "the disk GUID (default: from the seed)", kind="guid"),
        BOOT_CODE,
        Setting("gpt-entries-lba", p_int_range(2, 1 << 32), 2, "the sector where the primary "
                "entry array starts (default 2, right after the header); a later one leaves "
                "sectors 2.. free for a `[[disk.region]]` (Allwinner's boot0 at 8 KiB: "
                "`2048`, as `sgdisk -j 2048`)", kind="integer"),
        Setting("gpt-entries", p_int_range(1, 8192), gpt.ENTRY_COUNT, "entries in each "
                "array (default 128, the 16 KiB UEFI asks for); fewer make a shorter array, "
                "as `sfdisk`'s `table-length`", kind="integer"),
    )
    partition_options = GptPartitionOptions
    partition_settings = (
        Setting("type", _gpt_type, parttypes.GPT_TYPES["linux"], "a GUID or `efi`, `linux`, "
                "`linux-root-x86-64`, `linux-root-x86`, `linux-root-arm64`, `linux-usr-x86-64`, "
                "`linux-home`, `swap`, `bios-boot`, `xbootldr`, `linux-lvm`, `linux-raid`, "
                "`msft-basic-data`, `msft-reserved`; default `linux`"),
        Setting("bootable", p_bool, False, "the legacy-BIOS-bootable attribute (bit 2)",
                kind="boolean"),
        Setting("uuid", p_guid, None, "the unique partition GUID (default: from the seed and "
                "the name; for a dm-verity hash tree's image and its data's, the root hash's "
                "last and first 128 bits, as systemd finds them)", kind="guid"),
        Setting("attributes", _attributes, 0, "names or bit numbers: `required`, "
                "`no-block-io`, `legacy-bios-bootable`, `grow-fs` (59), `read-only` (60), "
                "`shadow-copy` (61), `hidden` (62), `no-drive-letter`/`no-auto` (63)",
                kind="array"),
        Setting("hybrid", p_bool, False, "also list it in a hybrid MBR (at most three)",
                kind="boolean"),
        Setting("mbr-type", _mbr_type, None, "its type in the hybrid MBR (default from the "
                "GPT type: EFI → 0xef, basic data → 0x0c, swap → 0x82, else 0x83)"),
    )

    def load_partition(self, table: Table, ctx: Context, name: str) -> Any:
        opts: GptPartitionOptions = super().load_partition(table, ctx, name)
        if gpt.name_units(name) > gpt.NAME_UNITS:
            raise table.error("name", f"{name!r} is {gpt.name_units(name)} UTF-16 units; "
                              f"a GPT name holds {gpt.NAME_UNITS}")
        if opts.mbr_type is not None and not opts.hybrid:
            raise table.error("mbr-type", "only for partitions with hybrid = true")
        if opts.bootable:
            opts = replace(opts, attributes=opts.attributes | LEGACY_BIOS_BOOTABLE)
        return opts

    def expects(self, options: Any) -> tuple[str, ...]:
        return parttypes.GPT_FAMILIES.get(options.type, ())

    def is_esp(self, options: Any) -> bool:
        return bool(options.type == parttypes.GPT_TYPES["efi"])

    def check(self, spec: DiskSpec, file: str) -> None:
        hybrid = [p for p in spec.partitions if p.options.hybrid]
        if len(hybrid) > 3:
            raise LayoutError(file, f"{hybrid[3].where}.hybrid", "a hybrid MBR holds at most "
                              "three partitions beside the 0xEE entry")
        opts: GptOptions = spec.options
        if len(spec.partitions) > opts.gpt_entries:
            raise LayoutError(file, "disk.partition", f"{len(spec.partitions)} partitions; "
                              f"the entry array holds {opts.gpt_entries}",
                              hint="raise disk.gpt-entries")

    def inputs(self, spec: DiskSpec) -> tuple[str, ...]:
        opts: GptOptions = spec.options
        return (opts.boot_code,) if opts.boot_code is not None else ()

    def plan(self, spec: DiskSpec, job: DiskJob) -> PlacedDisk:
        from dfsbuild.tables.mbr.records import MbrEntry

        opts: GptOptions = spec.options
        code = mbr_boot_code(opts.boot_code, job)
        ss = opts.sector_size
        count = opts.gpt_entries
        frame = Frame(gpt.first_usable(ss, opts.gpt_entries_lba, count),
                      lambda n: gpt.last_usable(n, ss, count), gpt.array_sectors(ss, count) + 1)
        placed, total = place(spec, job, frame)
        layout = PlacedDisk(self.name, ss, total, frame.first_usable,
                            gpt.last_usable(total, ss, count), placed)
        guid = opts.guid or str(derive_uuid(opts.seed, "gpt-disk")).upper()
        layout.facts["guid"] = guid
        entries = []
        hybrid = []
        for i, p in enumerate(placed):
            o: GptPartitionOptions = p.spec.options
            p.number = i + 1
            unique = o.uuid or str(derive_uuid(opts.seed, f"gpt-partition:{p.name}")).upper()
            p.facts["uuid"] = unique
            if o.uuid is None and p.image in job.partition_uuids:
                # systemd's convention: a hash tree's root hash names its partitions; until
                # the tree is built, the seed's GUID holds the place and the fact is unknown
                from_contents = job.partition_uuids[p.image]
                layout.pending |= from_contents is None
                unique = from_contents or unique
                p.facts.update(uuid=from_contents, uuid_from="root hash")
            entries.append(gpt.GptEntry(uuid.UUID(o.type), uuid.UUID(unique), p.start_lba,
                                        p.last_lba, o.attributes, p.name))
            if o.hybrid:
                byte = o.mbr_type if o.mbr_type is not None else \
                    parttypes.HYBRID_DEFAULTS.get(o.type, 0x83)
                hybrid.append(MbrEntry.classic(0x80 if o.bootable else 0, byte, p.start_lba,
                                               p.size_sectors))
        layout.structures = gpt.build_gpt(total, ss, uuid.UUID(guid), entries, hybrid or None,
                                          code, opts.gpt_entries_lba, count)
        return layout

    def detect(self, src: ByteSource) -> bool:
        from dfsbuild.tables.gpt.read import detect_gpt

        return detect_gpt(src)

    def read(self, src: ByteSource, sector_size: int | None) -> DiskTable:
        from dfsbuild.tables.gpt.read import read_gpt

        return read_gpt(src, sector_size)


KIND = GptKind()

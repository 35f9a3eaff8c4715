"""``table = "embr"``: settings, planning (the eMBR area after the boot code, its limits) and
the structures' bytes; reading is in read.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dfsbuild.errors import CapacityError, LayoutError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables.base import DiskJob, DiskTable, PlacedDisk, TableKind
from dfsbuild.tables.place import PARTITIONED_SETTINGS, Frame, PartitionedOptions, place
from dfsbuild.vocab.model import DiskSpec
from dfsbuild.vocab.settings import Context, Setting, p_bool, p_host_path, p_int_range
from dfsbuild.vocab.table import Table

MAX_BOOT_CODE = 0xFFFF * 4096      # sect_offset is 16-bit: the code cannot reach further


@dataclass(frozen=True, slots=True)
class EmbrOptions(PartitionedOptions):
    """The disk settings of ``table = "embr"``."""

    boot_code: str | None        # host file for the sectors from LBA 1
    boot_delay: int
    legacy_boot: bool
    spare_entries: int


@dataclass(frozen=True, slots=True)
class EmbrPartitionOptions:
    """The partition settings of an eMBR disk."""

    hidden: bool
    os_signature: int


def check_boot_code(code: bytes, file: str) -> None:
    """Boot code for the sectors from LBA 1 must leave the signature block to dfsbuild."""
    from dfsbuild.tables.embr import records as embr

    area = code[embr.SIG_BLOCK_OFFSET:0x200]
    if area.strip(b"\0") and area[:8] != embr.SIG_BLOCK:
        raise LayoutError(file, "disk.boot-code", f"bytes 0x1f2..0x1ff of the boot code hold "
                          f"{area.hex(' ')}; they are the eMBR signature block (leave them "
                          "zero: dfsbuild fills them)")


class EmbrKind(TableKind):
    name = "embr"
    help = "an eMBR 1.05 table (a legacy 0xE0 entry, 128-byte entries, CRC-32)"
    revision = 1
    disk_options = EmbrOptions
    disk_settings = (
        *PARTITIONED_SETTINGS,
        Setting("boot-code", p_host_path, None, "a file for the sectors from LBA 1 (its bytes "
                "0x1f2–0x1ff must be zero: the signature block goes there); default: a stub "
                "that prints a message and halts", kind="path", cached=False),
        Setting("boot-delay", p_int_range(0, 255, " seconds"), 10, "seconds, 0–255; default 10",
                kind="integer"),
        Setting("legacy-boot", p_bool, True, "`true` (default): refuse an eMBR area larger than "
                "the 64 KiB legacy firmware loads", kind="boolean"),
        Setting("spare-entries", p_int_range(0, 0xFFFF), 4, "unused entries after the "
                "partitions, for later additions; default 4", kind="integer"),
    )
    partition_options = EmbrPartitionOptions
    partition_settings = (
        Setting("hidden", p_bool, False, "entry flag bit 1", kind="boolean"),
        Setting("os-signature", p_int_range(0, (1 << 64) - 1), 0, "the 64-bit OS signature",
                kind="integer"),
    )

    def load_partition(self, table: Table, ctx: Context, name: str) -> Any:
        from dfsbuild.tables.embr import records as embr

        if table.has("type"):
            raise table.error("type", "eMBR entries have no type field; use os-signature")
        opts = super().load_partition(table, ctx, name)
        if len(name.encode()) >= embr.NAME_BYTES:
            raise table.error("name", f"{name!r} is {len(name.encode())} bytes of UTF-8; an "
                              f"eMBR name holds {embr.NAME_BYTES - 1}")
        return opts

    def check(self, spec: DiskSpec, file: str) -> None:
        opts: EmbrOptions = spec.options
        if len(spec.partitions) + opts.spare_entries > 0xFFFF:
            raise LayoutError(file, "disk.spare-entries", f"{opts.spare_entries} spare entries "
                              f"and {len(spec.partitions)} partitions pass the 65535 entries "
                              "an eMBR header counts")

    def inputs(self, spec: DiskSpec) -> tuple[str, ...]:
        opts: EmbrOptions = spec.options
        return (opts.boot_code,) if opts.boot_code is not None else ()

    def plan(self, spec: DiskSpec, job: DiskJob) -> PlacedDisk:
        from dfsbuild.tables.embr import records as embr

        opts: EmbrOptions = spec.options
        ss = opts.sector_size
        code = b""
        if opts.boot_code is not None:
            code = job.read_input(opts.boot_code)
            if len(code) > MAX_BOOT_CODE:
                raise CapacityError(job.file, "disk.boot-code", f"{len(code)} bytes of boot "
                                    f"code; the eMBR header must start within 65535 sectors")
            check_boot_code(code, job.file)
        code_sectors = max(1, -(-len(code) // ss))
        geo = embr.geometry(len(spec.partitions) + opts.spare_entries, ss, code_sectors)
        if geo.header_lba > 0xFFFF or geo.remaining > 0xFFFF:
            raise CapacityError(job.file, "disk.spare-entries", f"the eMBR area reaches LBA "
                                f"{geo.last_lba}; sect_offset and remaining are 16-bit")
        if opts.legacy_boot and (1 + geo.remaining) * ss > embr.LEGACY_LIMIT:
            raise LayoutError(job.file, "disk.spare-entries", f"the eMBR area needs "
                              f"{(1 + geo.remaining) * ss} bytes from LBA 1; legacy firmware "
                              f"loads at most {embr.LEGACY_LIMIT}",
                              hint="fewer entries, or legacy-boot = false")
        frame = Frame(geo.last_lba + 1, lambda n: n - 1)
        placed, total = place(spec, job, frame)
        layout = PlacedDisk(self.name, ss, total, frame.first_usable, total - 1, placed)
        created = max(0, job.created - embr.EPOCH_1980)
        entries = []
        for i, p in enumerate(placed):
            o: EmbrPartitionOptions = p.spec.options
            p.number = i + 1
            entries.append(embr.EmbrEntry(embr.FLAG_VALID | (embr.FLAG_HIDDEN if o.hidden
                                                              else 0),
                                          p.start_lba, p.size_sectors, p.name, created, 0,
                                          o.os_signature))
        layout.facts["embr"] = {"header_lba": geo.header_lba, "remaining": geo.remaining,
                                "entry_count": geo.entry_count, "boot_delay": opts.boot_delay,
                                "created": created}
        layout.structures = embr.build_embr(total, ss, geo, entries, opts.boot_delay,
                                            code or embr.DEFAULT_BOOT_CODE,
                                            embr.DEFAULT_BOOT_CODE)
        return layout

    def detect(self, src: ByteSource) -> bool:
        from dfsbuild.tables.embr.read import detect_embr

        return detect_embr(src)

    def read(self, src: ByteSource, sector_size: int | None) -> DiskTable:
        from dfsbuild.tables.embr.read import read_embr

        return read_embr(src, sector_size)


KIND = EmbrKind()

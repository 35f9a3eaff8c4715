"""``type = "fat"``: settings, planning, the reader and the placement fix-up, as the registry
sees them. The format modules are imported when a method needs them: loading and keying a
layout never does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from dfsbuild.errors import CapacityError
from dfsbuild.ids import derive_u32
from dfsbuild.images.base import DIRS, EXCLUDE, FILES, TREE, ImageJob, ImageType, PlannedImage
from dfsbuild.trees.fstree import manifest
from dfsbuild.units import is_power_of_two
from dfsbuild.vocab.settings import (
    Context,
    Setting,
    p_bool,
    p_choice,
    p_host_path,
    p_int_range,
    p_size,
    p_str,
)
from dfsbuild.vocab.table import describe

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.fileio.source import ByteSource
    from dfsbuild.images.fat.read import FatReader
    from dfsbuild.images.fat.update import FatUpdater
    from dfsbuild.images.fat.write import FatSettings

LABEL_REFUSED = set('*?.,;:/\\|+=<>[]"')


@dataclass(frozen=True, slots=True)
class FatOptions:
    """The settings of a ``type = "fat"`` image (None: chosen as mkfs.fat would)."""

    size: int | None
    fat: int | None
    cluster_size: int | None
    sector_size: int
    label: str | None
    serial: int | None
    oem: str
    reserved_sectors: int | None
    fats: int
    contiguous: bool
    reserve: tuple[tuple[str, int], ...]
    map: str | None
    hidden_sectors: int | None
    free: int
    boot_code: str | None


def _size(value: object, ctx: Context) -> int | None:
    if value == "auto":
        return None
    size = p_size(value, ctx)
    if size < 16 * 1024:
        raise ValueError(f"{size} bytes; a FAT needs at least 16 KiB")
    return size


def _cluster(value: object, ctx: Context) -> int:
    size = p_size(value, ctx)
    if not is_power_of_two(size) or not 512 <= size <= 64 << 10:
        raise ValueError(f"{size} bytes; a cluster is a power of two from 512 bytes to 64 KiB")
    return size


def _label(value: object, ctx: Context) -> str:
    text = p_str(value, ctx)
    try:
        raw = text.encode("cp850")
    except UnicodeEncodeError:
        raise ValueError(f"{text!r} cannot be written in the FAT code page (850)") from None
    if len(raw) > 11:
        raise ValueError(f"{text!r} is {len(raw)} bytes; a FAT label holds at most 11")
    bad = sorted({c for c in text if c in LABEL_REFUSED or ord(c) < 0x20})
    if bad:
        raise ValueError(f"{text!r} holds {', '.join(repr(c) for c in bad)}, which labels "
                         "cannot hold")
    if text.startswith(" "):
        raise ValueError("a label cannot start with a space")
    return text


def _serial(value: object, ctx: Context) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}", value):
        return int(value.replace("-", ""), 16)
    raise ValueError(f"{describe(value)} is not a serial such as \"1234-ABCD\" (as blkid "
                     "shows it) or an integer below 2^32")


def _oem(value: object, ctx: Context) -> str:
    text = p_str(value, ctx)
    if not text.isascii() or len(text) > 8 or any(ord(c) < 0x20 for c in text):
        raise ValueError(f"{text!r}: the OEM name is at most 8 printable ASCII characters")
    return text


def _inner_path(value: object, ctx: Context) -> str:
    text = p_str(value, ctx)
    parts = [p for p in text.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts) or "\0" in text:
        raise ValueError(f"{text!r} is not a path inside the image")
    return "/".join(parts)


def _reserve(value: object, ctx: Context) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table of PATH = SIZE, found {describe(value)}")
    out = []
    for path, size in value.items():
        try:
            out.append((_inner_path(path, ctx), p_size(size, ctx)))
        except ValueError as exc:
            raise ValueError(f"{path!r}: {exc}") from None
    return tuple(out)


class FatType(ImageType):
    name = "fat"
    family = "fat"
    max_file_bytes = 0xFFFFFFFF          # a 32-bit size field
    help = "a FAT12/16/32 filesystem, every file in one run of clusters"
    revision = 1
    options = FatOptions
    contents = frozenset({TREE, EXCLUDE, FILES, DIRS})
    short_flags: ClassVar[dict[str, tuple[str, ...]]] = {
        "fat": ("-F",), "label": ("-n",), "sector-size": ("-S",), "fats": ("-f",),
        "reserved-sectors": ("-R",)}
    settings = (
        Setting("size", _size, None, "a size, or `\"auto\"` (default): the smallest image "
                "that holds everything", kind="size"),
        Setting("fat", p_choice(12, 16, 32), None, "`12`, `16` or `32`; default: chosen "
                "from the size as mkfs.fat does (FAT32 from 512 MiB)", kind="integer"),
        Setting("cluster-size", _cluster, None, "bytes per cluster; default: mkfs.fat's "
                "for the size", kind="size"),
        Setting("sector-size", p_choice(512, 1024, 2048, 4096), 512, "bytes per sector: "
                "512 (default) to 4096", kind="integer"),
        Setting("label", _label, None, "volume label (at most 11 bytes of code page 850), "
                "in the boot sector and the root directory; default: none (`NO NAME`)"),
        Setting("serial", _serial, None, "volume serial as blkid shows it (`\"1234-ABCD\"`); "
                "default: derived from the layout's seed"),
        Setting("oem", _oem, "DFSBUILD", "OEM name in the boot sector (8 ASCII "
                "characters); default `DFSBUILD`"),
        Setting("reserved-sectors", p_int_range(1, 65535), None, "sectors before the first "
                "FAT; default: mkfs.fat's (1, or 32 on FAT32, aligned to the cluster)",
                kind="integer"),
        Setting("fats", p_choice(1, 2), 2, "FAT copies: 1 or 2 (default)", kind="integer"),
        Setting("contiguous", p_bool, True, "`true` (default): directories first, then files "
                "in layout order then tree order, each in one run; `false`: tree order",
                kind="boolean"),
        Setting("reserve", _reserve, (), "`reserve.\"PATH\" = SIZE`: free space kept right "
                "after that file so it can be replaced in place", kind="table"),
        Setting("map", _inner_path, None, "path of a text file written into the image: one "
                "line per file, `OFFSET SIZE SHA256 /PATH` (offset from the start of the "
                "filesystem)", kind="path"),
        Setting("hidden-sectors", p_int_range(0, 0xFFFFFFFF), None, "the BPB's hidden sectors;"
                " default: the partition's start when a disk places the image, else 0",
                kind="integer"),
        Setting("free", p_size, 0, "free space the image keeps for `dfsbuild put` (a new "
                "kernel, a larger file): `size = \"auto\"` grows by it, a fixed size must "
                "hold it; default 0", kind="size"),
        Setting("boot-code", p_host_path, None, "a 512-byte volume boot record whose jump "
                "(bytes 0–2) and code (after the BPB: from byte 62, on FAT32 from 90, to "
                "509) replace dfsbuild's `int 18h` (FAT32's backup boot sector too); the BPB "
                "stays dfsbuild's. Default: a boot sector that hands back to the BIOS",
                kind="path", cached=False),
    )

    def manifest(self, job: ImageJob) -> list[list[object]]:
        rows = manifest(job.root) if job.root is not None else []
        order = [f.dest for f in job.spec.contents.files]
        opts: FatOptions = job.spec.options
        extra: list[list[object]] = []
        if opts.boot_code is not None:
            extra.append(["fat:boot-code", job.describe(opts.boot_code).digest])
        return [*rows, ["fat:time", job.time], ["fat:seed", job.seed], ["fat:order", order],
                *extra]

    def host_files(self, options: FatOptions) -> tuple[tuple[str, str], ...]:
        return (("boot-code", options.boot_code),) if options.boot_code is not None else ()

    def fat_settings(self, job: ImageJob) -> FatSettings:
        from dfsbuild.images.fat.geometry import Wanted
        from dfsbuild.images.fat.write import FatSettings

        opts: FatOptions = job.spec.options
        label = opts.label.encode("cp850").ljust(11) if opts.label else None
        serial = opts.serial if opts.serial is not None else derive_u32(
            job.seed, f"fat-serial:{job.spec.name}")
        cluster = opts.cluster_size
        if cluster is not None and cluster < opts.sector_size:
            raise CapacityError(*job.where, f"cluster-size {cluster} is smaller than the "
                                f"{opts.sector_size}-byte sector")
        want = Wanted(opts.fat, cluster, opts.sector_size, opts.reserved_sectors, opts.fats)
        return FatSettings(opts.size, want, label, serial, opts.oem.ljust(8).encode(),
                           opts.hidden_sectors or 0, opts.contiguous, opts.reserve, opts.map,
                           tuple(f.dest for f in job.spec.contents.files), job.time,
                           opts.free, job.read_input(opts.boot_code)
                           if opts.boot_code is not None else None)

    def plan(self, job: ImageJob) -> PlannedImage:
        from dfsbuild.images.fat.write import plan_fat

        assert job.root is not None
        plan = plan_fat(job.root, self.fat_settings(job), job.where)
        g = plan.geometry
        return PlannedImage(plan, plan.image_size, len(plan.files), {
            "fat": g.bits, "clusters": g.clusters, "cluster_size": g.cluster_bytes,
            "free_clusters": g.clusters - plan.used})

    def write(self, planned: PlannedImage, out: Sink) -> None:
        from dfsbuild.fileio.digest import sha256_path
        from dfsbuild.images.fat.write import write_fat

        write_fat(planned.data, out, sha256_path)

    def placed(self, options: FatOptions, read: Callable[[int, int], bytes],
               start_bytes: int) -> list[tuple[int, bytes]]:
        from dfsbuild.images.fat.records import looks_like_fat, placed_fixes

        if options.hidden_sectors is not None:
            return []
        head = read(0, 512)
        return placed_fixes(head, start_bytes) if looks_like_fat(head) else []

    def data_patch_from(self, options: FatOptions) -> int | None:
        return None if options.map else 0   # the map file lists every file's sha256

    def probe(self, head: bytes) -> bool:
        from dfsbuild.images.fat.records import looks_like_fat

        return looks_like_fat(head)

    def reader(self, src: ByteSource) -> FatReader:
        from dfsbuild.images.fat.read import FatReader

        return FatReader(src)

    def updater(self, f: BinaryIO, src: ByteSource, where: str) -> FatUpdater:
        from dfsbuild.images.fat.update import FatUpdater

        return FatUpdater(f, src, where)


TYPE = FatType()

"""``type = "romfs"``: settings, planning and the reader, as the registry sees them. The
format modules are imported when a method needs them: loading and keying a layout never
does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from dfsbuild.images.base import (
    DEVICES,
    DIRS,
    EXCLUDE,
    FILES,
    TREE,
    ImageJob,
    ImageType,
    PlannedImage,
)
from dfsbuild.vocab.model import ImageSpec
from dfsbuild.vocab.settings import Context, Setting, p_align16
from dfsbuild.vocab.table import describe

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.fileio.source import ByteSource
    from dfsbuild.images.romfs.read import RomfsReader


@dataclass(frozen=True, slots=True)
class RomfsOptions:
    """The settings of a ``type = "romfs"`` image."""

    volume: str
    align: int               # data of regular files starts on this boundary (genromfs -a)


def _volume(value: object, ctx: Context) -> str:
    from dfsbuild.images.romfs.records import MAX_NAME

    if not isinstance(value, str):
        raise ValueError(f"expected a string, found {describe(value)}")
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME:
        raise ValueError(f"{size} bytes; a romfs volume name holds at most {MAX_NAME}")
    if "\0" in value:
        raise ValueError("a volume name cannot contain a NUL byte")
    return value


# What Linux shows for special files on romfs (fs/romfs/super.c romfs_modemap).
KERNEL_DEVICE_MODES = {"char": 0o600, "block": 0o600, "fifo": 0o644, "socket": 0o644}
DEFAULT_DEVICE_MODE = 0o600


class RomfsType(ImageType):
    name = "romfs"
    family = "romfs"
    max_file_bytes = 0xFFFFFFFF          # a 32-bit size field
    help = "a romfs image, byte-identical to genromfs for the same tree"
    revision = 1
    options = RomfsOptions
    contents = frozenset({TREE, EXCLUDE, FILES, DEVICES, DIRS})
    short_flags: ClassVar[dict[str, tuple[str, ...]]] = {"volume": ("-V",), "align": ("-a",)}
    settings = (
        Setting("volume", _volume, lambda ctx: ctx.name, "volume name (at most 127 bytes, no "
                "NUL); default: the image name"),
        Setting("align", p_align16, 16, "data of regular files starts on this boundary, a "
                "power of two of at least 16 (genromfs `-a`); default 16", kind="size"),
    )

    def warnings(self, spec: ImageSpec) -> list[tuple[str, str]]:
        """romfs keeps only an exec bit: other modes read back as the kernel's fixed ones."""
        found = []
        for f in spec.contents.files:
            if f.mode is None:
                continue
            back = 0o755 if f.mode & 0o111 else 0o644
            if f.mode != back:
                found.append((f"{f.where}.mode", f"mode {f.mode:04o} reads back as {back:04o}: "
                              "romfs stores only whether a file is executable"))
        for d in spec.contents.devices:
            back = KERNEL_DEVICE_MODES[d.kind]
            if d.mode != back and d.mode != DEFAULT_DEVICE_MODE:
                found.append((f"{d.where}.mode", f"mode {d.mode:04o} reads back as {back:04o}: "
                              f"romfs stores no mode, and Linux shows a {d.kind} device "
                              f"as {back:04o}"))
        return found

    def plan(self, job: ImageJob) -> PlannedImage:
        from dfsbuild.images.romfs.write import plan_romfs

        assert job.root is not None
        opts: RomfsOptions = job.spec.options
        plan = plan_romfs(job.root, opts.volume, opts.align, job.where)
        files = sum(1 for n in job.root.walk() if n.kind == "file")
        return PlannedImage(plan, plan.image_size, files,
                            {"full_size": plan.full_size})

    def write(self, planned: PlannedImage, out: Sink) -> None:
        from dfsbuild.images.romfs.write import write_romfs

        write_romfs(planned.data, out)

    def data_patch_from(self, options: RomfsOptions) -> int | None:
        return 512       # the superblock's checksum covers the image's first 512 bytes

    def probe(self, head: bytes) -> bool:
        from dfsbuild.images.romfs.records import MAGIC

        return head[:8] == MAGIC

    def reader(self, src: ByteSource) -> RomfsReader:
        from dfsbuild.images.romfs.read import RomfsReader

        return RomfsReader(src)


TYPE = RomfsType()

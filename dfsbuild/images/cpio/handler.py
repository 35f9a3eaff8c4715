"""``type = "cpio"``: a newc archive (an initramfs), as the registry sees it. The format
modules are imported when a method needs them: loading and keying a layout never does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from dfsbuild.trees.fstree import manifest
from dfsbuild.vocab.settings import Setting, p_choice

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.fileio.source import ByteSource
    from dfsbuild.images.cpio.read import CpioReader


@dataclass(frozen=True, slots=True)
class CpioOptions:
    """The settings of a ``type = "cpio"`` image."""

    compress: str


class CpioType(ImageType):
    name = "cpio"
    family = "cpio"
    max_file_bytes = 0xFFFFFFFF          # a 32-bit size field
    help = "a cpio newc archive (an initramfs the kernel unpacks)"
    revision = 1
    options = CpioOptions
    contents = frozenset({TREE, EXCLUDE, FILES, DEVICES, DIRS})
    settings = (
        Setting("compress", p_choice("none", "gzip", "xz"), "none", "`none` (default), `gzip` "
                "(mtime 0, no name) or `xz` (CRC32 check, as the kernel needs)"),
    )

    def manifest(self, job: ImageJob) -> list[list[object]]:
        rows = manifest(job.root) if job.root is not None else []
        return [*rows, ["cpio:time", job.time]]

    def plan(self, job: ImageJob) -> PlannedImage:
        from dfsbuild.images.cpio.write import plan_cpio

        assert job.root is not None
        opts: CpioOptions = job.spec.options
        plan = plan_cpio(job.root, job.time, opts.compress, job.where)
        return PlannedImage(plan, plan.image_size, len(plan.members),
                            {"uncompressed": plan.raw_size})

    def write(self, planned: PlannedImage, out: Sink) -> None:
        from dfsbuild.images.cpio.write import write_cpio

        write_cpio(planned.data, out)

    def probe(self, head: bytes) -> bool:
        from dfsbuild.images.cpio.records import looks_like_cpio

        return looks_like_cpio(head)

    def reader(self, src: ByteSource) -> CpioReader:
        from dfsbuild.images.cpio.read import CpioReader

        return CpioReader(src)


TYPE = CpioType()

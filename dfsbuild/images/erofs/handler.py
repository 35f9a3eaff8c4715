"""``type = "erofs"``: settings, planning and the reader, as the registry sees them. The
format modules are imported when a method needs them: loading and keying a layout never
does."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dfsbuild.ids import derive_uuid
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
from dfsbuild.vocab.settings import Context, Setting, p_bool, p_str, p_uuid

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.fileio.source import ByteSource
    from dfsbuild.images.erofs.read import ErofsReader

LABEL_MAX = 16


@dataclass(frozen=True, slots=True)
class ErofsOptions:
    """The settings of a ``type = "erofs"`` image."""

    uuid: str | None
    label: str
    tail_pack: bool


def _label(value: object, ctx: Context) -> str:
    text = p_str(value, ctx)
    if len(text.encode("utf-8", "surrogateescape")) > LABEL_MAX or "\0" in text:
        raise ValueError(f"{text!r}: an EROFS volume name holds at most {LABEL_MAX} bytes, "
                         "no NUL")
    return text


class ErofsType(ImageType):
    name = "erofs"
    family = "erofs"
    max_file_bytes = (1 << 44) - 1          # 2^32 blocks of 4 KiB
    help = "an EROFS image (uncompressed), the read-only root filesystem Linux mounts"
    revision = 2
    options = ErofsOptions
    contents = frozenset({TREE, EXCLUDE, FILES, DEVICES, DIRS})
    settings = (
        Setting("uuid", p_uuid, None, "the volume's UUID; default: derived from the layout's "
                "seed"),
        Setting("label", _label, lambda ctx: ctx.name if len(ctx.name.encode()) <= LABEL_MAX
                else "", "the volume name blkid reports as LABEL (at most 16 bytes); default: "
                "the image name when it fits, else none"),
        Setting("tail-pack", p_bool, False, "a file's last partial block after its inode, as "
                "mkfs.erofs packs it (half a block smaller per file on average); off by "
                "default: each file's data is then one run, and an edit of a file of the same "
                "size is patched alone instead of the image written again", kind="boolean"),
    )

    def manifest(self, job: ImageJob) -> list[list[object]]:
        rows = manifest(job.root) if job.root is not None else []
        return [*rows, ["erofs:time", job.time], ["erofs:seed", job.seed]]

    def plan(self, job: ImageJob) -> PlannedImage:
        from dfsbuild.images.erofs.write import plan_erofs

        assert job.root is not None
        opts: ErofsOptions = job.spec.options
        volume = uuidlib.UUID(opts.uuid) if opts.uuid else \
            derive_uuid(job.seed, f"erofs:{job.spec.name}")
        plan = plan_erofs(job.root, volume.bytes, opts.label.encode("utf-8", "surrogateescape"),
                          job.time, job.where, opts.tail_pack)
        files = sum(1 for n in job.root.walk() if n.kind == "file")
        return PlannedImage(plan, plan.image_size, files,
                            {"uuid": str(volume), "inodes": len(plan.inodes),
                             "metadata_bytes": plan.meta_bytes})

    def write(self, planned: PlannedImage, out: Sink) -> None:
        from dfsbuild.images.erofs.write import write_erofs

        write_erofs(planned.data, out)

    def data_patch_from(self, options: ErofsOptions) -> int | None:
        # no checksum: files' data (inline or in blocks) is all a change moves, unless a
        # file is in two parts (tail-packed)
        return None if options.tail_pack else 0

    def probe(self, head: bytes) -> bool:
        from dfsbuild.images.erofs.records import MAGIC, SUPER_OFFSET

        return len(head) >= SUPER_OFFSET + 4 and \
            int.from_bytes(head[SUPER_OFFSET:SUPER_OFFSET + 4], "little") == MAGIC

    def reader(self, src: ByteSource) -> ErofsReader:
        from dfsbuild.images.erofs.read import ErofsReader

        return ErofsReader(src)


TYPE = ErofsType()

"""``type = "trivialfs"``: settings, planning and the reader, as the registry sees them. The
format modules are imported when a method needs them: loading and keying a layout never
does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dfsbuild.ids import derive_uuid
from dfsbuild.images.base import EXCLUDE, FILES, TREE, ImageJob, ImageType, PlannedImage
from dfsbuild.trees.fstree import manifest
from dfsbuild.units import is_power_of_two
from dfsbuild.vocab.settings import Context, Setting, p_choice, p_size, p_str, p_uuid

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.fileio.source import ByteSource
    from dfsbuild.images.trivialfs.read import TrivialReader


@dataclass(frozen=True, slots=True)
class TrivialOptions:
    """The settings of a ``type = "trivialfs"`` image."""

    uuid: str | None
    label: str
    align: int
    label_fs: str


def _label(value: object, ctx: Context) -> str:
    from dfsbuild.images.trivialfs.records import LABEL_MAX

    text = p_str(value, ctx)
    if len(text.encode("utf-8")) > LABEL_MAX or "\0" in text:
        raise ValueError(f"{text!r}: the ext2 label holds at most {LABEL_MAX} bytes, no NUL")
    return text


def _align(value: object, ctx: Context) -> int:
    size = p_size(value, ctx)
    if size < 1 or not is_power_of_two(size):
        raise ValueError(f"{size}: the alignment is a power of two (1 packs the data)")
    return size


class TrivialType(ImageType):
    name = "trivialfs"
    family = "trivialfs"
    help = "a TrivialFS volume: a text header of byte ranges, for boot scripts"
    revision = 1
    options = TrivialOptions
    contents = frozenset({TREE, EXCLUDE, FILES})
    file_reserve = True
    settings = (
        Setting("uuid", p_uuid, None, "the volume's UUID (written in lower case); default: "
                "derived from the layout's seed"),
        Setting("label", _label, lambda ctx: ctx.name, "the volume label blkid and findfs see "
                "(at most 16 bytes); default: the image name"),
        Setting("align", _align, 512, "data of each file starts on this boundary (a power of "
                "two; default 512, `1` packs like the reference writer)", kind="size"),
        Setting("label-fs", p_choice("ext2", "none"), "ext2", "`ext2` (default): an ext2 "
                "superblock at byte 1024 that names the volume for blkid, udev and findfs "
                "(header within 1024 bytes, volume at least 68 KiB); `none`: the bare format"),
    )

    def manifest(self, job: ImageJob) -> list[list[object]]:
        rows = manifest(job.root) if job.root is not None else []
        reserves = [[f.dest, f.reserve] for f in job.spec.contents.files if f.reserve]
        return [*rows, ["trivialfs:time", job.time], ["trivialfs:seed", job.seed],
                ["trivialfs:reserve", reserves]]

    def plan(self, job: ImageJob) -> PlannedImage:
        from dfsbuild.images.trivialfs.write import TrivialSettings, plan_trivialfs

        assert job.root is not None
        opts: TrivialOptions = job.spec.options
        volume = opts.uuid or str(derive_uuid(job.seed, f"trivialfs:{job.spec.name}"))
        settings = TrivialSettings(
            volume.lower(), opts.label, opts.align, opts.label_fs,
            tuple((f.dest, f.reserve) for f in job.spec.contents.files if f.reserve),
            job.time)
        plan = plan_trivialfs(job.root, settings, job.where)
        return PlannedImage(plan, plan.image_size, len(plan.files), {
            "uuid": settings.uuid, "metadata_bytes": len(plan.header),
            "data_start": plan.data_start})

    def write(self, planned: PlannedImage, out: Sink) -> None:
        from dfsbuild.images.trivialfs.write import write_trivialfs

        write_trivialfs(planned.data, out)

    def data_patch_from(self, options: TrivialOptions) -> int | None:
        return 0

    def probe(self, head: bytes) -> bool:
        from dfsbuild.images.trivialfs.records import MAGIC

        return head.startswith(MAGIC)

    def reader(self, src: ByteSource) -> TrivialReader:
        from dfsbuild.images.trivialfs.read import TrivialReader

        return TrivialReader(src)


TYPE = TrivialType()

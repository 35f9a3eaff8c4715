"""``type = "raw"``: a host file taken as is, byte for byte (holes kept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dfsbuild.images.base import ImageJob, ImageType, PlannedImage
from dfsbuild.vocab.settings import Setting, p_host_path

if TYPE_CHECKING:
    from dfsbuild.fileio.sink import Sink


@dataclass(frozen=True, slots=True)
class RawOptions:
    """The settings of a ``type = "raw"`` image."""

    file: str                 # host path (absolute)


@dataclass(frozen=True, slots=True)
class RawPlan:
    """A raw image: the host file copied as it is, and its size."""

    source: str
    size_bytes: int


class RawType(ImageType):
    name = "raw"
    help = "a host file taken as is"
    revision = 1
    options = RawOptions
    settings = (
        Setting("file", p_host_path, None, "the host file the image is (relative to the "
                "layout)", kind="path", cached=False, required=True),
    )

    def host_files(self, options: RawOptions) -> tuple[tuple[str, str], ...]:
        return (("file", options.file),)

    def plan(self, job: ImageJob) -> PlannedImage:
        opts: RawOptions = job.spec.options
        entry = job.describe(opts.file)
        return PlannedImage(RawPlan(opts.file, entry.size_bytes), entry.size_bytes, 1)

    def manifest(self, job: ImageJob) -> list[list[object]]:
        opts: RawOptions = job.spec.options
        return [["", "file", 0, job.describe(opts.file).digest]]

    def write(self, planned: PlannedImage, out: Sink) -> None:
        plan: RawPlan = planned.data
        out.copy_sparse(plan.source, plan.size_bytes)


TYPE = RawType()

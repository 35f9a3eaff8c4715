"""``table = "none"``: the disk is exactly one image (a bare filesystem, or the filesystem as
partition table)."""

from __future__ import annotations

from dataclasses import dataclass

from dfsbuild.tables.base import DiskJob, PlacedDisk, TableKind
from dfsbuild.vocab.model import DiskSpec
from dfsbuild.vocab.settings import Setting, p_str


@dataclass(frozen=True, slots=True)
class NoneOptions:
    """The disk settings of ``table = "none"``."""

    image: str


class NoneKind(TableKind):
    name = "none"
    help = "no partition table: the disk is one image"
    revision = 1
    disk_options = NoneOptions
    disk_settings = (
        Setting("image", p_str, None, "the image that is the disk", required=True,
                cached=False),
    )

    def images(self, spec: DiskSpec) -> tuple[str, ...]:
        opts: NoneOptions = spec.options
        return (opts.image,)

    def plan(self, spec: DiskSpec, job: DiskJob) -> PlacedDisk:
        opts: NoneOptions = spec.options
        size = job.sizes[opts.image]
        layout = PlacedDisk(self.name, 1, size, 0, size - 1, [])
        layout.whole_image = opts.image
        layout.facts["image"] = opts.image
        return layout


KIND = NoneKind()

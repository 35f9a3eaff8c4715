"""Writing one output from its plan: an image through its type's writer, a disk by placing
its table structures and copying its images into their partitions. Every output is written
to a temporary file and renamed into place."""

from __future__ import annotations

import os

from dfsbuild.errors import InputError
from dfsbuild.fileio.atomic import atomic_output
from dfsbuild.fileio.copy import copy_file_sparse
from dfsbuild.fileio.sink import Sink
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.plan import DiskPlan, ImagePlan


def write_image(plan: ImagePlan) -> None:
    t = IMAGE_TYPES[plan.spec.type]
    with atomic_output(plan.output) as fd:
        sink = Sink(fd, 0, plan.size_bytes)
        t.write(plan.planned, sink)
        sink.close()


def write_disk(plan: DiskPlan, outputs: dict[str, str], sizes: dict[str, int]) -> None:
    """Table structures at their LBAs, each image copied into place keeping holes;
    everything else stays a hole."""
    disk = plan.disk
    with atomic_output(plan.output) as fd:
        os.ftruncate(fd, disk.size_bytes)
        for lba, data in disk.structures:
            os.pwrite(fd, data, lba * disk.sector_size)
        for offset, name, room in disk.contents():
            source = outputs[name]
            try:
                found = copy_file_sparse(source, fd, offset, sizes[name])
            except OSError as exc:
                raise InputError(f"{source}: cannot read: {exc.strerror}") from None
            if found != sizes[name] or found > room:
                raise InputError(f"{source}: {found} bytes, planned {sizes[name]} (the image "
                                 "changed after planning)")

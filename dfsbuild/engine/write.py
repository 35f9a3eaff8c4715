"""Writing one output from its plan: an image through its type's writer, a disk by placing
its table structures and copying its images into their partitions; and patching a disk in
place when only some of its images changed. Each writes into an open file descriptor; the
step (step.py) owns the file."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from dfsbuild.errors import InputError
from dfsbuild.faults import point
from dfsbuild.fileio.copy import BUFFER, copy_file_sparse, copy_range
from dfsbuild.fileio.sink import Extent, Sink
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.plan import DiskPlan, ImagePlan

_ZEROS = bytes(BUFFER)


class Rewritten(NamedTuple):
    """What writing an image left: the extents of its bytes (for the next build to reuse),
    and the spans it changed over the previous build (a disk copies only those)."""

    extents: list[Extent]
    written: list[tuple[int, int]]
    names: dict[int, str]               # offset of a file's data -> its path in the image


def write_image(plan: ImagePlan, fd: int,
                reuse: dict[tuple[int, int], str] | None = None) -> Rewritten:
    """The image into ``fd``; with ``reuse``, ``fd`` already holds the previous build of this
    output whose extents those are, and only what differs is written."""
    t = IMAGE_TYPES[plan.spec.type]
    sink = Sink(fd, 0, plan.size_bytes, reuse)
    t.write(plan.planned, sink)
    sink.close()
    return Rewritten(sink.extents, sink.written, sink.names)


def write_disk(plan: DiskPlan, images: dict[str, ImagePlan], fd: int) -> None:
    """Table structures at their LBAs, each image copied into place keeping holes;
    everything else stays a hole."""
    disk = plan.settled()
    os.ftruncate(fd, disk.size_bytes)
    for lba, data in disk.structures:
        os.pwrite(fd, data, lba * disk.sector_size)
    for offset, name, room in disk.contents():
        _copy_image(images[name], fd, offset, room, sparse=True)
        _place(images[name], fd, offset)


def disk_frame(plan: DiskPlan, images: dict[str, ImagePlan]) -> dict[str, object]:
    """What a later patch compares: the disk's size, where its structures are, and which
    image (key and size) fills each region."""
    disk = plan.settled()
    return {
        "size": disk.size_bytes,
        "sector_size": disk.sector_size,
        "structures": [[lba, len(data)] for lba, data in disk.structures],
        "regions": [[offset, room, images[name].key, images[name].size_bytes]
                    for offset, name, room in disk.contents()],
    }


def patch_disk(plan: DiskPlan, images: dict[str, ImagePlan], fd: int,
               old: dict[str, object],
               changes: Callable[[str, str, str], list[tuple[int, int]] | None]
               = lambda task, a, b: None) -> bool:
    """Rewrite, in the disk open on ``fd`` (which holds the disk ``old`` describes), the
    table structures and the regions whose image changed: only the spans an in-place
    rewrite of the image changed when ``changes(task, old key, new key)`` knows them, else
    the whole image. False (nothing written) when the frame moved: then only a full write
    is right."""
    new = disk_frame(plan, images)
    old_regions, new_regions = old.get("regions"), new["regions"]
    assert isinstance(new_regions, list)
    if (not isinstance(old_regions, list) or len(old_regions) != len(new_regions)
            or any(k != "regions" and old.get(k) != v for k, v in new.items())
            or any(not isinstance(o, list) or o[:2] != n[:2]
                   for o, n in zip(old_regions, new_regions, strict=True))):
        return False
    disk = plan.settled()
    for lba, data in disk.structures:
        os.pwrite(fd, data, lba * disk.sector_size)
    contents = disk.contents()
    for (offset, name, room), o, n in zip(contents, old_regions, new_regions, strict=True):
        if o[2:] == n[2:]:
            continue
        spans = changes(images[name].task, str(o[2]), str(n[2]))
        if spans is not None:
            _copy_spans(images[name], fd, offset, room, spans)
        else:
            _copy_image(images[name], fd, offset, room, sparse=False)
        _place(images[name], fd, offset)
        point("patch-region-written")
        old_size, new_size = int(o[3]), int(n[3])
        _zero(fd, offset + new_size, max(0, min(old_size, room) - new_size))
    return True


def _copy_image(image: ImagePlan, fd: int, offset: int, room: int, sparse: bool) -> None:
    """The image's output into ``[offset, offset + room)``. Sparse: holes stay holes (a fresh
    file); else every byte is written (a region that held something else)."""
    source, size = image.output, image.size_bytes
    if size > room:
        raise InputError(f"{source}: {size} bytes, more than the {room} planned")
    try:
        if sparse:
            found = copy_file_sparse(source, fd, offset, size)
        else:
            src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            try:
                found = os.fstat(src).st_size
                if found == size:
                    copy_range(src, fd, size, offset, source)
            finally:
                os.close(src)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    if found != size:
        raise InputError(f"{source}: {found} bytes, planned {size} (the image changed after "
                         "planning)")


def _copy_spans(image: ImagePlan, fd: int, offset: int, room: int,
                spans: list[tuple[int, int]]) -> None:
    """The changed spans of the image's output into its region (which holds the image of
    the spans' old key)."""
    source, size = image.output, image.size_bytes
    if size > room:
        raise InputError(f"{source}: {size} bytes, more than the {room} planned")
    try:
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        if os.fstat(src).st_size != size:
            raise InputError(f"{source}: not {size} bytes as planned (the image changed "
                             "after planning)")
        for at, n in spans:
            n = min(n, size - at)
            if n > 0:
                copy_range(src, fd, n, offset + at, source, src_offset=at, last=False)
    finally:
        os.close(src)


def _place(image: ImagePlan, fd: int, offset: int) -> None:
    """The image type's fix-ups for its place in the disk (a FAT's hidden sectors)."""
    t = IMAGE_TYPES[image.spec.type]

    def read(at: int, n: int) -> bytes:
        return os.pread(fd, max(0, min(n, image.size_bytes - at)), offset + at)
    for at, data in t.placed(image.spec.options, read, offset):
        if at + len(data) <= image.size_bytes:
            os.pwrite(fd, data, offset + at)


def _zero(fd: int, offset: int, length: int) -> None:
    while length > 0:
        n = os.pwrite(fd, _ZEROS[:min(length, BUFFER)], offset)
        offset += n
        length -= n

"""Writing one output file: atomic replacement, nested sizes resolved, the format writer run."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator

from dfsbuild.errors import InputError
from dfsbuild.fileio import Sink, copy_file_sparse, link_or_copy
from dfsbuild.formats.romfs import plan_romfs, write_romfs
from dfsbuild.fstree import FsNode

TMP_MARK = ".dfsbuild-tmp-"


def _temporary(path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f".{os.path.basename(path)}{TMP_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[int]:
    """A file descriptor on a temporary file that replaces ``path`` only on success."""
    tmp = _temporary(path)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        yield fd
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def place_file(source: str, path: str) -> None:
    """Put ``source``'s bytes at ``path`` atomically (a hard link where possible)."""
    tmp = _temporary(path)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    link_or_copy(source, tmp)
    os.replace(tmp, path)


def remove_stale_temporaries(path: str) -> None:
    """Delete temporaries an interrupted build left beside ``path``."""
    directory, name = os.path.split(os.path.abspath(path))
    for stale in glob.glob(os.path.join(glob.escape(directory),
                                        f".{glob.escape(name)}{TMP_MARK}*")):
        with contextlib.suppress(OSError):
            os.unlink(stale)


def resolve_sizes(root: FsNode, outputs: dict[str, str]) -> None:
    """Give nested-image nodes their source (the nested output) and its size."""
    for node in root.walk():
        if node.image is None:
            continue
        path = outputs[node.image]
        try:
            node.size_bytes = os.stat(path).st_size
        except OSError as exc:
            raise InputError(f"{path}: nested image {node.image!r} is missing: "
                             f"{exc.strerror}") from None
        node.source = path


def write_romfs_file(path: str, root: FsNode, volume: str, align_bytes: int,
                     where: tuple[str, str]) -> None:
    plan = plan_romfs(root, volume, align_bytes, where)
    with atomic_output(path) as fd:
        sink = Sink(fd, 0, plan.image_size)
        write_romfs(plan, sink)
        sink.close()


def write_copy(path: str, source: str) -> None:
    with atomic_output(path) as fd:
        try:
            copy_file_sparse(source, fd)
        except OSError as exc:
            raise InputError(f"{source}: cannot read: {exc.strerror}") from None


def write_disk(path: str, size_bytes: int, sector_size: int,
               structures: list[tuple[int, bytes]], contents: list[tuple[int, str, int]]) -> None:
    """A disk of ``size_bytes``: table structures at their LBAs, each (offset, image file,
    room) copied into place keeping holes; everything else stays a hole."""
    with atomic_output(path) as fd:
        os.ftruncate(fd, size_bytes)
        for lba, data in structures:
            os.pwrite(fd, data, lba * sector_size)
        for offset, source, room in contents:
            try:
                size = os.stat(source).st_size
            except OSError as exc:
                raise InputError(f"{source}: cannot read: {exc.strerror}") from None
            if size > room:
                raise InputError(f"{source}: {size} bytes, but its partition holds {room} "
                                 "(the image changed after planning)")
            copy_file_sparse(source, fd, offset)

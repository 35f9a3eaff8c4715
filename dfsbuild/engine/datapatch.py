"""Patching an image where only its files' contents changed: the data of those files is
written at the offsets the previous build recorded for them, and nothing else.

It applies when the previous build of the output has the same placement key as the new one
(``keys.placement_key``: everything but the files' contents, their sizes included) and its
type says, through ``ImageType.data_patch_from``, that such builds differ only in the files'
data (romfs: past the 512 bytes its superblock checksum covers). The previous build recorded
where each file's data lies (``StateStore.named_extents``); every file of the new tree must be
there, at its size. Each file copied is hashed on the way and must be the content its key
names: what the output then holds is what the new key describes, the files not copied
included (they are what the previous build wrote and checked, and the key names them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from dfsbuild.errors import InputError
from dfsbuild.fileio.copy import BUFFER
from dfsbuild.fileio.sink import Extent
from dfsbuild.trees.digest import blob_hasher
from dfsbuild.trees.fstree import FsNode

Spans = dict[tuple[int, int], str]          # (offset, size) -> content there
Names = dict[str, tuple[int, int]]          # path in the image -> (offset, size) of its data


@dataclass(slots=True)
class DataFile:
    """A file whose data the image holds: its path in the image, where its bytes come from,
    their size and content (a content id, or ``image:KEY`` for a nested image). One per file
    of the image: not ``frozen``, which would make each three times as slow to make."""

    path: str
    source: str
    size: int
    content: str


@dataclass(frozen=True, slots=True)
class DataPatch:
    """What an image job offers for a data patch: its placement key, the offset before which
    data cannot be patched alone, and its data files (listed when asked)."""

    placement: str
    data_from: int
    files: Callable[[], list[DataFile]]


@dataclass(frozen=True, slots=True)
class Patched:
    extents: list[Extent]
    names: dict[int, str]
    written: list[tuple[int, int]]


def data_files(root: FsNode) -> list[DataFile]:
    """Every file of the tree whose data the writers copy (the first name of a hard link)."""
    return [DataFile(n.path, n.source, n.size_bytes, n.data_id) for n in root.walk()
            if n.kind == "file" and n.link_to is None and n.size_bytes and n.source is not None
            and n.data_id is not None]


def changed(files: list[DataFile], spans: Spans, names: Names,
            data_from: int) -> list[tuple[int, DataFile]] | None:
    """(offset, file) of each file whose content differs from what the previous build put
    at its offset; None when the previous build's files are not these (another name, size or
    count) or a change falls before ``data_from``."""
    if len(files) != len(names):
        return None
    out: list[tuple[int, DataFile]] = []
    for f in files:
        where = names.get(f.path)
        if where is None or where[1] != f.size:
            return None
        if spans.get(where) != f.content:
            if where[0] < data_from:
                return None
            out.append((where[0], f))
    return out


def write_changes(fd: int, changes: list[tuple[int, DataFile]], spans: Spans,
                  names: Names) -> Patched:
    """Each changed file's data at its offset of ``fd``, checked against its content id as it
    is copied; the new extents, names and the spans written."""
    new = dict(spans)
    written: list[tuple[int, int]] = []
    for at, f in changes:
        _copy_checked(f, fd, at)
        new[at, f.size] = f.content
        written.append((at, f.size))
    extents = [(at, n, what) for (at, n), what in new.items()]
    return Patched(extents, {at: path for path, (at, _) in names.items()}, sorted(written))


def _copy_checked(f: DataFile, dst: int, at: int) -> None:
    try:
        src = os.open(f.source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{f.source}: cannot open: {exc.strerror}") from None
    try:
        h = blob_hasher(f.size)
        done = 0
        while done < f.size:
            data = os.pread(src, min(f.size - done, BUFFER), done)
            if not data:
                break
            h.update(data)
            os.pwrite(dst, data, at + done)
            done += len(data)
        if done != f.size or os.pread(src, 1, f.size):
            raise InputError(f"{f.source}: changed during the build (expected {f.size} bytes)")
    finally:
        os.close(src)
    if not f.content.startswith("image:") and h.hexdigest() != f.content:
        raise InputError(f"{f.source}: changed during the build; build again")

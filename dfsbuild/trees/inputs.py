"""The check that the host files copied into an output are the files that were hashed.

Planning hashes (or takes from the stat cache) every input and records its stamp: size,
mtime, ctime, inode. After the output is written, each input is looked at again: a changed
stamp means the file was written during the build. A file whose ctime was within two seconds
of the scan could have been written again within the same timestamp tick, so its content is
hashed again instead. Either way the bytes in the output are the bytes the key describes, or
the build fails naming the file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from dfsbuild.errors import InputError
from dfsbuild.trees.digest import content_id
from dfsbuild.trees.walk import TreeEntry, stamp_of

RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Input:
    """Host files as one scan (or one ``describe``) found them."""

    entries: tuple[TreeEntry, ...]
    follow: bool                  # named by a layout (symlinks followed), not found in a tree
    seen_ns: int = field(default_factory=time.time_ns)

    @classmethod
    def of(cls, entries: list[TreeEntry] | tuple[TreeEntry, ...], follow: bool) -> Input:
        return cls(tuple(entries), follow)


def check_inputs(inputs: Iterable[Input]) -> None:
    """InputError naming the first input file that is no longer what was hashed."""
    for group in inputs:
        for e in group.entries:
            if e.stamp is not None and _changed(e, group.follow, group.seen_ns):
                raise InputError(f"{e.host_path}: changed during the build; nothing was "
                                 "stored, build again")


def _changed(e: TreeEntry, follow: bool, seen_ns: int) -> bool:
    assert e.stamp is not None
    try:
        st = os.stat(e.host_path, follow_symlinks=follow)
    except OSError:
        return True
    if stamp_of(st) != e.stamp:
        return True
    racy = seen_ns - max(e.stamp[1], e.stamp[2]) <= RACY_NS
    if racy and e.digest:
        try:
            return content_id(e.host_path) != e.digest
        except OSError:
            return True
    return False

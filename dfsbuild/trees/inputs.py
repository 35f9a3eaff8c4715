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
from dfsbuild.trees.digest import file_digest
from dfsbuild.trees.walk import TreeEntry, stamp_of

RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Input:
    path: str
    stamp: tuple[int, int, int, int]
    digest: str
    follow: bool                  # named by a layout (symlinks followed), not found in a tree
    seen_ns: int = field(default_factory=time.time_ns)

    @classmethod
    def of(cls, entry: TreeEntry, follow: bool) -> Input:
        assert entry.stamp is not None
        return cls(entry.host_path, entry.stamp, entry.digest or "", follow)

    @property
    def racy(self) -> bool:
        return self.seen_ns - max(self.stamp[1], self.stamp[2]) <= RACY_NS


def check_inputs(inputs: Iterable[Input]) -> None:
    """InputError naming the first input that is no longer what was hashed."""
    for i in inputs:
        try:
            st = os.stat(i.path, follow_symlinks=i.follow)
        except OSError as exc:
            raise InputError(f"{i.path}: changed during the build ({exc.strerror}); nothing "
                             "was stored, build again") from None
        changed = stamp_of(st) != i.stamp
        if not changed and i.racy and i.digest:
            try:
                changed = file_digest(i.path) != i.digest
            except OSError:
                changed = True
        if changed:
            raise InputError(f"{i.path}: changed during the build; nothing was stored, "
                             "build again")

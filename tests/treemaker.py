"""Making host trees whose readdir order is the byte order of names (on tmpfs).

tmpfs lists a directory in reverse creation order, with "." and ".." first, so creating every
directory's entries in reverse sorted order makes genromfs see them sorted: the order dfsbuild
always uses. File contents that several names share (hard links) are staged outside the tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Item:
    path: str
    kind: str = "file"        # file | dir | symlink | hardlink | fifo
    data: bytes = b""
    mode: int = 0o644
    target: str = ""          # symlink text, or hard link group name


def make_tree(root: Path, items: list[Item]) -> Path:
    src = root / "src"
    stage = root / "stage"
    src.mkdir()
    stage.mkdir()
    for it in items:
        if it.kind == "file" and it.target:
            group = stage / it.target
            if not group.exists():
                group.write_bytes(it.data)
                os.chmod(group, it.mode)
    children: dict[str, list[Item]] = {}
    for it in items:
        parent = it.path.rsplit("/", 1)[0] if "/" in it.path else ""
        children.setdefault(parent, []).append(it)

    def populate(rel: str) -> None:
        for it in sorted(children.get(rel, []), key=lambda i: i.path.encode(), reverse=True):
            p = src / it.path
            if it.kind == "dir":
                p.mkdir()
            elif it.kind == "symlink":
                os.symlink(it.target, p)
            elif it.kind == "fifo":
                os.mkfifo(p)
            elif it.target:
                os.link(stage / it.target, p)
            else:
                p.write_bytes(it.data)
                os.chmod(p, it.mode)
        for it in children.get(rel, []):
            if it.kind == "dir":
                populate(it.path)
        for it in children.get(rel, []):
            if it.kind == "dir":
                os.chmod(src / it.path, it.mode)

    populate("")
    _assert_sorted(src)
    return src


def _assert_sorted(src: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        names = os.listdir(dirpath)
        assert names == sorted(names, key=os.fsencode), (
            f"{dirpath}: readdir order {names} is not sorted; the test needs tmpfs"
        )
        del dirnames, filenames

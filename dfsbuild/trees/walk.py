"""The only module that walks host directories: sorted, normalised, digested.

Entries come out in pre-order, each directory's children in byte order of their names, so the
result does not depend on the host filesystem's directory order.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from dfsbuild.errors import InputError
from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.patterns import matches

KINDS = {
    stat.S_IFDIR: "dir",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


@dataclass(slots=True, unsafe_hash=True)
class TreeEntry:
    """One object found under a tree root. Not changed once made; not ``frozen`` only
    because a scan makes one per input and a frozen dataclass takes three times as long to
    make (it sets each field through ``object.__setattr__``)."""

    relpath: str              # "/"-separated, relative to the root; "" for the root itself
    kind: str                 # dir | file | symlink | char | block | fifo | socket
    mode: int                 # permission bits (st_mode & 0o7777)
    size_bytes: int           # regular files: content size; symlinks: target length
    host_path: str
    digest: str | None = None  # regular files: content id (git blob id; digest.py)
    target: str | None = None  # symlinks: the link text
    major: int = 0            # devices
    minor: int = 0
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of files with more than one link
    stamp: tuple[int, int, int, int] | None = None  # regular files: size, mtime, ctime, inode


def _sort_key(entry: os.DirEntry[str]) -> bytes:
    return os.fsencode(entry.name)


class FileTooLarge(InputError):
    """A regular file larger than the image type holds, found from its size alone."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(f"{path}: {size} bytes; the image holds files up to {limit} bytes")


Walked = list[tuple[str, str, os.stat_result]]   # (host path, relpath, lstat) in scan order
Stats = dict[tuple[str, tuple[str, ...]], Walked]    # (root, exclude) -> stat_lines' walk of it


def scan_tree(
    root: str, exclude: tuple[str, ...] = (), digests: DigestCache | None = None,
    max_file: int | None = None, seen: Stats | None = None,
) -> list[TreeEntry]:
    """Every object under ``root`` (root first), honouring genromfs-style exclude patterns.
    A regular file over ``max_file`` bytes is refused from its size, before anything is
    hashed (FileTooLarge). ``seen``: the walks ``stat_lines`` just made, used instead of
    walking the tree again (each is used once: the walk taken is removed)."""
    cache = digests if digests is not None else DigestCache(None)
    try:
        st = os.stat(root)
    except OSError as exc:
        raise InputError(f"{root}: cannot read the tree: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{root}: not a directory")
    entries = [TreeEntry("", "dir", stat.S_IMODE(st.st_mode), 0, root)]
    walked = seen.pop((root, exclude), None) if seen is not None else None
    if walked is not None:
        entries.extend([describe(path, rel, cache, max_file, lst) for path, rel, lst in walked])
    else:
        entries.extend(describe(child.path, relpath, cache, max_file)
                       for child, relpath in _children(root, "", exclude))
    return entries


def _children(path: str, rel: str,
              exclude: tuple[str, ...]) -> Iterator[tuple[os.DirEntry[str], str]]:
    """(entry, relpath) in pre-order, excluded names left out, with an explicit stack: a
    tree of any depth can be walked."""
    stack: list[Iterator[os.DirEntry[str]]] = [_sorted_children(path)]
    prefixes = [rel]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            prefixes.pop()
            continue
        prefix = prefixes[-1]
        relpath = f"{prefix}/{child.name}" if prefix else child.name
        if exclude and matches(exclude, child.name, relpath):
            continue
        yield child, relpath
        if child.is_dir(follow_symlinks=False):
            stack.append(_sorted_children(child.path))
            prefixes.append(relpath)


def stat_lines(root: str, exclude: tuple[str, ...] = (),
               seen: Stats | None = None) -> tuple[list[str], int]:
    """What identifies the tree's present state without reading a file: one line per object
    (path, mode, size, mtime, ctime, inode, device numbers), as git's index identifies a
    work tree; and the newest mtime or ctime seen (ns), for the racy-stat rule. OSError or
    InputError when the tree cannot be walked (the full scan then says why). The walk is the
    scan's (same order, same exclusions) and is put in ``seen`` for a scan that follows
    (``scan_tree``), which then lists no directory and takes no stat again."""
    st = os.stat(root)
    lines = [f"\0{st.st_mode}"]
    walked: Walked = []
    newest = 0
    for child, relpath in _children(root, "", exclude):
        st = child.stat(follow_symlinks=False)
        walked.append((child.path, relpath, st))
        lines.append(f"{relpath}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0"
                     f"{st.st_ctime_ns}\0{st.st_ino}\0{st.st_rdev}")
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    if seen is not None:
        seen[root, exclude] = walked
    return lines, newest


def find_any_case(root: str, lower: str) -> str | None:
    """The host path under ``root`` whose path, compared in lower case, is ``lower``
    ("/"-separated; the first match in byte order at each level), or None. For names that
    a FAT compares without case."""
    path = root
    for part in lower.split("/"):
        try:
            with os.scandir(path) as it:
                names = sorted((e.name for e in it), key=os.fsencode)
        except OSError:
            return None
        found = next((n for n in names if n.lower() == part), None)
        if found is None:
            return None
        path = os.path.join(path, found)
    return path


def _sorted_children(path: str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            children = sorted(it, key=_sort_key)
    except OSError as exc:
        raise InputError(f"{path}: cannot list the directory: {exc.strerror}") from None
    return iter(children)


def describe(host_path: str, relpath: str, cache: DigestCache,
             max_file: int | None = None, st: os.stat_result | None = None) -> TreeEntry:
    """lstat ``host_path`` (unless ``st`` is its lstat) and describe it (digesting regular
    files)."""
    try:
        if st is None:
            st = os.lstat(host_path)
        fmt = stat.S_IFMT(st.st_mode)
        kind = KINDS.get(fmt)
        if kind is None:
            raise InputError(f"{host_path}: unsupported file type 0o{fmt:o}")
        mode = stat.S_IMODE(st.st_mode)
        if kind == "file":
            if max_file is not None and st.st_size > max_file:
                raise FileTooLarge(host_path, st.st_size, max_file)
            inode = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
            return TreeEntry(
                relpath, kind, mode, st.st_size, host_path, cache.digest(host_path, st),
                inode=inode, stamp=stamp_of(st),
            )
        if kind == "symlink":
            target = os.readlink(host_path)
            return TreeEntry(
                relpath, kind, mode, len(os.fsencode(target)), host_path, target=target
            )
        if kind in ("char", "block"):
            return TreeEntry(
                relpath, kind, mode, 0, host_path,
                major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
            )
        return TreeEntry(relpath, kind, mode, 0, host_path)
    except OSError as exc:
        raise InputError(f"{host_path}: cannot read: {exc.strerror}") from None


def describe_file(host_path: str, cache: DigestCache,
                  max_file: int | None = None) -> TreeEntry:
    """A single input file named by a layout (symlinks followed); must be a regular file."""
    try:
        st = os.stat(host_path)
    except OSError as exc:
        raise InputError(f"{host_path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{host_path}: not a regular file")
    if max_file is not None and st.st_size > max_file:
        raise FileTooLarge(host_path, st.st_size, max_file)
    return TreeEntry(os.path.basename(host_path), "file", stat.S_IMODE(st.st_mode), st.st_size,
                     host_path, cache.digest(host_path, st), stamp=stamp_of(st))


def stamp_of(st: os.stat_result) -> tuple[int, int, int, int]:
    """What identifies one version of a file's content without reading it (as git's index):
    any write changes the ctime, which nobody can set back."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

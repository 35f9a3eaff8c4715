"""Parsed filesystems → a host directory, refusing any path that would escape it.

Every object is created relative to an open directory descriptor with O_NOFOLLOW and O_EXCL,
so neither a hostile name nor a symlink stored earlier in the image can redirect a write
outside the destination, and nothing already there is overwritten.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field

from dfsbuild.errors import ExtractError
from dfsbuild.formats.romfs_read import RomfsEntry, RomfsReader

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class ExtractReport:
    created: int = 0
    skipped: list[str] = field(default_factory=list)   # objects that need privileges


def _check_name(name: str, path: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ExtractError(f"refusing to extract {path!r}: the name {name!r} would leave its "
                           "directory")


class _Dirs:
    """Open directory descriptors by relative path, each opened without following links."""

    def __init__(self, root_fd: int) -> None:
        self.fds: dict[str, int] = {"": root_fd}

    def get(self, rel: str) -> int:
        fd = self.fds.get(rel)
        if fd is not None:
            return fd
        parent, _, name = rel.rpartition("/")
        pfd = self.get(parent)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except OSError as exc:
            raise ExtractError(f"{rel}: not a directory of the extraction ({exc.strerror})") \
                from None
        self.fds[rel] = fd
        return fd

    def close(self) -> None:
        for rel, fd in self.fds.items():
            if rel:
                os.close(fd)


def extract_romfs(reader: RomfsReader, dest: str) -> ExtractReport:
    os.makedirs(dest, exist_ok=True)
    root_fd = os.open(dest, _DIR_FLAGS)
    dirs = _Dirs(root_fd)
    report = ExtractReport()
    holders: dict[int, str] = {}
    dir_modes: list[tuple[str, int]] = []
    try:
        for path, e in reader.walk():
            name = e.name
            _check_name(name, path)
            parent = path[: len(path) - len(name)].removesuffix("/")
            pfd = dirs.get(parent)
            try:
                _create(reader, e, name, path, pfd, dirs, holders, dir_modes, report)
            except FileExistsError:
                raise ExtractError(f"{path} already exists in {dest}; dfsbuild does not "
                                   "overwrite") from None
        for rel, mode in reversed(dir_modes):
            os.chmod(dirs.get(rel), mode)
    finally:
        dirs.close()
        os.close(root_fd)
    return report


def _create(reader: RomfsReader, e: RomfsEntry, name: str, path: str, pfd: int, dirs: _Dirs,
            holders: dict[int, str], dir_modes: list[tuple[str, int]],
            report: ExtractReport) -> None:
    kind = e.type_name
    report.created += 1
    if kind == "hardlink":
        target = reader.resolve(e)
        if target.type_name == "dir":
            raise ExtractError(f"{path}: a hard link to a directory cannot be extracted")
        first = holders.get(target.offset)
        if first is None:
            report.created -= 1
            report.skipped.append(f"{path} (hard link to an object not extracted)")
            return
        fparent, _, fname = first.rpartition("/")
        os.link(fname, name, src_dir_fd=dirs.get(fparent), dst_dir_fd=pfd,
                follow_symlinks=False)
        return
    holders[e.offset] = path
    if kind == "dir":
        os.mkdir(name, 0o700, dir_fd=pfd)
        dir_modes.append((path, e.mode))
    elif kind == "file":
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     e.mode, dir_fd=pfd)
        try:
            for chunk in reader.iter_data(e):
                os.write(fd, chunk)
            os.fchmod(fd, e.mode)
        finally:
            os.close(fd)
    elif kind == "symlink":
        link = reader.read(e)
        if not link or b"\0" in link:
            raise ExtractError(f"refusing to extract {path!r}: its link target "
                               f"{link!r} is empty or holds a NUL byte")
        os.symlink(os.fsdecode(link), name, dir_fd=pfd)
    elif kind == "fifo":
        os.mkfifo(name, e.mode, dir_fd=pfd)
    else:
        kinds = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "socket": stat.S_IFSOCK}
        spec = e.header.spec
        try:
            if kind == "socket":
                raise PermissionError
            os.mknod(name, kinds[kind] | e.mode, os.makedev(spec >> 16, spec & 0xFFFF),
                     dir_fd=pfd)
        except PermissionError:
            report.created -= 1
            report.skipped.append(f"{path} ({kind}"
                                  + (f" {spec >> 16}:{spec & 0xFFFF})" if kind != "socket"
                                     else ")"))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=pfd)
            raise ExtractError(f"{path}: cannot create: {exc.strerror}") from None

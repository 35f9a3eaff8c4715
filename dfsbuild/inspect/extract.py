"""Any filesystem reader → a host directory, refusing any path that would escape it.

Every object is created relative to an open directory descriptor with O_NOFOLLOW and O_EXCL,
so neither a hostile name nor a symlink stored earlier in the image can redirect a write
outside the destination, and nothing already there is overwritten. Only the descriptors of
the current directory chain stay open, so a tree of any width or depth extracts under a small
descriptor limit; a file that cannot be written whole is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass, field

from dfsbuild.errors import ExtractError
from dfsbuild.images.base import FsEntry, FsReader
from dfsbuild.inspect.render import printable

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_NAME = 255           # NAME_MAX
MAX_TARGET = 4095        # PATH_MAX - 1: the longest symlink target Linux stores


@dataclass
class ExtractReport:
    created: int = 0
    skipped: list[str] = field(default_factory=list)   # objects that need privileges


def check_name(name: str, path: str) -> None:
    """The one path-escape guard: a name must stay inside its directory."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ExtractError(f"refusing to extract {printable(path)!r}: the name "
                           f"{printable(name)!r} would leave its directory")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise ExtractError(f"refusing to extract {printable(path[:80])!r}…: a name of more "
                           f"than {MAX_NAME} bytes cannot be created on the host")


class _Chain:
    """Descriptors of the directories from the root down to the current one."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.chain: list[tuple[str, int]] = [("", root_fd)]

    def enter(self, rel: str) -> int:
        """The descriptor of directory ``rel`` (already created), opening what is missing."""
        while self.chain[-1][0] and not (rel == self.chain[-1][0]
                                         or rel.startswith(self.chain[-1][0] + "/")):
            os.close(self.chain.pop()[1])
        top, fd = self.chain[-1]
        if top == rel:
            return fd
        rest = rel[len(top):].lstrip("/")
        for name in rest.split("/"):
            top = f"{top}/{name}" if top else name
            fd = _open_dir(name, fd, top)
            self.chain.append((top, fd))
        return fd

    def close(self) -> None:
        for _, fd in self.chain[1:]:
            os.close(fd)
        self.chain = self.chain[:1]


def _open_dir(name: str, parent_fd: int, rel: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        raise ExtractError(f"{printable(rel)}: not a directory of the extraction "
                           f"({exc.strerror})") from None


def _open_dest(dest: str) -> int:
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        try:
            os.makedirs(dest)
        except OSError as exc:
            raise ExtractError(f"{dest}: cannot create: {exc.strerror}") from None
    except OSError as exc:
        raise ExtractError(f"{dest}: {exc.strerror}") from None
    else:
        if stat.S_ISLNK(st.st_mode):
            raise ExtractError(f"{dest} is a symbolic link; name a real directory")
        if not stat.S_ISDIR(st.st_mode):
            raise ExtractError(f"{dest} exists and is not a directory")
    try:
        fd = os.open(dest, _DIR_FLAGS)
    except OSError as exc:
        raise ExtractError(f"{dest}: cannot open: {exc.strerror}") from None
    if not os.access(dest, os.W_OK | os.X_OK):
        os.close(fd)
        raise ExtractError(f"{dest}: permission denied (not writable)")
    return fd


def extract(reader: FsReader, dest: str) -> ExtractReport:
    for e in reader.walk():             # every name checked before anything is created
        check_name(e.name, e.path)
    root_fd = _open_dest(dest)
    chain = _Chain(root_fd)
    report = ExtractReport()
    holders: dict[int, str] = {}
    dir_modes: list[tuple[str, int]] = []
    try:
        for e in reader.walk():
            check_name(e.name, e.path)
            parent = e.path[: len(e.path) - len(e.name)].removesuffix("/")
            pfd = chain.enter(parent)
            try:
                _create(reader, e, pfd, root_fd, holders, dir_modes, report)
            except FileExistsError:
                raise ExtractError(f"{printable(e.path)} already exists in {dest}; dfsbuild "
                                   "does not overwrite") from None
            except ExtractError:
                raise
            except OSError as exc:
                raise ExtractError(f"{printable(e.path)}: cannot create in {dest}: "
                                   f"{exc.strerror}") from None
        chain.close()
        for rel, mode in reversed(dir_modes):
            parent, _, name = rel.rpartition("/")
            _chmod_dir(chain.enter(parent), name, mode)
    finally:
        chain.close()
        os.close(root_fd)
    return report


def _chmod_dir(parent_fd: int, name: str, mode: int) -> None:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _create(reader: FsReader, e: FsEntry, pfd: int, root_fd: int, holders: dict[int, str],
            dir_modes: list[tuple[str, int]], report: ExtractReport) -> None:
    kind = e.kind
    if kind == "hardlink":
        target = reader.resolve(e)
        if target.kind == "dir":
            raise ExtractError(f"{printable(e.path)}: a hard link to a directory cannot be "
                               "extracted")
        first = holders.get(target.ident)
        if first is None:
            report.skipped.append(f"{printable(e.path)} (hard link to an object not "
                                  "extracted)")
            return
        fparent, _, fname = first.rpartition("/")
        chain = _Chain(root_fd)
        try:
            os.link(fname, e.name, src_dir_fd=chain.enter(fparent), dst_dir_fd=pfd,
                    follow_symlinks=False)
        finally:
            chain.close()
        report.created += 1
        return
    if kind == "dir":
        os.mkdir(e.name, 0o700, dir_fd=pfd)
        dir_modes.append((e.path, e.mode))
    elif kind == "file":
        _write_file(reader, e, pfd)
    elif kind == "symlink":
        link = e.target.encode("utf-8", "surrogateescape")
        if not link or b"\0" in link or len(link) > MAX_TARGET:
            shown = printable(e.target[:60]) + ("…" if len(e.target) > 60 else "")
            raise ExtractError(f"refusing to extract {printable(e.path)!r}: its link target "
                               f"({len(link)} bytes, {shown!r}) is empty, holds a NUL byte "
                               f"or is longer than {MAX_TARGET} bytes")
        os.symlink(os.fsdecode(link), e.name, dir_fd=pfd)
    elif kind == "fifo":
        os.mkfifo(e.name, e.mode, dir_fd=pfd)
    else:
        kinds = {"char": stat.S_IFCHR, "block": stat.S_IFBLK}
        what = f"{kind} {e.major}:{e.minor}" if kind in kinds else kind
        try:
            if kind not in kinds:
                raise PermissionError
            os.mknod(e.name, kinds[kind] | e.mode, os.makedev(e.major, e.minor), dir_fd=pfd)
        except PermissionError:
            report.skipped.append(f"{printable(e.path)} ({what})")
            return
    holders[e.ident] = e.path
    report.created += 1


def _write_file(reader: FsReader, e: FsEntry, pfd: int) -> None:
    fd = os.open(e.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=pfd)
    try:
        for chunk in reader.data(e):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        os.fchmod(fd, e.mode)
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(e.name, dir_fd=pfd)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise ExtractError(f"{printable(e.path)}: {exc.strerror}; the partial file was "
                               "removed") from None
        raise
    os.close(fd)

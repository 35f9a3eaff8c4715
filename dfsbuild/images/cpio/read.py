"""cpio newc reader: archives made by dfsbuild, GNU cpio and gen_init_cpio (symlink targets
with or without a trailing NUL), gzip- or xz-compressed, and concatenated (zeros between
members, each a new segment, compressed or not), as the kernel unpacks an initramfs. Hard
links are grouped by inode as the kernel does; a later member of a path replaces nothing
here: it is a problem, and the first is listed."""

from __future__ import annotations

from collections.abc import Iterator

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader, Problem
from dfsbuild.images.cpio.records import (
    GZIP_MAGIC,
    HEADER,
    TRAILER,
    XZ_MAGIC,
    CpioHeader,
    pad4,
)
from dfsbuild.images.cpio.unpack import Budget, Unpacked

FMT = "cpio"
CHUNK = 1 << 20
MAX_NAME = 4096
MAX_MEMBERS = 1 << 22
MAX_UNPACKED = 16 << 30         # decompressed bytes of one image, all its members together
KINDS = {0o040000: "dir", 0o100000: "file", 0o120000: "symlink", 0o020000: "char",
         0o060000: "block", 0o010000: "fifo", 0o140000: "socket"}


Data = ByteSource | Unpacked     # where a member's bytes are: the image, or a stream in it


def _has(src: Data, end: int) -> bool:
    return src.has(end) if isinstance(src, Unpacked) else end <= src.size


def _path(name: str) -> str:
    """A member's path inside the tree ("" for the root)."""
    return "" if name in (".", "./") else name.removeprefix("./").lstrip("/")


class CpioReader(FsReader):
    format = FMT

    def __init__(self, src: ByteSource) -> None:
        self.src = src.named(FMT)
        self.problem_list: list[Problem] = []
        self.members: list[tuple[CpioHeader, str, Data, int]] = []  # hdr, name, src, data
        self.segment_of: list[int] = []
        self.segments = 0
        self.budget = Budget(MAX_UNPACKED, MAX_UNPACKED)
        self._targets: dict[int, bytes] = {}       # symlink targets, kept as the scan passes
        self._scan()
        self._tree()

    # -- scanning ------------------------------------------------------------------------
    def _scan(self) -> None:
        pos = 0
        src = self.src
        while pos < src.size:
            head = src.read_upto(pos, 6)
            if head[:1] == b"\0":                      # zeros between archives
                pos += 4 if pos % 4 == 0 else 4 - pos % 4
                continue
            if head[:2] == GZIP_MAGIC or head == XZ_MAGIC:
                kind = "gzip" if head[:2] == GZIP_MAGIC else "xz"
                stream = Unpacked(src, pos, kind, FMT, self.budget)
                self._segment(stream, 0)
                pos = stream.finish()
                continue
            if pos % 4:
                raise FormatError(FMT, pos, "an archive does not start on a 4-byte boundary")
            pos = self._segment(src, pos)
        if not self.members and not self.segments:
            raise FormatError(FMT, 0, "no cpio archive")

    def _segment(self, src: Data, pos: int) -> int:
        """Members from ``pos`` to the trailer; the offset after it."""
        self.segments += 1
        while True:
            if len(self.members) > MAX_MEMBERS:
                raise FormatError(FMT, pos, f"more than {MAX_MEMBERS} members")
            h = CpioHeader.unpack(src.read(pos, HEADER), pos)
            if not 1 <= h.namesize <= MAX_NAME:
                raise FormatError(FMT, pos + 94, f"name size {h.namesize}")
            raw = src.read(pos + HEADER, h.namesize)
            if raw[-1:] != b"\0":
                self.problem_list.append(Problem(pos + HEADER, "the name does not end in NUL"))
            name = raw.rstrip(b"\0").decode("utf-8", "surrogateescape")
            data = pos + pad4(HEADER + h.namesize)
            end = data + pad4(h.filesize)
            if not _has(src, data + h.filesize):
                raise FormatError(FMT, pos, f"{name!r}: {h.filesize} bytes of data pass the end "
                                  "of the archive")
            if name == TRAILER:
                return end if isinstance(src, Unpacked) else min(end, src.size)
            if h.mode & 0o170000 == 0o120000:   # read now: a stream is read forward
                self._targets[len(self.members)] = src.read(data, min(h.filesize, MAX_NAME))
            self.members.append((h, name, src, data))
            self.segment_of.append(self.segments)
            pos = end

    # -- the tree ------------------------------------------------------------------------
    def _tree(self) -> None:
        self._children: dict[str, list[FsEntry]] = {"": []}
        holders: dict[tuple[int, int, int, int, int], int] = {}
        groups: dict[tuple[int, int, int, int, int], list[int]] = {}
        last: dict[str, int] = {}
        for i, (h, name, _, _) in enumerate(self.members):
            # Links are grouped per archive (the kernel forgets them at each trailer).
            if h.nlink >= 2 and KINDS.get(h.mode & 0o170000) == "file":
                key = (self.segment_of[i], h.ino, h.devmajor, h.devminor, h.mode & 0o170000)
                groups.setdefault(key, []).append(i)
            # A later member of the same path replaces the earlier one, as when the kernel
            # unpacks concatenated archives.
            last[_path(name)] = i
        for key, idx in groups.items():     # the data is on the member that has it
            with_data = [i for i in idx if self.members[i][0].filesize]
            holders[key] = with_data[-1] if with_data else idx[-1]
        for i, (h, name, _, _) in enumerate(self.members):
            path = _path(name)
            if not path or last[path] != i:
                continue
            kind = KINDS.get(h.mode & 0o170000)
            if kind is None:
                self.problem_list.append(Problem(i, f"{path!r}: unknown file type "
                                                 f"0o{h.mode & 0o170000:o}"))
                continue
            parent, _, leaf = path.rpartition("/")
            self._dirs_for(parent)
            key = (self.segment_of[i], h.ino, h.devmajor, h.devminor, h.mode & 0o170000)
            link = holders.get(key) if kind == "file" else None
            target = ""
            if kind == "symlink":
                target = self._bytes(i).rstrip(b"\0").decode("utf-8", "surrogateescape")
            entry = FsEntry(path, leaf, "hardlink" if link is not None and link != i else kind,
                            h.mode & 0o7777,
                            len(target) if kind == "symlink" else
                            self.members[link][0].filesize if link is not None else h.filesize,
                            ident=i + 1, link_ident=(link + 1) if link is not None and link != i
                            else None, target=target, major=h.rdevmajor, minor=h.rdevminor,
                            extra=(("ino", h.ino), ("nlink", h.nlink), ("mtime", h.mtime),
                                   ("uid", h.uid), ("gid", h.gid)))
            if kind == "dir":
                if path in self._children:     # made earlier as a parent: keep its place
                    continue
                self._children[path] = []
            self._children[parent].append(entry)

    def _dirs_for(self, path: str) -> None:
        """The directories leading to ``path`` that no member named (no recursion: a hostile
        name may be thousands of levels deep)."""
        missing = []
        while path and path not in self._children:
            missing.append(path)
            path = path.rpartition("/")[0]
        for d in reversed(missing):
            parent, _, leaf = d.rpartition("/")
            self._children[d] = []
            self._children[parent].append(FsEntry(d, leaf, "dir", 0o755,
                                                  ident=-(len(self._children))))

    def _bytes(self, i: int) -> bytes:
        return self._targets[i]

    # -- the reader contract -------------------------------------------------------------
    def root(self) -> FsEntry:
        return FsEntry("", "", "dir", 0o755, ident=0)

    def children(self, directory: FsEntry) -> list[FsEntry]:
        return list(self._children.get(directory.path, []))

    def resolve(self, entry: FsEntry) -> FsEntry:
        if entry.kind != "hardlink" or entry.link_ident is None:
            return entry
        h, name, _, _ = self.members[entry.link_ident - 1]
        return FsEntry(name, name.rpartition("/")[2], "file", h.mode & 0o7777, h.filesize,
                       ident=entry.link_ident)

    def data(self, entry: FsEntry) -> Iterator[bytes]:
        e = self.resolve(entry)
        if e.kind not in ("file", "symlink") or e.ident < 1:
            raise FormatError(FMT, None, f"{entry.path!r} is a {e.kind}, which has no data")
        h, _, src, data = self.members[e.ident - 1]
        if e.kind == "symlink":
            yield e.target.encode("utf-8", "surrogateescape")
            return
        for pos in range(data, data + h.filesize, CHUNK):
            yield src.read(pos, min(CHUNK, data + h.filesize - pos))

    def problems(self) -> list[Problem]:
        return list(self.problem_list)

    def summary(self) -> dict[str, object]:
        return {"members": len(self.members), "archives": self.segments}

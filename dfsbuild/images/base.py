"""What an image type is: its settings, its planning step, its writer, and (for filesystems)
its probe and reader. The engine, ``inspect`` and the CLI only speak through these."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

from dfsbuild.errors import FormatError
from dfsbuild.trees.fstree import FsNode, manifest
from dfsbuild.trees.walk import TreeEntry
from dfsbuild.vocab.model import ImageSpec
from dfsbuild.vocab.settings import Context, Setting, build_options, read_settings
from dfsbuild.vocab.table import Table

if TYPE_CHECKING:                 # the writing and reading halves, imported when used
    from dfsbuild.fileio.sink import Sink
    from dfsbuild.fileio.source import ByteSource

# Which content keys a type takes: a host tree, single files, exclude patterns, special files.
TREE, FILES, EXCLUDE, DEVICES, DIRS = "tree", "files", "exclude", "devices", "dirs"

MAX_WALK = 1 << 22      # entries a reader walks before calling the image hostile


@dataclass(slots=True)
class ImageJob:
    """Everything an image type needs to plan one image; no host access beyond ``describe``."""

    spec: ImageSpec
    file: str                         # the layout file, for messages
    root: FsNode | None               # tree types: the assembled tree, nested sizes resolved
    describe: Callable[[str], TreeEntry]  # a host file named by the layout -> size, digest
    seed: str = ""                    # IDs not given are derived from it (the layout's seed)
    time: int = 0                     # the build's time (clock.build_time) for timestamps
    # A small host file's bytes (one ``describe`` has named: its digest is in the key).
    read_input: Callable[[str], bytes] = field(default=lambda path: b"")
    # The images this one reads (``ImageType.uses``): name -> (output path, size in bytes).
    outputs: Callable[[str], tuple[str, int]] = field(default=lambda name: ("", 0))

    @property
    def where(self) -> tuple[str, str]:
        return self.file, self.spec.where


@dataclass(slots=True)
class PlannedImage:
    """An image with every offset and its size decided, ready for ``write``."""

    data: Any                          # the type's own plan, opaque to everyone else
    size_bytes: int
    files: int = 0
    facts: dict[str, object] = field(default_factory=dict)   # shown by ``plan``


class ImageType:
    """Base of every image type: override what the type has."""

    name: ClassVar[str]
    help: ClassVar[str]
    revision: ClassVar[int]            # bump when the bytes change for the same inputs
    settings: ClassVar[tuple[Setting, ...]]
    options: ClassVar[type]
    contents: ClassVar[frozenset[str]] = frozenset()
    short_flags: ClassVar[dict[str, tuple[str, ...]]] = {}   # `mkfs` aliases of setting flags
    file_reserve: ClassVar[bool] = False   # takes `files."PATH" = { …, reserve = SIZE }`
    family: ClassVar[str | None] = None    # the filesystem, for partition-type warnings
    max_file_bytes: ClassVar[int | None] = None   # largest file it holds: checked from stat

    def warnings(self, spec: ImageSpec) -> list[tuple[str, str]]:
        """(key, message) of settings of this image that do nothing or surprise."""
        return []

    def load(self, table: Table, ctx: Context) -> Any:
        """The options record for one ``[image.NAME]`` table; LayoutError on bad values."""
        return build_options(self.options, self.settings, read_settings(table, self.settings,
                                                                        ctx))

    def host_files(self, options: Any) -> tuple[tuple[str, str], ...]:
        """(key, host path) of the single host files the options name, checked at load."""
        return ()

    def companions(self, output: str) -> tuple[str, ...]:
        """Files this type makes beside its output once it is in place (none by default)."""
        return ()

    def write_companions(self, output: str, options: Any,
                         outputs: Callable[[str], str]) -> None:
        """Make ``companions(output)`` from the output (of these options) now in place;
        ``outputs(name)`` is the file of another image of the layout."""

    def published(self, output: str) -> dict[str, str]:
        """Facts of the output in place that a disk's manifest names (a hash tree's root
        hash); none by default."""
        return {}

    def partition_uuids(self, spec: ImageSpec, output: str | None,
                        outputs: Callable[[str], str]) -> dict[str, str | None]:
        """Image name -> the unique GUID a GPT partition holding that image takes from this
        image's bytes (systemd's convention: a hash tree's root hash names its data's
        partition and its own), read from ``output``; with ``output`` None (not built yet),
        the names alone, each with None. None by default."""
        return {}

    def settings_of_every_image(self) -> tuple[Setting, ...]:
        """Settings this type adds to every ``[image.NAME]`` (the hash tree's ``verity``)."""
        return ()

    def derived(self, spec: ImageSpec, values: Mapping[str, Any],
                ctx: Context) -> list[ImageSpec]:
        """The images that image ``spec``'s values of ``settings_of_every_image`` ask for,
        each of a name the layout does not use yet, or of ``spec``'s own name: that one
        takes the image's place (``verity = "append"``: the image becomes its data with the
        hash tree appended; the data, renamed, is among the images returned)."""
        return []

    def uses(self, options: Any) -> tuple[tuple[str, str], ...]:
        """(setting, image name) of the images of the layout this type reads whole (as
        dm-verity's hash tree reads its data image); they are built first and their keys
        enter this one's."""
        return ()

    def manifest(self, job: ImageJob) -> list[list[object]]:
        """Everything about the inputs that shapes the bytes (enters the content key); cheap:
        the build computes it for every image, and plans only those whose key changed."""
        return manifest(job.root) if job.root is not None else []

    def data_patch_from(self, options: Any) -> int | None:
        """Where files' data may be patched alone: when two plans of this type agree on
        everything but the files' contents (their sizes included), their images differ only
        in the data of the files whose contents differ, past this offset. None (the default):
        some other byte depends on a file's content (a checksum, a compressed stream, a
        digest listed in the image), so every edit runs the writer."""
        return None

    def plan(self, job: ImageJob) -> PlannedImage:
        raise NotImplementedError

    def write(self, planned: PlannedImage, out: Sink) -> None:
        raise NotImplementedError

    def placed(self, options: Any, read: Callable[[int, int], bytes],
               start_bytes: int) -> list[tuple[int, bytes]]:
        """(offset, bytes) to change in the image's copy when a disk places it at
        ``start_bytes`` (``read(offset, n)`` reads the image); a FAT records its partition's
        start. Applied by the disk writer; the image's own output is left as built."""
        return []

    def probe(self, head: bytes) -> bool:
        """True if ``head`` (the first 4 KiB or less) starts an image of this type."""
        return False

    def reader(self, src: ByteSource) -> FsReader:
        raise FormatError(self.name, 0, "no reader for this type")

    def updater(self, f: BinaryIO, src: ByteSource, where: str) -> FsUpdater:
        """The image in ``src`` (a region of ``f``, open for writing) for ``put`` and ``rm``."""
        raise FormatError(self.name, 0, f"{where}: a {self.name} image cannot be changed in "
                          "place; rebuild it")


class FsUpdater(Protocol):
    """In-place changes of one file: ``put`` and ``rm`` (each returns what it did)."""

    def put(self, path: str, source: str, time: int, fragment: bool = False) -> str: ...

    def rm(self, path: str) -> str: ...


# -- reading --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong but readable in an image: where (a byte offset or an index) and what."""

    offset: int
    message: str


@dataclass(frozen=True, slots=True)
class FsEntry:
    """One object of a filesystem image, as every reader presents it."""

    path: str                  # "/"-separated from the root, no leading slash; "" for the root
    name: str
    kind: str                  # dir | file | symlink | char | block | fifo | socket | hardlink
    mode: int
    size_bytes: int = 0
    ident: int = 0             # identifies the object within the image (a header offset, …)
    link_ident: int | None = None  # hard links: ident of the object holding the data
    target: str = ""           # symlinks: the link text
    major: int = 0
    minor: int = 0
    extra: tuple[tuple[str, object], ...] = ()   # format details for inspect (offsets, …)


class FsReader:
    """The one reader contract: ``ls``, ``cat``, ``extract`` and ``inspect`` use only this."""

    format: ClassVar[str]

    def root(self) -> FsEntry:
        raise NotImplementedError

    def children(self, directory: FsEntry) -> list[FsEntry]:
        """Entries of a directory in stored order, without "." and ".."."""
        raise NotImplementedError

    def resolve(self, entry: FsEntry) -> FsEntry:
        """The entry holding the object a hard link names (the entry itself otherwise)."""
        return entry

    def data(self, entry: FsEntry) -> Iterator[bytes]:
        """Contents of a regular file (or a symlink's target bytes), in bounded chunks."""
        raise NotImplementedError

    def problems(self) -> list[Problem]:
        return []

    def extents(self, entry: FsEntry) -> list[tuple[int, int]]:
        """(byte offset from the start of the filesystem, length) of each piece of a regular
        file's contents, in file order (``dfsbuild map``)."""
        raise FormatError(self.format, None, "this format does not tell where file data lies")

    def detail(self, entry: FsEntry) -> dict[str, object]:
        """Costly per-entry facts for ``inspect`` only (where the data lies, …)."""
        return {}

    def summary(self) -> dict[str, object]:
        """Format facts for ``inspect`` (volume name, sizes, checksums, …)."""
        return {}

    def identity(self) -> dict[str, str]:
        """What ``blkid -p`` reports of the filesystem, under its names in lower case (type,
        uuid, label), for the disk's manifest; {} for a format blkid does not know."""
        return {}

    # -- written once, for every format ---------------------------------------------------------
    def walk(self) -> Iterator[FsEntry]:
        """Every entry below the root, pre-order, without recursion; a directory that
        contains itself is a FormatError."""
        visited: set[int] = set()
        stack: list[Iterator[FsEntry]] = [iter(self._dir_children(self.root(), visited))]
        count = 0
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            count += 1
            if count > MAX_WALK:
                raise FormatError(self.format, None, f"more than {MAX_WALK} entries")
            yield entry
            if entry.kind == "dir":
                stack.append(iter(self._dir_children(entry, visited)))

    def _dir_children(self, directory: FsEntry, visited: set[int]) -> list[FsEntry]:
        target = self.resolve(directory)
        if target.ident in visited:
            raise FormatError(self.format, target.ident, f"directory {directory.path or '/'!r}"
                              " contains itself")
        visited.add(target.ident)
        if target.path != directory.path:  # reached through a hard link: keep the link's path
            target = replace(target, path=directory.path, name=directory.name)
        return self.children(target)

    def lookup(self, path: str) -> FsEntry:
        """The entry at ``path``; FileNotFoundError if there is none."""
        node = self.root()
        for part in [p for p in path.split("/") if p]:
            directory = self.resolve(node)
            if directory.kind != "dir":
                raise FileNotFoundError(path)
            for e in self.children(directory):
                if e.name == part:
                    node = e
                    break
            else:
                raise FileNotFoundError(path)
        return node

    def listing(self, path: str) -> list[FsEntry]:
        """Entries directly under ``path``, or the entry itself when it is not a directory."""
        entry = self.lookup(path)
        target = self.resolve(entry)
        if target.kind != "dir":
            return [entry]
        if target.path != entry.path:
            target = replace(target, path=entry.path, name=entry.name)
        return self.children(target)

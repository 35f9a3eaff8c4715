"""Layouts → build plans: every image's tree, size and content key, every disk's sectors and
table bytes. Planning asks each image type and table kind through their registries; after it,
nothing is left to decide (``dfsbuild check`` runs exactly this, and a build worker only
writes what the plan says).

Host reads go through the scanner and describer passed in (trees/), so planning itself stays
pure given the tree manifests. A plan serialises to JSON for ``dfsbuild plan``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dfsbuild import __version__
from dfsbuild.clock import build_time
from dfsbuild.errors import CapacityError, InputError, InternalError, LayoutError
from dfsbuild.fileio.copy import read_input
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.images.base import ImageJob, PlannedImage
from dfsbuild.keys import content_key, key_material, placement_key
from dfsbuild.tables import TABLE_KINDS
from dfsbuild.tables.base import DiskJob, PlacedDisk
from dfsbuild.tables.place import place_regions
from dfsbuild.trees.fstree import FsNode, TreeBuilder
from dfsbuild.trees.inputs import Input
from dfsbuild.trees.patterns import matches
from dfsbuild.trees.walk import FileTooLarge, TreeEntry
from dfsbuild.vocab.model import DiskSpec, ImageSpec, Layout
from dfsbuild.vocab.settings import options_json, options_material

Scanner = Callable[[str, tuple[str, ...], "int | None"], list[TreeEntry]]
Describer = Callable[[str, "int | None"], TreeEntry]      # (path, largest size allowed)
# (task, key, output, placement key) -> the size of the output on disk when it is the build of
# that key, or of that placement key (which gives the same size)
SizeHint = Callable[[str, str, str, "str | None"], "int | None"]
# (tree, exclude) -> a line per object's stat, the newest mtime or ctime (trees.walk.stat_lines)
StatScanner = Callable[[str, tuple[str, ...]], tuple[list[str], int]]
FINGERPRINT_FORMAT = "dfsbuild-stats 1"     # bumped when a fingerprint's lines change


@dataclass(slots=True)
class Keyed:
    """What keying an image from its inputs gives: the type's job, the key material, the
    host files read (as the scan found them), the key, and the placement key (``keys.
    placement_key``) for types whose files' data can be patched alone."""

    job: ImageJob
    material: dict[str, object]
    inputs: tuple[Input, ...]
    key: str
    placement: str | None = None


@dataclass(slots=True)
class ImagePlan:
    """One image: its key at once, its type's plan (every offset, the size) only when asked
    for, so an up-to-date image is never planned. An image whose inputs' stats are those of
    a build that left it current takes that build's key (``KeyMemo``): its tree is scanned
    and assembled only if something asks for it."""

    layout: str                    # layout name
    layout_file: str
    spec: ImageSpec
    output: str                    # absolute path of the output file
    key: str
    deps: tuple[str, ...]          # nested image names
    keyed: Keyed | Callable[[], Keyed]
    known_size: int | None = None  # the size recorded by the build that left the output
    _planned: PlannedImage | None = None

    @property
    def task(self) -> str:
        return f"{self.layout}:image.{self.spec.name}"

    def _keyed(self) -> Keyed:
        if callable(self.keyed):
            full = self.keyed()
            if full.key != self.key:
                raise InternalError(f"{self.task}: the inputs' stats named key "
                                    f"{self.key[:16]}…, their contents {full.key[:16]}…")
            self.keyed = full
        return self.keyed

    @property
    def job(self) -> ImageJob:
        return self._keyed().job

    @property
    def material(self) -> dict[str, object]:
        return self._keyed().material

    @property
    def inputs(self) -> tuple[Input, ...]:
        return self._keyed().inputs

    @property
    def placement(self) -> str | None:
        return self._keyed().placement

    @property
    def planned(self) -> PlannedImage:
        if self._planned is None:
            self._planned = IMAGE_TYPES[self.spec.type].plan(self.job)
        return self._planned

    @property
    def size_bytes(self) -> int:
        if self._planned is None and self.known_size is not None:
            return self.known_size
        return self.planned.size_bytes

    def companions(self) -> list[str]:
        """Files its type makes beside the output (a hash tree's .roothash)."""
        return list(IMAGE_TYPES[self.spec.type].companions(self.output))

    def summary(self) -> dict[str, object]:
        t = IMAGE_TYPES[self.spec.type]
        return {
            "name": self.spec.name,
            "type": self.spec.type,
            "output": self.output,
            "file": os.path.basename(self.output),
            "key": self.key,
            "size_bytes": self.size_bytes,
            "size": self.size_bytes,          # the manifest's name
            "contains": list(self.deps),
            "files": self.planned.files,
            "options": options_json(t.settings, self.spec.options),
            **({"facts": self.planned.facts} if self.planned.facts else {}),
        }


@dataclass(slots=True)
class DiskPlan:
    """The disk: its key at once (table options, partitions, the keys of its images, the
    build time), its placement and table bytes only when asked for."""

    layout: str
    layout_file: str
    spec: DiskSpec
    output: str
    key: str
    images: tuple[str, ...]        # the images it holds
    place: Callable[[bool], PlacedDisk]    # True: the images are built (read what it needs)
    material: dict[str, object] = field(default_factory=dict)
    inputs: tuple[Input, ...] = ()
    reads: tuple[str, ...] = ()    # images it does not hold but whose bytes shape its table
    _disk: PlacedDisk | None = None

    @property
    def table(self) -> str:
        return self.spec.table

    @property
    def options(self) -> object:
        return self.spec.options

    @property
    def placed(self) -> PlacedDisk:
        """The disk placed: partitions numbered and at their LBAs, IDs derived, the bytes of
        every table structure (made when first asked for)."""
        if self._disk is None:
            self._disk = self.place(False)
        return self._disk

    def settled(self) -> PlacedDisk:
        """The placement once its images are built: a GPT GUID that a root hash gives is
        known only then (``placed`` holds the seed's in its place until this is asked)."""
        if self._disk is None or self._disk.pending:
            self._disk = self.place(True)
        return self._disk

    @property
    def task(self) -> str:
        return f"{self.layout}:disk"

    @property
    def bmap(self) -> str | None:
        """The block map written beside the disk (``disk.bmap``), or None."""
        return self.output + ".bmap" if getattr(self.options, "bmap", False) else None

    @property
    def simg(self) -> str | None:
        """The Android sparse image written beside the disk (``disk.sparse``), or None."""
        return companion(self.output, ".simg") if getattr(self.options, "sparse", False) \
            else None

    @property
    def compression(self) -> str | None:
        """``disk.compress``: "xz", "zstd" or None."""
        method = getattr(self.options, "compress", None)
        return method if method in ("xz", "zstd") else None

    @property
    def compressed(self) -> str | None:
        """The compressed disk written beside it (``disk.compress``), or None."""
        from dfsbuild.fileio.compress import compressed_name

        method = self.compression
        return None if method is None else compressed_name(self.output, method)

    @property
    def manifest(self) -> str | None:
        """The manifest written beside the disk (``disk.manifest``, on by default), or None."""
        return companion(self.output, ".json") if getattr(self.options, "manifest", True) \
            else None

    @property
    def sparse_crc(self) -> bool:
        """``disk.sparse-crc``: the sparse images end with a CRC32 chunk."""
        return bool(getattr(self.options, "sparse_crc", False))

    def partition_simgs(self) -> dict[str, str]:
        """Partition name -> the sparse image of its bytes (``sparse`` on the partition)."""
        return {p.name: companion(self.output, f".{p.name}.simg")
                for p in self.spec.partitions if p.sparse}

    def companions(self) -> list[str]:
        """The files made from the disk once it is in place, as the layout asks for them."""
        return [p for p in (self.bmap, self.simg, self.compressed, self.manifest)
                if p is not None] + \
            list(self.partition_simgs().values())

    def to_json(self) -> dict[str, object]:
        kind = TABLE_KINDS[self.table]
        data: dict[str, object] = {"table": self.table, "output": self.output, "key": self.key,
                                   "options": options_json(kind.disk_settings,
                                                           self.options)}
        data.update(self.placed.to_json(kind.partition_settings))
        return data


def companion(output: str, suffix: str) -> str:
    """A file beside a disk: ``board.img`` -> ``board`` + ``suffix`` (other names keep their
    extension: ``board.raw`` -> ``board.raw`` + ``suffix``)."""
    stem = output[:-4] if output.endswith(".img") else output
    return stem + suffix


@dataclass(slots=True)
class LayoutPlan:
    """Every output of one layout, keyed: its images (nested ones first) and its disk."""

    layout: Layout
    build_dir: str
    images: dict[str, ImagePlan]   # in dependency order: nested images first
    disk: DiskPlan | None

    def to_json(self) -> dict[str, object]:
        return {
            "layout": self.layout.path,
            "name": self.layout.name,
            "build_dir": self.build_dir,
            "images": [p.summary() for p in self.images.values()],
            "disk": self.disk.to_json() if self.disk is not None else None,
        }


def dependency_order(layout: Layout) -> list[str]:
    order: list[str] = []
    done: set[str] = set()
    for start in layout.images:
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                order.append(name)
                continue
            if name in done:
                continue
            done.add(name)
            stack.append((name, True))
            stack.extend((inner, False) for inner in reversed(layout.images[name].nested()))
    return order


class KeyMemo(Protocol):
    """Keys remembered by the stats of the inputs they were computed from."""

    def lookup(self, task: str, stats: str) -> str | None: ...

    def remember(self, task: str, stats: str, key: str, newest_ns: int) -> None: ...


def plan_layout(layout: Layout, build_root: str, scan: Scanner, describe: Describer,
                known_size: SizeHint | None = None, stats: StatScanner | None = None,
                memo: KeyMemo | None = None) -> LayoutPlan:
    """Keys for every output; the types' plans wait until asked for (``known_size`` gives
    the size an output that is already current has, so its plan is never needed). With
    ``stats`` and ``memo``, an image whose inputs' stats are those a current output was
    built from takes its key without reading or assembling anything."""
    build_dir = os.path.join(os.path.abspath(build_root), layout.name)
    images: dict[str, ImagePlan] = {}
    for name in dependency_order(layout):
        spec = layout.images[name]
        output = os.path.join(build_dir, spec.output)
        task = f"{layout.name}:image.{name}"
        if spec.contents.tree is not None:
            _check_tree_outside_build(layout, spec, build_root)

        def full(spec: ImageSpec = spec) -> Keyed:
            return _key_image(layout, spec, scan, describe, images)
        fingerprint = None
        if stats is not None and memo is not None:
            fingerprint = _fingerprint(layout, spec, images, stats)
        if fingerprint is not None and known_size is not None and memo is not None:
            key = memo.lookup(task, fingerprint[0])
            size = known_size(task, key, output, None) if key is not None else None
            if key is not None and size is not None:
                images[name] = ImagePlan(layout.name, layout.path, spec, output, key,
                                         spec.nested(), full, size)
                continue
        keyed = full()
        plan = ImagePlan(layout.name, layout.path, spec, output, keyed.key, spec.nested(),
                         keyed)
        if fingerprint is not None and memo is not None:
            memo.remember(task, fingerprint[0], keyed.key, fingerprint[1])
        if known_size is not None:
            plan.known_size = known_size(plan.task, plan.key, output, keyed.placement)
        images[name] = plan
    disk = None
    if layout.disk is not None:
        disk = _disk_plan(layout, build_dir, images, describe)
    return LayoutPlan(layout, build_dir, images, disk)


def _key_image(layout: Layout, spec: ImageSpec, scan: Scanner, describe: Describer,
               images: dict[str, ImagePlan]) -> Keyed:
    """The image's inputs read (digests through the stat cache) and its key computed."""
    t = IMAGE_TYPES[spec.type]
    inputs: list[Input] = []
    seen = _recording(scan, describe, inputs)
    root = _assemble(layout, spec, seen[0], seen[1], images) if t.contents else None
    job = ImageJob(spec, layout.path, root, _unlimited(seen[1]), _seed(layout), build_time(),
                   read_input, lambda name: (images[name].output, images[name].size_bytes))
    nested = {inner: images[inner].key for inner in spec.nested()}
    material = key_material(spec.type, t.revision, options_material(t.settings, spec.options),
                            t.manifest(job), nested)
    placement = None
    if root is not None and t.data_patch_from(spec.options) is not None:
        sizes = {node.content: node.size_bytes for node in root.walk() if node.content}
        placement = placement_key(material, sizes)
    return Keyed(job, material, tuple(inputs), content_key(material), placement)


def _fingerprint(layout: Layout, spec: ImageSpec, images: dict[str, ImagePlan],
                 stats: StatScanner) -> tuple[str, int] | None:
    """A digest of everything the image's key is computed from, with its input files as
    their stats rather than their contents, and the newest time among them; None when an
    input cannot be examined (the full keying then says why)."""
    t = IMAGE_TYPES[spec.type]
    lines = [FINGERPRINT_FORMAT, __version__, f"{spec.type} {t.revision}", repr(spec),
             _seed(layout), str(build_time())]
    lines += [f"{inner} {images[inner].key}" for inner in spec.nested()]
    newest = 0
    try:
        if spec.contents.tree is not None:
            tree_lines, newest = stats(spec.contents.tree, spec.contents.exclude)
            lines += tree_lines
        hosts = [f.file for f in spec.contents.files if f.file is not None]
        hosts += [path for _, path in t.host_files(spec.options)]
        for path in hosts:
            st = os.stat(path)
            lines.append(f"{path}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0"
                         f"{st.st_ctime_ns}\0{st.st_ino}")
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    except (OSError, InputError):
        return None
    text = "\n".join(lines).encode("utf-8", "surrogateescape")
    return hashlib.sha256(text).hexdigest(), newest


def _seed(layout: Layout) -> str:
    """The layout's seed: the disk's ``seed`` when it has one, else the layout's name."""
    options = layout.disk.options if layout.disk is not None else None
    seed = getattr(options, "seed", None)
    return seed if isinstance(seed, str) else layout.name


def _unlimited(describe: Describer) -> Callable[[str], TreeEntry]:
    """``describe`` for a type's own host files (no size limit from the tree's type)."""
    return lambda path: describe(path, None)


def _recording(scan: Scanner, describe: Describer,
               inputs: list[Input]) -> tuple[Scanner, Describer]:
    """``scan`` and ``describe`` that also note every host file read, for the check after
    writing that the bytes copied are the bytes hashed."""
    def rec_scan(root: str, exclude: tuple[str, ...], limit: int | None) -> list[TreeEntry]:
        entries = scan(root, exclude, limit)
        inputs.append(Input.of(entries, follow=False))
        return entries

    def rec_describe(path: str, limit: int | None) -> TreeEntry:
        entry = describe(path, limit)
        inputs.append(Input.of([entry], follow=True))
        return entry

    return rec_scan, rec_describe


def _disk_plan(layout: Layout, build_dir: str, images: dict[str, ImagePlan],
               describe: Describer) -> DiskPlan:
    spec = layout.disk
    assert spec is not None
    kind = TABLE_KINDS[spec.table]
    output = os.path.join(build_dir, spec.output)
    inputs: list[Input] = []
    rows: list[list[object]] = []
    for path in kind.inputs(spec):
        entry = describe(path, None)
        inputs.append(Input.of([entry], follow=True))
        rows.append([path.rsplit("/", 1)[-1], "file", 0, entry.digest])
    held = kind.images(spec)
    options = {
        "table": options_material(kind.disk_settings, spec.options),
        "partitions": [
            {"name": p.name, "image": p.image, "start": p.start_bytes, "size": p.size_bytes,
             "rest": p.rest, **(options_material(kind.partition_settings, p.options)
                                if p.options is not None else {}),
             **({"sparse": True} if p.sparse else {})}
            for p in spec.partitions
        ],
        "regions": [{"name": r.name, "image": r.image, "start": r.start_bytes,
                     "size": r.size_bytes} for r in spec.regions],
        "time": build_time(),
    }
    sources = _uuid_sources(layout, held)
    reads = tuple(name for name in sources if name not in held)
    nested = {name: images[name].key for name in (*held, *reads)}
    material = key_material(f"disk-{spec.table}", kind.revision, options, rows, nested)

    def place(final: bool) -> PlacedDisk:
        sizes = {name: images[name].size_bytes for name in held}
        uuids: dict[str, str | None] = {}
        for source, names in sources.items():
            plan = images[source]
            given = IMAGE_TYPES[plan.spec.type].partition_uuids(
                plan.spec, plan.output if final else None, lambda name: images[name].output)
            uuids.update((name, given[name]) for name in names)
        job = DiskJob(layout.path, sizes, build_time(), read_input, uuids)
        disk = kind.plan(spec, job)
        place_regions(spec, job, disk)
        return disk

    return DiskPlan(layout.name, layout.path, spec, output, content_key(material), held, place,
                    material, tuple(inputs), reads)


def _uuid_sources(layout: Layout, held: tuple[str, ...]) -> dict[str, list[str]]:
    """Image -> the held images whose partition GUIDs its bytes give (a hash tree: its data's
    and its own). An image two such images name takes it from the one the disk holds, and
    from none (the seed's GUID) if that leaves more or fewer than one."""
    named: dict[str, list[str]] = {}
    for spec in layout.images.values():
        for name in IMAGE_TYPES[spec.type].partition_uuids(spec, None, str):
            if name in held:
                named.setdefault(name, []).append(spec.name)
    sources: dict[str, list[str]] = {}
    for name, given in named.items():
        if len(given) > 1:
            given = [g for g in given if g in held]
        if len(given) == 1:
            sources.setdefault(given[0], []).append(name)
    return sources


def _check_tree_outside_build(layout: Layout, spec: ImageSpec, build_root: str) -> None:
    """A tree that holds the build directory would take in its own earlier outputs."""
    tree = spec.contents.tree
    if tree is None:
        return
    real_tree = os.path.realpath(tree)
    real_build = os.path.realpath(build_root)
    if os.path.commonpath([real_tree, real_build]) != real_tree or real_tree == real_build:
        return
    rel = os.path.relpath(real_build, real_tree).replace(os.sep, "/")
    parts = rel.split("/")
    for i in range(len(parts)):
        if matches(spec.contents.exclude, parts[i], "/".join(parts[:i + 1])):
            return
    raise LayoutError(layout.path, f"{spec.where}.tree", f"the tree {tree!r} contains the build "
                      f"directory {build_root!r}: each build would take in the last one's "
                      "outputs", hint=f"add \"/{rel}\" to exclude, or build elsewhere "
                      "(--build-dir)")


def _assemble(layout: Layout, spec: ImageSpec, scan: Scanner, describe: Describer,
              done: dict[str, ImagePlan]) -> FsNode:
    builder = TreeBuilder()
    contents = spec.contents
    limit = IMAGE_TYPES[spec.type].max_file_bytes
    if contents.tree is not None:
        try:
            builder.add_scan(scan(contents.tree, contents.exclude, limit))
        except FileTooLarge as exc:
            raise CapacityError(layout.path, f"{spec.where}.tree", f"{exc} ({spec.type}); "
                                "refused before reading it") from None
    try:
        for empty in contents.dirs:
            builder.put(FsNode(empty.rsplit("/", 1)[-1], empty, "dir", 0o755))
        for f in contents.files:
            leaf = f.dest.rsplit("/", 1)[-1]
            if f.image is not None:
                inner = done[f.image]
                mode = 0o644 if f.mode is None else f.mode
                builder.put(FsNode(leaf, f.dest, "file", mode, inner.size_bytes,
                                   content=inner.key, image=f.image, source=inner.output))
                continue
            assert f.file is not None
            try:
                entry = describe(f.file, limit)
            except FileTooLarge as exc:
                raise CapacityError(layout.path, f"{f.where}.file", f"{exc} ({spec.type}); "
                                    "refused before reading it") from None
            mode = entry.mode if f.mode is None else f.mode
            builder.put(FsNode(leaf, f.dest, "file", mode, entry.size_bytes, source=f.file,
                               content=entry.digest or ""))
        for d in contents.devices:
            builder.put(FsNode(d.dest.rsplit("/", 1)[-1], d.dest, d.kind, d.mode,
                               major=d.major, minor=d.minor))
    except ValueError as exc:
        raise LayoutError(layout.path, spec.where, str(exc)) from None
    return builder.finish()

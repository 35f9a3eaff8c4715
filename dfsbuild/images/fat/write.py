"""FAT writer: every cluster planned first, then the image streamed into a Sink.

Planning turns the tree into directories of entries (8.3 or long names), picks the geometry
(mkfs.fat's for the size, or the smallest that holds everything), and hands out clusters:
directories first (in tree order), then files (those the layout names, in its order, then the
tree's), each one run followed by its reserve, and the map file last. Writing streams the
reserved sectors, each FAT (built a chunk at a time from the runs), the fixed root directory
and the data region in cluster order; free space stays holes.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from dfsbuild.errors import CapacityError, InternalError
from dfsbuild.fileio.sink import Sink
from dfsbuild.images.fat.geometry import Geometry, NoGeometry, Wanted, choose
from dfsbuild.images.fat.names import FatName, ShortNames, fits_short, fold, name_problem
from dfsbuild.images.fat.records import (
    ATTR_ARCHIVE,
    ATTR_DIR,
    ATTR_RO,
    ATTR_VOLUME,
    ENTRY,
    NO_NAME,
    SIGNATURE,
    BootSector,
    DirEntry,
    FsInfo,
    code_start,
    eoc,
    fat_datetime,
    jump_target,
    lfn_entries,
    pack_entries,
    pack_fat12,
)
from dfsbuild.trees.fstree import FsNode

CHUNK = 1 << 16              # FAT entries built at a time


@dataclass(frozen=True, slots=True)
class FatSettings:
    """What the writer takes from the layout (the handler's options, resolved)."""

    size: int | None                 # bytes; None: the smallest that holds everything
    want: Wanted
    label: bytes | None              # 11 bytes, space padded; None: "NO NAME", no root entry
    serial: int
    oem: bytes                       # 8 bytes
    hidden: int
    contiguous: bool                 # files in layout order then tree order, after directories
    reserve: tuple[tuple[str, int], ...] = ()   # (path, bytes)
    map_path: str | None = None
    order: tuple[str, ...] = ()      # paths the layout names, in its order
    time: int = 0
    free: int = 0                    # bytes of free clusters the image must keep
    boot_code: bytes | None = None   # a volume boot record: its jump and code are used


@dataclass(slots=True, eq=False)
class Item:
    """One object that gets clusters: a directory or a file."""

    path: str
    node: FsNode | None              # None: the map file
    size_bytes: int = 0
    start: int = 0                   # first cluster; 0 when it has none
    count: int = 0                   # clusters of its chain
    reserve: int = 0                 # free clusters kept after it
    entries: list[tuple[FatName, Item]] = field(default_factory=list)   # directories
    parent: Item | None = None
    is_dir: bool = False
    readonly: bool = False
    slots: int = 0                   # directory entries a directory needs


@dataclass(slots=True)
class FatPlan:
    geometry: Geometry
    settings: FatSettings
    root: Item
    items: list[Item]                # in cluster order
    map_item: Item | None
    image_size: int
    used: int                        # clusters in use

    @property
    def files(self) -> list[Item]:
        return [i for i in self.items if not i.is_dir]


def _dir_items(root: FsNode, settings: FatSettings,
               where: tuple[str, str]) -> tuple[Item, list[Item], list[Item], Item | None]:
    """Directories (pre-order) and files of the tree, with their names decided."""
    top = Item("", root, is_dir=True)
    dirs, files = [top], []
    map_item = None
    stack: list[tuple[FsNode, Item]] = [(root, top)]
    while stack:
        node, item = stack.pop()
        children: list[tuple[str, FsNode | None]] = [(c.name, c) for c in node.children]
        if settings.map_path is not None:
            parent, _, leaf = settings.map_path.rpartition("/")
            if parent == node.path:
                children.append((leaf, None))
                children.sort(key=lambda c: c[0].encode("utf-8", "surrogateescape"))
        seen: dict[str, str] = {}
        for name, child in children:
            path = f"{node.path}/{name}" if node.path else name
            problem = name_problem(name)
            if problem is not None:
                raise CapacityError(*where, f"{path!r}: the name {problem}")
            other = seen.get(fold(name))
            if other is not None:
                raise CapacityError(*where, f"{other!r} and {path!r} differ only in case; FAT "
                                    "names are case-insensitive")
            seen[fold(name)] = path
            if child is not None and child.kind not in ("dir", "file"):
                raise CapacityError(*where, f"{path!r} is a {child.kind}; FAT holds only "
                                    "files and directories")
        fits = [fits_short(name) for name, _ in children]
        shorts = ShortNames({f.short for f in fits if f is not None})  # "~N" names avoid them
        for (name, child), fit in zip(children, fits, strict=True):
            path = f"{node.path}/{name}" if node.path else name
            fname = fit if fit is not None else shorts.generate(name)
            if child is None:
                sub = Item(path, None, parent=item)
                map_item = sub
            else:
                sub = Item(path, child, child.size_bytes if child.kind == "file" else 0,
                           parent=item, is_dir=child.kind == "dir",
                           readonly=not child.mode & 0o222)
                if sub.is_dir:
                    dirs.append(sub)
                    stack.append((child, sub))
                else:
                    files.append(sub)
            item.entries.append((fname, sub))
        item.slots = sum(1 + -(-len(n.long) // 13) if n.long else 1 for n, _ in item.entries)
        item.slots += 2 if item is not top else (1 if settings.label is not None else 0)
    if settings.map_path is not None and map_item is None:
        raise CapacityError(*where, f"map = {settings.map_path!r}: no directory "
                            f"{settings.map_path.rpartition('/')[0]!r} in the image")
    dirs.sort(key=_preorder_key)
    return top, dirs, files, map_item


def _preorder_key(item: Item) -> list[bytes]:
    return [p.encode("utf-8", "surrogateescape") for p in item.path.split("/")] \
        if item.path else []


def plan_fat(root: FsNode, settings: FatSettings, where: tuple[str, str]) -> FatPlan:
    top, dirs, files, map_item = _dir_items(root, settings, where)
    by_path = {f.path: f for f in files}
    for path, _size in settings.reserve:
        if path not in by_path:
            raise CapacityError(*where, f"reserve.{path!r}: no such file in the image")
    if settings.contiguous:
        rank = {p: i for i, p in enumerate(settings.order)}
        files.sort(key=lambda f: (rank.get(f.path, len(rank)), _preorder_key(f)))
    else:
        files.sort(key=_preorder_key)
    geometry = _geometry(settings, dirs, files, map_item, where)
    g = geometry
    if settings.boot_code is not None:
        _check_boot_code(settings.boot_code, g.bits, where)
    fixed_root = g.bits != 32
    if fixed_root and top.slots > g.root_entries:
        raise CapacityError(*where, f"the root directory needs {top.slots} entries; a FAT{g.bits}"
                            f" root holds {g.root_entries}: move files into a subdirectory "
                            "or use fat = 32")
    reserve = dict(settings.reserve)
    cursor = 2
    order: list[Item] = []
    for d in dirs:
        if d is top and fixed_root:
            continue
        d.count = -(-d.slots * ENTRY // g.cluster_bytes) or 1
        d.size_bytes = d.count * g.cluster_bytes
        order.append(d)
    for f in files:
        f.count = -(-f.size_bytes // g.cluster_bytes)
        f.reserve = -(-reserve.get(f.path, 0) // g.cluster_bytes)
        order.append(f)
    if map_item is not None:
        order.append(map_item)
    for item in order:
        if item is map_item:
            item.size_bytes = len(_map_text(files, g, {}))
            item.count = -(-item.size_bytes // g.cluster_bytes)
        if item.count:
            item.start = cursor
        cursor += item.count + item.reserve
        if cursor - 2 > g.clusters:
            raise InternalError("FAT allocation passed the planned cluster count")
    used = sum(i.count for i in order)
    size = settings.size if settings.size is not None else g.total_sectors * g.sector_size
    return FatPlan(g, settings, top, order, map_item, size, used)


def _need(g: Geometry, dirs: list[Item], files: list[Item], map_item: Item | None,
          reserve: dict[str, int], free: int = 0) -> int:
    """Clusters the contents take, with ``free`` bytes of free clusters kept."""
    cb = g.cluster_bytes
    n = -(-free // cb)
    n += sum(-(-d.slots * ENTRY // cb) or 1 for d in dirs if d.path or g.bits == 32)
    n += sum(-(-f.size_bytes // cb) + -(-reserve.get(f.path, 0) // cb) for f in files)
    if map_item is not None:
        n += -(-len(_map_text(files, g, {}, estimate=True)) // cb)
    return n


def _fits(g: Geometry, dirs: list[Item], files: list[Item], map_item: Item | None,
          reserve: dict[str, int], free: int) -> bool:
    if g.bits != 32 and dirs[0].slots > g.root_entries:
        return False
    return _need(g, dirs, files, map_item, reserve, free) <= g.clusters


def _geometry(settings: FatSettings, dirs: list[Item], files: list[Item],
              map_item: Item | None, where: tuple[str, str]) -> Geometry:
    reserve = dict(settings.reserve)
    if settings.size is not None:
        try:
            g = choose(settings.size, settings.want)
        except NoGeometry as exc:
            raise CapacityError(*where, str(exc)) from None
        need = _need(g, dirs, files, map_item, reserve, settings.free)
        if need > g.clusters:
            kept = f" (free = {settings.free} bytes included)" if settings.free else ""
            fits = _geometry(replace(settings, size=None), dirs, files, map_item, where)
            mib = -(-fits.total_sectors * fits.sector_size // (1 << 20))
            raise CapacityError(*where, f"the contents need {need} clusters of "
                                f"{g.cluster_bytes} bytes{kept}; a FAT{g.bits} of "
                                f"{settings.size} bytes has {g.clusters}: size = \"{mib}MiB\" "
                                "or \"auto\" holds them")
        return g
    # "auto": the smallest size (in KiB steps) whose geometry holds everything.
    data = sum(f.size_bytes for f in files) + settings.free
    step = 1024

    def attempt(kib: int) -> Geometry | None:
        try:
            g = choose(kib * step, settings.want)
        except NoGeometry:
            return None
        return g if _fits(g, dirs, files, map_item, reserve, settings.free) else None

    high = max(64, data // step * 2 + 64)
    while attempt(high) is None:
        high *= 2
        if high > (16 << 40) // step:
            raise CapacityError(*where, "no FAT size holds these contents")
    low = 16
    while low < high:                  # smallest size that fits (fits is near-monotonic)
        mid = (low + high) // 2
        if attempt(mid) is None:
            low = mid + 1
        else:
            high = mid
    best = attempt(high)
    assert best is not None
    return best


def _map_text(files: list[Item], g: Geometry, digests: dict[str, str],
              estimate: bool = False) -> bytes:
    """One line per file: byte offset from the start of the filesystem, size, sha256, path."""
    lines = []
    for f in sorted(files, key=_preorder_key):
        offset = g.cluster_offset(f.start) if f.start else 0
        if estimate:
            offset = g.total_sectors * g.sector_size
        digest = digests.get(f.path, "0" * 64)
        lines.append(f"{offset} {f.size_bytes} {digest} /{f.path}\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


# -- writing ------------------------------------------------------------------------------------

def _check_boot_code(code: bytes, bits: int, where: tuple[str, str]) -> None:
    """A volume boot record whose jump lands in its code, past this FAT's BPB."""
    code_at = code_start(bits == 32)
    if len(code) != 512 or code[510:512] != SIGNATURE:
        raise CapacityError(*where, f"boot-code: {len(code)} bytes; a volume boot record is "
                            "512 bytes ending 55 aa")
    target = jump_target(code)
    if target is None or not code_at <= target < 510:
        lands = f"lands at byte {target}" if target is not None else "is not a jump"
        raise CapacityError(*where, f"boot-code: its first instruction {lands}; on this "
                            f"FAT{bits} the code starts at byte {code_at}, after the BPB",
                            hint="use a boot record made for this FAT width")


def boot_sector(plan: FatPlan) -> BootSector:
    g, s = plan.geometry, plan.settings
    fat32 = g.bits == 32
    return BootSector(
        s.oem, g.sector_size, g.sectors_per_cluster, g.reserved, g.fats, g.root_entries,
        g.total_sectors, g.media, g.fat_sectors, g.sectors_per_track, g.heads, s.hidden, fat32,
        0x80 if g.media == 0xF8 else 0, s.serial, s.label or NO_NAME,
        f"FAT{g.bits}".ljust(8).encode(), root_cluster=plan.root.start if fat32 else 0,
        fsinfo_sector=1 if fat32 else 0, backup_sector=6 if fat32 else 0,
        code=s.boot_code or b"")


def fsinfo(plan: FatPlan) -> FsInfo:
    last = max((i.start + i.count for i in plan.items if i.start), default=2)
    return FsInfo(plan.geometry.clusters - plan.used, last)


def runs(plan: FatPlan) -> list[tuple[int, int]]:
    return [(i.start, i.count) for i in plan.items if i.count]


def fat_chunks(g: Geometry, chains: list[tuple[int, int]]) -> Iterator[bytes | int]:
    """The bytes of one FAT (entries 0 .. clusters+1, then zeros to its sectors); an int is
    that many zero bytes (a hole when long)."""
    total = g.clusters + 2
    end_value = eoc(g.bits)
    first = (0x0FFFFF00 if g.bits == 32 else (1 << g.bits) - 256) | g.media
    if g.bits == 12:
        small = [0] * total
        small[0], small[1] = first, end_value
        for start, count in chains:
            for c in range(start, start + count - 1):
                small[c] = c + 1
            small[start + count - 1] = end_value
        data = pack_fat12(small)
        yield data
        yield bytes(g.fat_sectors * g.sector_size - len(data))
        return
    width = g.bits // 8
    at = 0
    pos = 0
    while pos < total:
        hi = min(total, pos + CHUNK)
        if (at >= len(chains) or chains[at][0] >= hi) and pos >= 2:
            yield (hi - pos) * width                   # a free stretch
            pos = hi
            continue
        values = array("I", bytes(4 * (hi - pos)))
        if pos == 0:
            values[0], values[1] = first, end_value
        while at < len(chains) and chains[at][0] < hi:
            start, count = chains[at]
            stop = start + count                       # first cluster after the run
            lo_c, hi_c = max(start, pos), min(stop, hi)
            if lo_c < hi_c:
                values[lo_c - pos:hi_c - pos] = array("I", range(lo_c + 1, hi_c + 1))
                if stop <= hi:
                    values[stop - 1 - pos] = end_value
            if stop > hi:
                break
            at += 1
        yield pack_entries(g.bits, values)
        pos = hi
    yield g.fat_sectors * g.sector_size - total * width


def _write_fat(out: Sink, g: Geometry, chains: list[tuple[int, int]]) -> None:
    start = out.pos
    for chunk in fat_chunks(g, chains):
        if isinstance(chunk, int):
            out.written_zeros(chunk)    # free FAT entries read as 0 wherever it is copied
        else:
            out.write(chunk)
    if out.pos != start + g.fat_sectors * g.sector_size:
        raise InternalError(f"FAT of {out.pos - start} bytes, planned "
                            f"{g.fat_sectors * g.sector_size}")


def directory_bytes(plan: FatPlan, item: Item) -> bytes:
    """Every entry of a directory, padded with zeros to its clusters (or fixed root)."""
    s = plan.settings
    date, clock, cs = fat_datetime(s.time)
    out = bytearray()
    if item is plan.root:
        if s.label is not None:
            out += DirEntry(s.label, ATTR_VOLUME, mtime=clock, mdate=date).pack()
    else:
        parent = item.parent
        up = 0 if parent is None or parent is plan.root else parent.start
        for name, cluster in ((b".          ", item.start), (b"..         ", up)):
            out += DirEntry(name, ATTR_DIR, 0, cs, clock, date, date, clock, date,
                            cluster).pack()
    for fname, child in item.entries:
        for lfn in (lfn_entries(fname.long, fname.short) if fname.long else ()):
            out += lfn
        attr = ATTR_DIR if child.is_dir else ATTR_ARCHIVE
        if child.readonly:
            attr |= ATTR_RO
        out += DirEntry(fname.short, attr, fname.case, cs, clock, date, date, clock, date,
                        child.start, 0 if child.is_dir else child.size_bytes).pack()
    room = item.count * plan.geometry.cluster_bytes if item.count else \
        plan.geometry.root_sectors * plan.geometry.sector_size
    if len(out) > room:
        raise InternalError(f"directory {item.path!r}: {len(out)} bytes, planned {room}")
    return bytes(out) + bytes(room - len(out))


def write_fat(plan: FatPlan, out: Sink, digest: Callable[[str, int], str]) -> None:
    """Stream the image. ``digest(source, size)`` gives a file's sha256 for the map."""
    g = plan.geometry
    boot = boot_sector(plan).pack()
    out.write(boot)
    if g.bits == 32:
        info = fsinfo(plan).pack(g.sector_size)
        out.write(info)
        out.zeros_or_hole(4 * g.sector_size)
        out.write(boot)
        out.write(info)
    out.zeros_or_hole(g.fat_start - out.pos)
    chains = runs(plan)
    for _ in range(g.fats):
        _write_fat(out, g, chains)
    if g.bits != 32:
        out.write(directory_bytes(plan, plan.root))
    if out.pos != g.data_start:
        raise InternalError(f"FAT data region at {out.pos}, planned {g.data_start}")
    for item in plan.items:
        if not item.count:
            continue
        out.zeros_or_hole(g.cluster_offset(item.start) - out.pos)
        room = item.count * g.cluster_bytes
        if item.is_dir:
            out.write(directory_bytes(plan, item))
            continue
        if item is plan.map_item:
            digests = {f.path: _digest_of(f, digest) for f in plan.files
                       if f is not plan.map_item}
            text = _map_text([f for f in plan.files if f is not plan.map_item], g, digests)
            if len(text) != item.size_bytes:
                raise InternalError("map file size changed between planning and writing")
            out.write(text)
        else:
            assert item.node is not None and item.node.source is not None
            out.copy(item.node.source, item.size_bytes, item.node.data_id, item.node.path)
        out.zeros_or_hole(room - item.size_bytes)
    out.zeros_or_hole(plan.image_size - out.pos)


def _digest_of(item: Item, digest: Callable[[str, int], str]) -> str:
    if not item.size_bytes or item.node is None or item.node.source is None:
        return hashlib.sha256(b"").hexdigest()
    return digest(item.node.source, item.size_bytes)

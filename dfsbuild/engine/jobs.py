"""Build steps from plans: which outputs are stale, and the Job (step.py) for each. No doit
here: ``dfsbuild build`` decides a no-op without importing it."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dfsbuild.engine.settings import Settings
from dfsbuild.engine.state import StateStore
from dfsbuild.errors import DfsbuildError, LayoutError
from dfsbuild.plan import DiskPlan, ImagePlan, LayoutPlan, companion

if TYPE_CHECKING:               # the writers are imported only when a job is made
    from dfsbuild.engine.step import Job


def outputs(lp: LayoutPlan) -> Iterator[ImagePlan | DiskPlan]:
    """Every output of a layout in build order (nested images first, the disk last)."""
    yield from lp.images.values()
    if lp.disk is not None:
        yield lp.disk


def split_target(arg: str) -> tuple[str, str | None]:
    """``LAYOUT:disk`` / ``LAYOUT:image.NAME`` -> (LAYOUT, target); else (arg, None)."""
    path, sep, target = arg.rpartition(":")
    if sep and path and (target == "disk" or target.startswith("image.")) and \
            not os.path.exists(arg):
        return path, target
    return arg, None


def selected(plans: list[LayoutPlan], wanted: list[tuple[str, str]]) -> set[str] | None:
    """The tasks of the ``(layout path, target)`` pairs and every output they are made of;
    None when no target was named (everything)."""
    if not wanted:
        return None
    tasks: set[str] = set()
    by_path = {os.path.abspath(lp.layout.path): lp for lp in plans}
    for path, target in wanted:
        lp = by_path[os.path.abspath(path)]
        names = [p.task.split(":", 1)[1] for p in outputs(lp)]
        if target not in names:
            raise DfsbuildError(f"{path}: no output {target!r}", hint="the layout has: " +
                                ", ".join(names))
        todo = [target]
        while todo:
            name = todo.pop()
            tasks.add(f"{lp.layout.name}:{name}")
            if name == "disk" and lp.disk is not None:
                todo += [f"image.{i}" for i in (*lp.disk.images, *lp.disk.reads)]
            elif name.startswith("image."):
                todo += [f"image.{i}" for i in lp.images[name[6:]].deps]
    return tasks


def stale(plans: list[LayoutPlan], settings: Settings,
          only: set[str] | None = None) -> list[ImagePlan | DiskPlan]:
    """Outputs that are not what their current key describes (all of them when forced);
    with ``only``, among those tasks."""
    state = settings.state
    return [p for lp in plans for p in outputs(lp) if only is None or p.task in only
            if settings.force or not state.is_current(p.task, p.key, p.output)
            or not all(os.path.isfile(c) for c in p.companions())]


def image_job(plan: ImagePlan, lp: LayoutPlan) -> Job:
    from dfsbuild.engine.datapatch import DataPatch, data_files
    from dfsbuild.engine.step import Job
    from dfsbuild.engine.write import write_image
    from dfsbuild.images import IMAGE_TYPES

    inner = [lp.images[name] for name in plan.deps]

    def write(fd: int) -> None:
        write_image(plan, fd)
    data = None
    data_from = IMAGE_TYPES[plan.spec.type].data_patch_from(plan.spec.options)
    root = plan.job.root
    if plan.placement is not None and data_from is not None and root is not None:
        data = DataPatch(plan.placement, data_from, lambda: data_files(root))
    kind = IMAGE_TYPES[plan.spec.type]
    after = (lambda state: kind.write_companions(
        plan.output, plan.spec.options, lambda name: lp.images[name].output)) \
        if kind.companions(plan.output) else None
    return Job(plan.task, plan.key, plan.output, plan.material, write, plan.inputs,
               tuple((p.task, p.key, p.output) for p in inner),
               planned_size=lambda: plan.size_bytes,
               rewrite=lambda fd, reuse: write_image(plan, fd, reuse), data=data, after=after)


def disk_job(plan: DiskPlan, lp: LayoutPlan) -> Job:
    """Disks are assembled from their images, never cached (the images are), and patched in
    place when only some images changed."""
    from dfsbuild.engine.step import Job
    from dfsbuild.engine.write import disk_frame, patch_disk, write_disk

    images = {name: lp.images[name] for name in plan.images}
    deps = [*images.values(), *(lp.images[name] for name in plan.reads)]
    return Job(plan.task, plan.key, plan.output, plan.material,
               lambda fd: write_disk(plan, images, fd), plan.inputs,
               tuple((p.task, p.key, p.output) for p in deps), cacheable=False,
               frame=lambda: disk_frame(plan, images),
               patch=lambda fd, old, state: patch_disk(plan, images, fd, old.frame,
                                                       state.changes),
               after=lambda state: _companions(plan, images, state))


def _companions(plan: DiskPlan, images: dict[str, ImagePlan], state: StateStore) -> None:
    """The disk's block map, sparse images, compressed copy and manifest, written from the
    disk now in place; one the layout no longer asks for is removed (it would describe other
    bytes)."""
    from dfsbuild.fileio.bmap import write_bmap
    from dfsbuild.fileio.simg import BLOCK, write_simg

    size = os.stat(plan.output).st_size
    if plan.simg is not None and size % BLOCK:
        raise LayoutError(plan.layout_file, "disk.sparse", f"the disk is {size} bytes, not a "
                          f"multiple of the sparse image's block size ({BLOCK} bytes)",
                          hint="give disk.size in MiB, or a multiple of 4KiB")
    spans: dict[str, tuple[int, int]] = {}
    wanted = plan.partition_simgs()
    if wanted:
        ss = plan.settled().sector_size
        for part in plan.settled().partitions:
            if part.name in wanted:
                span = (part.start_lba * ss, part.size_sectors * ss)
                if span[0] % BLOCK or span[1] % BLOCK:
                    raise LayoutError(plan.layout_file, f"{part.spec.where}.sparse",
                                      f"partition {part.name!r} is {span[1]} bytes at byte "
                                      f"{span[0]}; a sparse image needs both multiples of "
                                      f"{BLOCK}", hint="give the partition's size in MiB")
                spans[wanted[part.name]] = span
    if plan.bmap is not None:
        write_bmap(plan.output, plan.bmap)
    if plan.simg is not None:
        write_simg(plan.output, plan.simg, plan.sparse_crc)
    for path, span in spans.items():
        write_simg(plan.output, path, plan.sparse_crc, span)
    if plan.compressed is not None and plan.compression is not None:
        from dfsbuild.fileio.compress import compress_file

        compress_file(plan.output, plan.compressed, plan.compression)
    if plan.manifest is not None:
        from dfsbuild.engine.manifest import disk_manifest, write_manifest

        write_manifest(plan.manifest, disk_manifest(plan, images, state))
    keep = set(plan.companions())
    stem = companion(plan.output, "")
    for old in [plan.output + ".bmap", plan.output + ".xz", plan.output + ".zst",
                stem + ".json", *glob.glob(glob.escape(stem) + "*.simg")]:
        if old not in keep and _is_companion(old, stem) and os.path.lexists(old):
            os.unlink(old)


def _is_companion(path: str, stem: str) -> bool:
    """Whether ``path`` is a name dfsbuild gives a disk's companion (``STEM.simg``,
    ``STEM.NAME.simg``, ``OUTPUT.bmap``)."""
    rest = path[len(stem):]
    return rest in (".simg", ".img.bmap", ".bmap", ".img.xz", ".img.zst", ".xz", ".zst",
                    ".json") or (
        rest.startswith(".") and rest.endswith(".simg") and "/" not in rest)


def clean_layout(name: str, build_dir: str, settings: Settings) -> list[str]:
    """Remove a layout's outputs (its whole build subdirectory ``build_dir``: stale outputs of
    renamed images too) and their state, never the cache. Returns what was removed."""
    real = os.path.realpath(build_dir)
    if os.path.commonpath([os.path.realpath(settings.cache_dir), real]) == real:
        raise DfsbuildError(f"{build_dir}: holds the cache {settings.cache_dir}; not removed")
    settings.state.forget_layout(name)
    removed: list[str] = []
    if os.path.isdir(build_dir) and not os.path.islink(build_dir):
        with os.scandir(build_dir) as it:
            removed = sorted(e.path for e in it)
        import shutil

        shutil.rmtree(build_dir)
    elif os.path.lexists(build_dir):
        os.unlink(build_dir)
        removed = [build_dir]
    return removed

"""Layouts → build plans: outputs, dependencies, file trees and content keys of every image.

Host reads go through the scanner passed in (tree.py), so planning itself stays pure given the
tree manifests. A plan serialises to JSON for ``dfsbuild plan``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from dfsbuild.cache import content_key, key_material
from dfsbuild.clock import EPOCH_1980, build_time
from dfsbuild.diskplan import DiskLayout, plan_disk
from dfsbuild.errors import LayoutError
from dfsbuild.formats.romfs import plan_romfs
from dfsbuild.fstree import FsNode, TreeBuilder, manifest
from dfsbuild.layout.model import ImageSpec, Layout
from dfsbuild.tree import TreeEntry

Scanner = Callable[[str, tuple[str, ...]], list[TreeEntry]]
Describer = Callable[[str], TreeEntry]


@dataclass(slots=True)
class ImagePlan:
    layout: str                    # layout name
    layout_file: str
    spec: ImageSpec
    output: str                    # absolute path of the output file
    key: str
    deps: tuple[str, ...]          # nested image names
    root: FsNode | None = None     # filesystem images: the tree to write
    material: dict[str, object] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return f"{self.layout}:image.{self.spec.name}"

    def summary(self) -> dict[str, object]:
        files = sum(1 for n in self.root.walk() if n.kind == "file") if self.root else 0
        return {
            "name": self.spec.name,
            "type": self.spec.type,
            "output": self.output,
            "key": self.key,
            "contains": list(self.deps),
            "files": files,
            "options": self.spec.options(),
        }


@dataclass(slots=True)
class DiskPlan:
    layout: str
    layout_file: str
    table: str
    output: str
    image: str | None              # table = "none": the image that is the disk
    key: str
    material: dict[str, object] = field(default_factory=dict)
    disk: DiskLayout | None = None  # partitioned disks: every sector decided
    boot_code: str | None = None    # eMBR boot code file

    @property
    def images(self) -> list[str]:
        if self.image is not None:
            return [self.image]
        assert self.disk is not None
        return [p.image for p in self.disk.partitions if p.image is not None]

    @property
    def task(self) -> str:
        return f"{self.layout}:disk"


@dataclass(slots=True)
class LayoutPlan:
    layout: Layout
    build_dir: str
    images: dict[str, ImagePlan]   # in dependency order: nested images first
    disk: DiskPlan | None

    def outputs(self) -> dict[str, str]:
        return {name: p.output for name, p in self.images.items()}

    def to_json(self) -> dict[str, object]:
        disk: dict[str, object] | None = None
        if self.disk is not None:
            disk = {"table": self.disk.table, "output": self.disk.output,
                    "image": self.disk.image, "key": self.disk.key}
            if self.disk.disk is not None:
                disk.update(self.disk.disk.to_json())
        return {
            "layout": self.layout.path,
            "name": self.layout.name,
            "build_dir": self.build_dir,
            "images": [p.summary() for p in self.images.values()],
            "disk": disk,
        }


def dependency_order(layout: Layout) -> list[str]:
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        for inner in layout.images[name].nested():
            visit(inner)
        order.append(name)

    for name in layout.images:
        visit(name)
    return order


def plan_layout(layout: Layout, build_root: str, scan: Scanner, describe: Describer) -> LayoutPlan:
    build_dir = os.path.join(os.path.abspath(build_root), layout.name)
    images: dict[str, ImagePlan] = {}
    for name in dependency_order(layout):
        spec = layout.images[name]
        output = os.path.join(build_dir, spec.output)
        nested = {inner: images[inner].key for inner in spec.nested()}
        if spec.type == "raw":
            assert spec.file is not None
            entry = describe(spec.file)
            rows: list[list[object]] = [["", "file", 0, entry.digest]]
            material = key_material("raw", {"type": "raw"}, rows, {})
            images[name] = ImagePlan(layout.name, layout.path, spec, output,
                                     content_key(material), (), None, material)
            continue
        root = _assemble(layout, spec, scan, describe, images)
        material = key_material(spec.type, spec.options(), manifest(root), nested)
        images[name] = ImagePlan(layout.name, layout.path, spec, output, content_key(material),
                                 spec.nested(), root, material)
    disk = None
    if layout.disk is not None:
        disk = _plan_disk(layout, build_dir, images, describe)
    return LayoutPlan(layout, build_dir, images, disk)


def image_sizes(images: dict[str, ImagePlan], describe: Describer) -> dict[str, int]:
    """The size each output will have, decided without writing it (nested images first)."""
    sizes: dict[str, int] = {}
    for name, plan in images.items():
        spec = plan.spec
        if spec.type == "raw":
            assert spec.file is not None
            sizes[name] = describe(spec.file).size_bytes
            continue
        assert plan.root is not None
        for node in plan.root.walk():
            if node.image is not None:
                node.size_bytes = sizes[node.image]
        sizes[name] = plan_romfs(plan.root, spec.volume, spec.align_bytes,
                                 (plan.layout_file, spec.key)).image_size
    return sizes


def _plan_disk(layout: Layout, build_dir: str, images: dict[str, ImagePlan],
               describe: Describer) -> DiskPlan:
    d = layout.disk
    assert d is not None
    output = os.path.join(build_dir, d.output)
    if d.table == "none":
        assert d.image is not None
        material = key_material("disk-none", {"table": d.table}, [],
                                {d.image: images[d.image].key})
        return DiskPlan(layout.name, layout.path, d.table, output, d.image,
                        content_key(material), material)
    sizes = image_sizes(images, describe)
    code_bytes = 0
    rows: list[list[object]] = []
    if d.boot_code is not None:
        entry = describe(d.boot_code)
        code_bytes = entry.size_bytes
        rows.append(["boot-code", "file", 0, entry.digest])
    created = build_time() - EPOCH_1980 if d.table == "embr" else 0
    disk = plan_disk(d, layout.path, sizes, created, code_bytes)
    options = {**d.options(), "created": created}
    nested = {p.image: images[p.image].key for p in d.partitions if p.image is not None}
    material = key_material(f"disk-{d.table}", options, rows, nested)
    return DiskPlan(layout.name, layout.path, d.table, output, None, content_key(material),
                    material, disk, d.boot_code)


def _assemble(layout: Layout, spec: ImageSpec, scan: Scanner, describe: Describer,
              done: dict[str, ImagePlan]) -> FsNode:
    builder = TreeBuilder()
    if spec.tree is not None:
        builder.add_scan(scan(spec.tree, spec.exclude))
    try:
        for f in spec.files:
            leaf = f.dest.rsplit("/", 1)[-1]
            if f.image is not None:
                inner = done[f.image]
                mode = 0o644 if f.mode is None else f.mode
                builder.put(FsNode(leaf, f.dest, "file", mode, content=inner.key,
                                   image=f.image, source=inner.output))
                continue
            assert f.file is not None
            entry = describe(f.file)
            mode = entry.mode if f.mode is None else f.mode
            builder.put(FsNode(leaf, f.dest, "file", mode, entry.size_bytes, source=f.file,
                               content=entry.digest or ""))
        for d in spec.devices:
            builder.put(FsNode(d.dest.rsplit("/", 1)[-1], d.dest, d.kind, d.mode,
                               major=d.major, minor=d.minor))
    except ValueError as exc:
        raise LayoutError(layout.path, spec.key, str(exc)) from None
    return builder.finish()

"""Layouts → build plans: outputs, dependencies, file trees and content keys of every image.

Host reads go through the scanner passed in (tree.py), so planning itself stays pure given the
tree manifests. A plan serialises to JSON for ``dfsbuild plan``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from dfsbuild.cache import content_key, key_material
from dfsbuild.errors import LayoutError
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
    table: str
    output: str
    image: str
    key: str
    material: dict[str, object] = field(default_factory=dict)

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
        disk = None
        if self.disk is not None:
            disk = {"table": self.disk.table, "output": self.disk.output,
                    "image": self.disk.image, "key": self.disk.key}
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
        d = layout.disk
        assert d.image is not None
        inner = images[d.image]
        material = key_material("disk-none", {"table": d.table}, [], {d.image: inner.key})
        disk = DiskPlan(layout.name, d.table, os.path.join(build_dir, d.output), d.image,
                        content_key(material), material)
    return LayoutPlan(layout, build_dir, images, disk)


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

"""Rules across keys: references, cycles, collisions, inputs that exist."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dfsbuild.errors import LayoutError
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.tables import TABLE_KINDS
from dfsbuild.vocab.model import DeviceSpec, FileSpec, Layout


def _file(file: str, key: str, path: str) -> None:
    if not os.path.isfile(path):
        raise LayoutError(file, key, f"{path!r} is not a readable file")


def _nested_outputs(file: str, outputs: dict[str, str]) -> None:
    """No output inside another: ``x`` a file and ``x/y.img`` a path through it."""
    for path, key in sorted(outputs.items()):
        parent = os.path.dirname(path)
        while parent:
            if parent in outputs:
                where = "disk.output" if key == "disk" else f"{key}.output"
                raise LayoutError(file, where, f"{path!r} lies inside {parent!r}, the output "
                                  f"of {outputs[parent]}", hint="an output is a file, not a "
                                  "directory: give one of them another name")
            parent = os.path.dirname(parent)


def validate_layout(layout: Layout) -> None:
    file = layout.path
    images = layout.images
    outputs: dict[str, str] = {}
    for image in images.values():
        file = image.origin or layout.path
        if image.output in outputs:
            raise LayoutError(file, f"{image.where}.output",
                              f"{image.output!r} is also the output of {outputs[image.output]}")
        outputs[image.output] = image.where
        contents = image.contents
        if contents.tree is not None and not os.path.isdir(contents.tree):
            raise LayoutError(file, f"{image.where}.tree",
                              f"{contents.tree!r} is not a directory", hint="paths are relative "
                              "to the layout file")
        dests: dict[str, str] = {}
        specs: list[FileSpec | DeviceSpec] = [*contents.files, *contents.devices]
        for spec in specs:
            if spec.dest in dests:
                raise LayoutError(file, spec.where, f"{spec.dest!r} is also declared by "
                                  f"{dests[spec.dest]}")
            dests[spec.dest] = spec.where
        for f in contents.files:
            if f.image is not None and f.image not in images:
                raise LayoutError(file, f"{f.where}.image", f"no image named {f.image!r} in this "
                                  "layout", hint=_known(images))
            if f.file is not None:
                _file(file, f"{f.where}.file", f.file)
        for key, path in IMAGE_TYPES[image.type].host_files(image.options):
            _file(file, f"{image.where}.{key}", path)
        for key, name in image.uses:
            if name not in images:
                raise LayoutError(file, f"{image.where}.{key}", f"no image named {name!r} in "
                                  "this layout", hint=_known(images))
    file = layout.path
    _check_cycles(layout)
    disk = layout.disk
    if disk is None:
        _nested_outputs(file, outputs)
        return
    kind = TABLE_KINDS[disk.table]
    if disk.output in outputs:
        raise LayoutError(file, "disk.output",
                          f"{disk.output!r} is also the output of {outputs[disk.output]}")
    _nested_outputs(file, {**outputs, disk.output: "disk"})
    for path in kind.inputs(disk):
        _file(file, "disk.boot-code", path)
    used: dict[str, str] = {}
    parts = disk.partitions
    # Each image fills at most one region or partition.
    holders = [(r.where, r.image) for r in disk.regions] + \
        [(p.where, p.image) for p in parts if p.image is not None]
    for key, held in holders:
        if held not in images:
            raise LayoutError(file, f"{key}.image", f"no image named {held!r} in this "
                              "layout", hint=_known(images))
        if held in used:
            raise LayoutError(file, f"{key}.image", f"image {held!r} is also in "
                              f"{used[held]}")
        used[held] = key
    for p in parts:
        if p.rest and p is not parts[-1]:
            raise LayoutError(file, f"{p.where}.size", "\"rest\" is only for the last "
                              "partition")
    for name in kind.images(disk):
        if name not in images:
            raise LayoutError(file, "disk.image", f"no image named {name!r} in this layout",
                              hint=_known(images))


def _known(images: Mapping[str, object]) -> str:
    return "images defined: " + (", ".join(sorted(images)) or "(none)")


def _check_cycles(layout: Layout) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in layout.images:
        # Depth-first with an explicit stack: a chain of any length is checked.
        stack: list[tuple[str, list[str]]] = [(start, [])]
        while stack:
            name, path = stack.pop()
            if name == "":
                state[path[-1]] = 2
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                cycle = [*path[path.index(name):], name]
                raise LayoutError(layout.path, f"image.{name}",
                                  "images contain each other: " + " -> ".join(cycle))
            state[name] = 1
            stack.append(("", [*path, name]))
            for inner in reversed(layout.images[name].nested()):
                stack.append((inner, [*path, name]))

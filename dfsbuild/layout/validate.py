"""Rules across keys: references, cycles, collisions, inputs that exist."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dfsbuild.errors import LayoutError
from dfsbuild.layout.model import DeviceSpec, FileSpec, Layout


def validate_layout(layout: Layout) -> None:
    file = layout.path
    images = layout.images
    outputs: dict[str, str] = {}
    for image in images.values():
        if image.output in outputs:
            raise LayoutError(file, f"{image.key}.output",
                              f"{image.output!r} is also the output of {outputs[image.output]}")
        outputs[image.output] = image.key
        if image.tree is not None and not os.path.isdir(image.tree):
            raise LayoutError(file, f"{image.key}.tree",
                              f"{image.tree!r} is not a directory", hint="paths are relative "
                              "to the layout file")
        dests: dict[str, str] = {}
        specs: list[FileSpec | DeviceSpec] = [*image.files, *image.devices]
        for spec in specs:
            if spec.dest in dests:
                raise LayoutError(file, spec.key, f"{spec.dest!r} is also declared by "
                                  f"{dests[spec.dest]}")
            dests[spec.dest] = spec.key
        for f in image.files:
            if f.image is not None and f.image not in images:
                raise LayoutError(file, f"{f.key}.image", f"no image named {f.image!r} in this "
                                  "layout", hint=_known(images))
            if f.file is not None and not os.path.isfile(f.file):
                raise LayoutError(file, f"{f.key}.file", f"{f.file!r} is not a readable file")
        if image.file is not None and not os.path.isfile(image.file):
            raise LayoutError(file, f"{image.key}.file", f"{image.file!r} is not a readable file")
    _check_cycles(layout)
    disk = layout.disk
    if disk is not None:
        if disk.image is not None and disk.image not in images:
            raise LayoutError(file, "disk.image", f"no image named {disk.image!r} in this layout",
                              hint=_known(images))
        if disk.output in outputs:
            raise LayoutError(file, "disk.output",
                              f"{disk.output!r} is also the output of {outputs[disk.output]}")
        if disk.boot_code is not None and not os.path.isfile(disk.boot_code):
            raise LayoutError(file, "disk.boot-code", f"{disk.boot_code!r} is not a readable "
                              "file")
        used: dict[str, str] = {}
        parts = disk.partitions
        for p in parts:
            if p.image is not None:
                if p.image not in images:
                    raise LayoutError(file, f"{p.key}.image", f"no image named {p.image!r} in "
                                      "this layout", hint=_known(images))
                if p.image in used:
                    raise LayoutError(file, f"{p.key}.image", f"image {p.image!r} is also in "
                                      f"{used[p.image]}")
                used[p.image] = p.key
            if p.rest and p is not parts[-1]:
                raise LayoutError(file, f"{p.key}.size", "\"rest\" is only for the last "
                                  "partition")
        logical = [i for i, p in enumerate(parts) if p.logical]
        if logical and logical != list(range(logical[0], logical[-1] + 1)):
            raise LayoutError(file, f"{parts[logical[0]].key}.logical", "logical partitions "
                              "must be listed one after another (they share one extended "
                              "partition)")
        hybrid = [p for p in parts if p.hybrid]
        if len(hybrid) > 3:
            raise LayoutError(file, f"{hybrid[3].key}.hybrid", "a hybrid MBR holds at most "
                              "three partitions beside the 0xEE entry")


def _known(images: Mapping[str, object]) -> str:
    return "images defined: " + (", ".join(sorted(images)) or "none")


def _check_cycles(layout: Layout) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name):], name]
            raise LayoutError(layout.path, f"image.{name}",
                              "images contain each other: " + " -> ".join(cycle))
        state[name] = 1
        for inner in layout.images[name].nested():
            visit(inner, [*path, name])
        state[name] = 2

    for name in layout.images:
        visit(name, [])

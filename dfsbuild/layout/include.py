"""``include = ["common.toml"]``: image definitions and variables shared by several layouts
(the MBR and GPT variants of one board).

An included file holds only ``[image.NAME]`` tables and ``[vars]`` (and may include others);
its paths are relative to itself, and its errors name it. An image or a variable defined in
two files is an error naming both. The including layout's variables and ``--var`` apply to
every file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dfsbuild.errors import LayoutError
from dfsbuild.vocab.table import describe, key_join

ALLOWED = ("include", "image", "vars")
MAX_DEPTH = 16


@dataclass(slots=True)
class Included:
    """What the includes of one layout add: images with the file each comes from."""

    images: list[tuple[str, Any, str]] = field(default_factory=list)   # (name, table, file)
    vars: dict[str, object] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)                # "image.X" -> file
    read: set[str] = field(default_factory=set)        # files read (a diamond reads one once)


def gather(data: dict[str, Any], path: str,
           read: Callable[[str], dict[str, Any]]) -> Included:
    """Follow ``data``'s ``include`` (removed from it) and every include below, depth first,
    each file once; the layout's own images and vars are registered first."""
    out = Included()
    for kind in ("image", "vars"):
        own = data.get(kind)
        if isinstance(own, dict):
            for name in own:
                out.where[key_join(kind, name)] = path
    _follow(data.pop("include", None), path, read, out, [os.path.abspath(path)])
    return out


def _follow(raw: object, path: str, read: Callable[[str], dict[str, Any]], out: Included,
            stack: list[str]) -> None:
    if raw is None:
        return
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise LayoutError(path, "include", f"expected an array of file names, found "
                          f"{describe(raw)}")
    if len(stack) > MAX_DEPTH:
        raise LayoutError(path, "include", f"includes nested more than {MAX_DEPTH} deep")
    base = os.path.dirname(os.path.abspath(path))
    for i, name in enumerate(raw):
        target = os.path.normpath(os.path.join(base, name))
        if target in stack:
            raise LayoutError(path, f"include[{i}]", f"{name!r} includes itself (through "
                              + " -> ".join(os.path.basename(s) for s in stack) + ")")
        if target in out.read:          # reached again through another include: already read
            continue
        out.read.add(target)
        shown = os.path.relpath(target)
        if not os.path.exists(target):
            raise LayoutError(path, f"include[{i}]", f"{name!r}: no such file ({shown})",
                              hint="include paths are relative to the file that names them")
        data = read(shown)
        for key in data:
            if key not in ALLOWED:
                raise LayoutError(shown, key, "an included file holds only [image.NAME] "
                                  "tables, [vars] and include",
                                  hint="the disk and schema belong to the layout itself")
        for kind in ("image", "vars"):
            tables = data.get(kind, {})
            if not isinstance(tables, dict):
                raise LayoutError(shown, kind, f"expected a table, found {describe(tables)}")
            for key_name, value in tables.items():
                key = key_join(kind, key_name)
                if key in out.where:
                    raise LayoutError(shown, key, f"is also defined in {out.where[key]}")
                out.where[key] = shown
                if kind == "image":
                    out.images.append((key_name, value, shown))
                else:
                    out.vars[key_name] = value
        _follow(data.get("include"), shown, read, out, [*stack, target])

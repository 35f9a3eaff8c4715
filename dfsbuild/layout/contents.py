"""The content keys of filesystem images: ``tree``, ``exclude``, ``files`` and ``devices``.

Declared as Settings like any other key, so the README table, the schema and the "applies
only to" errors cover them; an image type says which of them it takes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dfsbuild.errors import LayoutError
from dfsbuild.trees.patterns import PatternError, check_pattern
from dfsbuild.vocab.model import DEVICE_KINDS, Contents, DeviceSpec, FileSpec
from dfsbuild.vocab.settings import Context, Setting, p_host_path, p_mode, p_size
from dfsbuild.vocab.table import Table, describe

MAX_NAME = 255         # no filesystem dfsbuild writes holds a longer name


def image_path(value: str) -> str:
    """A path inside an image: "/"-separated, relative, no empty, "." or ".." components."""
    parts = value.strip("/").split("/")
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL byte")
    if value.strip("/") == "" or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{value!r} is not a usable path inside an image "
                         "(no empty, '.' or '..' components)")
    for p in parts:
        if len(p.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise ValueError(f"a name in {value!r} is longer than {MAX_NAME} bytes")
    return "/".join(parts)


def _dest(table: Table, dest: str) -> str:
    try:
        return image_path(dest)
    except ValueError as exc:
        raise table.error(dest, str(exc)) from None


def p_patterns(value: object, ctx: Context) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected an array of patterns, found {describe(value)}")
    out = []
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str):
            raise LayoutError(ctx.file, f"{ctx.where}[{i}]", "expected a pattern string, found "
                              f"{describe(pattern)}")
        try:
            check_pattern(pattern)
        except PatternError as exc:
            raise LayoutError(ctx.file, f"{ctx.where}[{i}]", str(exc)) from None
        out.append(pattern)
    return tuple(out)


def p_files(value: object, ctx: Context) -> tuple[FileSpec, ...]:
    table = Table(value, ctx.file, ctx.where)
    specs = []
    for dest, entry in table.tables():
        path = _dest(table, dest)
        host = entry.parse("file", lambda v: p_host_path(v, ctx), None)
        image = entry.get("image", str)
        builtin = entry.parse("builtin", p_builtin, None)
        mode = entry.parse("mode", lambda v: p_mode(v, ctx), None)
        reserve = entry.parse("reserve", lambda v: p_size(v, ctx), None)
        entry.done()
        if sum(x is not None for x in (host, image, builtin)) != 1:
            raise entry.error("", "give exactly one of 'file' (a host file), 'image' (an "
                              "image of this layout) or 'builtin' (a tool dfsbuild ships: "
                              + ", ".join(sorted(builtins())) + ")")
        specs.append(FileSpec(path, entry.where, file=host or builtin, image=image, mode=mode,
                              reserve=reserve))
    return tuple(specs)


SHARE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "share")


def builtins() -> dict[str, str]:
    """The files dfsbuild ships for images (``builtin = NAME``), by name."""
    try:
        names = sorted(os.listdir(SHARE))
    except OSError:
        return {}
    return {n: os.path.join(SHARE, n) for n in names if not n.startswith((".", "_"))}


def p_builtin(value: object) -> str:
    if not isinstance(value, str) or value not in builtins():
        raise ValueError(f"{describe(value)} is not a file dfsbuild ships; one of: "
                         + ", ".join(sorted(builtins())))
    return builtins()[value]


def p_devices(value: object, ctx: Context) -> tuple[DeviceSpec, ...]:
    table = Table(value, ctx.file, ctx.where)
    specs = []
    for dest, entry in table.tables():
        path = _dest(table, dest)
        kind = entry.get("type", str, required=True)
        if kind not in DEVICE_KINDS:
            raise entry.error("type", f"{kind!r} is not a special file type",
                              hint="one of: " + ", ".join(DEVICE_KINDS))
        major = entry.get("major", int, 0)
        minor = entry.get("minor", int, 0)
        mode = entry.parse("mode", lambda v: p_mode(v, ctx), 0o600)
        entry.done()
        if kind in ("char", "block"):
            if not entry.has("major") or not entry.has("minor"):
                raise entry.error("", f"a {kind} device needs 'major' and 'minor'")
            for key, number in (("major", major), ("minor", minor)):
                if not 0 <= number <= 0xFFFF:
                    raise entry.error(key, f"{number} is outside 0..65535")
        elif entry.has("major") or entry.has("minor"):
            raise entry.error("", f"a {kind} has no device numbers")
        specs.append(DeviceSpec(path, entry.where, kind, major, minor, mode))
    return tuple(specs)


TREE = Setting("tree", p_host_path, None, "host directory copied into the image root (its "
               "mode is the root's); relative to the layout", kind="path", cached=False)
EXCLUDE = Setting("exclude", p_patterns, (), "glob patterns left out of the tree: a leading `/` "
                  "matches the path from the tree root, others the base name; `*`, `?`, "
                  "`[…]` match neither `/` nor a leading `.` (genromfs `-x` rules); excluded "
                  "directories are not descended", kind="array of strings")
FILES = Setting("files", p_files, (), "add one file: `files.\"PATH\" = { file = \"host/path\" }` "
                "(symlinks followed), `{ image = \"OTHER\" }` (another image of the layout, "
                "built first) or `{ builtin = \"trivialfs_read\" }` (a tool dfsbuild ships); "
                "`mode` (`\"0755\"`) defaults to the host file's, `0644` for images; "
                "`reserve = SIZE` (TrivialFS) keeps that much room for it; replaces a tree entry "
                "of the same path; parents are created `0755`", kind="table", cached=False)
DEVICES = Setting("devices", p_devices, (), "a special file: `devices.\"PATH\" = { type = "
                  "\"char\"|\"block\"|\"fifo\"|\"socket\", major, minor, mode }` (major/minor "
                  "0–65535, required for char and block; mode default `0600`)", kind="table",
                  cached=False)


def p_dirs(value: object, ctx: Context) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected an array of paths, found {describe(value)}")
    return tuple(image_path(v) for v in value)


DIRS = Setting("dirs", p_dirs, (), "empty directories to create (`[\"proc\", \"sys\", \"tmp\"]`, "
               "mode 0755): those git cannot keep", kind="array of strings")
CONTENT_SETTINGS = {"tree": TREE, "exclude": EXCLUDE, "files": FILES, "devices": DEVICES,
                    "dirs": DIRS}


def contents_from(values: Mapping[str, Any]) -> Contents:
    return Contents(values.get("tree"), values.get("exclude", ()), values.get("files", ()),
                    values.get("devices", ()), values.get("dirs", ()))

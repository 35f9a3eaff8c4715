"""TOML layout files → the frozen model; errors name the file, key, value and rule.

The keys of each image type and table kind come from their Setting tables (images/,
tables/); a key that belongs to another type is reported as such.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from dfsbuild.errors import LayoutError, LayoutErrors
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.images.base import ImageType
from dfsbuild.layout.contents import CONTENT_SETTINGS, contents_from
from dfsbuild.layout.include import gather
from dfsbuild.layout.validate import validate_layout
from dfsbuild.layout.variables import Budget, layout_vars, substitute
from dfsbuild.layout.warnings import layout_warnings
from dfsbuild.tables import TABLE_KINDS
from dfsbuild.tables.base import TableKind
from dfsbuild.tables.place import PARTITION_SETTINGS, REGION_SETTINGS
from dfsbuild.vocab.model import DiskSpec, ImageSpec, Layout, PartitionSpec, RegionSpec
from dfsbuild.vocab.settings import Context, Setting, p_output, read_settings
from dfsbuild.vocab.table import Table, key_join

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SCHEMA = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def image_common(name: str) -> tuple[Setting, ...]:
    return (Setting("output", p_output, f"{name}.img", "file name under `build/LAYOUT/`; "
                    "default `NAME.img`", cached=False),
            *(s for t in IMAGE_TYPES.values() for s in t.settings_of_every_image()))


def disk_common(layout_name: str) -> tuple[Setting, ...]:
    return (Setting("output", p_output, f"{layout_name}.img", "file name of the disk under "
                    "`build/LAYOUT/`; default `LAYOUT.img`", cached=False),)


def load_layouts(paths: Iterable[str], overrides: Mapping[str, str] | None = None
                 ) -> list[Layout]:
    """Every layout; the errors of all of them at once (LayoutErrors) when any has one."""
    layouts, found = load_some(paths, overrides)
    LayoutErrors.raise_if(found)
    return layouts


def load_some(paths: Iterable[str], overrides: Mapping[str, str] | None = None
              ) -> tuple[list[Layout], list[LayoutError]]:
    """The layouts that load, and the errors of those that do not (``--keep-going``)."""
    layouts = []
    found: list[LayoutError] = []
    for p in paths:
        try:
            layouts.append(load_layout(p, overrides))
        except LayoutError as exc:
            found.append(exc)
        except LayoutErrors as exc:
            found.extend(exc.errors)
    seen: dict[str, str] = {}
    kept = []
    for layout in layouts:
        if layout.name in seen:
            found.append(LayoutError(
                layout.path, "",
                f"layout name {layout.name!r} is also the name of {seen[layout.name]}",
                hint="layouts built together need distinct file names",
            ))
            continue
        seen[layout.name] = layout.path
        kept.append(layout)
    return kept, found


def _read_toml(path: str) -> tuple[dict[str, Any], str]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LayoutError(path, "", "no such layout file") from None
    except OSError as exc:
        raise LayoutError(path, "", f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LayoutError(path, "", "not a regular file")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        data: dict[str, Any] = tomllib.loads(text)
        return data, text
    except OSError as exc:
        raise LayoutError(path, "", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError(path, "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LayoutError(path, "", f"not valid UTF-8: {exc.reason}") from None
    except RecursionError:
        raise LayoutError(path, "", "nested too deeply to be a layout") from None


def load_layout(path: str, overrides: Mapping[str, str] | None = None) -> Layout:
    """Read, parse and validate one layout file; ``overrides`` set its variables."""
    data, text = _read_toml(path)
    included = gather(data, path, lambda p: _read_toml(p)[0])
    if included.vars:
        own = data.setdefault("vars", {})
        if isinstance(own, dict):
            own.update(included.vars)
    values = layout_vars(data, path, overrides or {})
    budget = Budget()                  # one for the layout and every file it includes
    data = substitute(data, values, path, budget=budget)
    name = os.path.splitext(os.path.basename(path))[0]
    if not NAME.fullmatch(name):
        raise LayoutError(path, "", f"the file name gives the layout name {name!r}, which is "
                          "not a valid name (letters, digits, '_', '.', '-')")
    base = os.path.dirname(os.path.abspath(path))
    top = Table(data, path, "")
    schema = top.get("schema", int, required=True)
    if schema != SCHEMA:
        raise top.error("schema", f"schema {schema} is not supported; this dfsbuild reads "
                        f"schema {SCHEMA}")
    found: list[LayoutError] = []
    try:
        top.refuse_unknown(("schema", "image", "disk", "include"))
    except LayoutError as exc:
        found.append(exc)
    images: dict[str, ImageSpec] = {}
    asked: list[tuple[str, Table]] = []             # images that may ask for derived ones
    image_table = top.sub("image")
    own = [(n, sub, path) for n, sub in image_table.tables()] if image_table else []
    for image_name, sub, origin in [*own, *included.images]:
        try:
            if not isinstance(sub, Table):      # an included file's table: substituted here
                sub = Table(substitute(sub, values, origin, f"image.{image_name}", budget),
                            origin, key_join("image", image_name))
            if not NAME.fullmatch(image_name):
                raise sub.error("", f"{image_name!r} is not a valid image name (letters, "
                                "digits, '_', '.', '-'; starting with a letter or digit)")
            spec = _load_image(sub, Context(origin, os.path.dirname(os.path.abspath(origin)),
                                            image_name))
            images[image_name] = spec if origin == path else replace(spec, origin=origin)
            asked.append((image_name, sub))
        except LayoutError as exc:
            found.append(exc)
    for image_name, sub in asked:
        try:
            for spec in _derived(image_name, sub, images):
                images[spec.name] = spec
        except LayoutError as exc:
            found.append(exc)
    disk = None
    disk_table = top.sub("disk")
    if disk_table is not None:
        try:
            disk = _load_disk(disk_table, Context(path, base, name), found)
        except LayoutError as exc:
            found.append(exc)
    if not found:
        top.done()
    LayoutErrors.raise_if(found)
    layout = Layout(path=path, name=name, schema=schema, images=images, disk=disk)
    validate_layout(layout)
    return replace(layout, warnings=tuple(layout_warnings(layout, text)))


def _owners(kinds: Mapping[str, Sequence[Setting]], word: str, this: str) -> dict[str, str]:
    """For every key of another kind: where it applies, for the "applies to" error."""
    owners: dict[str, list[str]] = {}
    for kind, settings in kinds.items():
        for s in settings:
            owners.setdefault(s.name, []).append(kind)
    return {key: " or ".join(f'{word} = "{k}"' for k in ks) + f', not "{this}"'
            for key, ks in owners.items() if this not in ks}


def image_settings(t: ImageType) -> tuple[Setting, ...]:
    """Every key an image of type ``t`` takes, beyond ``type`` and ``output``."""
    return (*t.settings, *(CONTENT_SETTINGS[k] for k in sorted(t.contents)))


def _derived(name: str, table: Table, images: Mapping[str, ImageSpec]) -> list[ImageSpec]:
    """The images the settings every image takes ask for (``verity = true``: its hash
    tree), each a name the layout does not use yet, or the image's own (it is replaced)."""
    ctx = Context(table.file, os.path.dirname(os.path.abspath(table.file)), name)
    given = read_settings(table, image_common(name), ctx)
    out = []
    where = images[name].where
    for t in IMAGE_TYPES.values():
        specs = t.derived(images[name], given, ctx)
        # the setting that asked: "image.NAME.KEY" is where the new image is declared
        key = next((s.where[len(where) + 1:] for s in specs if s.where != where), "")
        for spec in specs:
            if spec.name in images and spec.name != name:
                raise table.error(key, f"the layout already has an image named {spec.name!r}",
                                  hint=f"rename it, or declare [image.{spec.name}] yourself "
                                  "instead")
            out.append(spec)
    return out


def _load_image(table: Table, ctx: Context) -> ImageSpec:
    table.refuse_unknown([*(s.name for s in image_common("")), "type",
                          *(s.name for t in IMAGE_TYPES.values()
                                               for s in image_settings(t))])
    kind = table.get("type", str, required=True)
    t = IMAGE_TYPES.get(kind)
    if t is None:
        raise table.error("type", f"{kind!r} is not an image type",
                          hint="one of: " + ", ".join(IMAGE_TYPES))
    output, *_verity = read_settings(table, image_common(ctx.name), ctx).values()
    options = t.load(table, ctx)
    contents = contents_from(read_settings(
        table, [CONTENT_SETTINGS[k] for k in sorted(t.contents)], ctx))
    table.done(_owners({k: image_settings(v) for k, v in IMAGE_TYPES.items()}, "type", kind))
    for f in contents.files:
        if f.reserve is not None and not t.file_reserve:
            takers = " or ".join(f'type = "{k}"' for k, v in IMAGE_TYPES.items()
                                 if v.file_reserve)
            raise LayoutError(ctx.file, f"{f.where}.reserve", f"applies to {takers}, not "
                              f"\"{kind}\"")
    return ImageSpec(ctx.name, kind, table.where, output, options, contents,
                     uses=t.uses(options))


def _load_disk(table: Table, ctx: Context, found: list[LayoutError]) -> DiskSpec:
    table.refuse_unknown(["table", "output", "partition", "region", "image",
                          *(s.name for k in TABLE_KINDS.values() for s in k.disk_settings)])
    name = table.get("table", str, required=True)
    kind = TABLE_KINDS.get(name)
    if kind is None:
        raise table.error("table", f"{name!r} is not a partition table kind",
                          hint="one of: " + ", ".join(TABLE_KINDS))
    (output,) = read_settings(table, disk_common(ctx.name), ctx).values()
    options = kind.load_disk(table, ctx)
    pctx = Context(ctx.file, ctx.base, ctx.name, kind.sector_size(options))
    parts = _load_partitions(table, kind, name, pctx, found)
    regions = _load_regions(table, kind, name, pctx, parts)
    table.done(_owners({k: v.disk_settings for k, v in TABLE_KINDS.items()}, "table", name))
    spec = DiskSpec(name, output, options, parts, regions)
    if not found:
        kind.check(spec, ctx.file)
    return spec


def _load_partitions(disk: Table, kind: TableKind, name: str, ctx: Context,
                     found: list[LayoutError]) -> tuple[PartitionSpec, ...]:
    if not disk.has("partition"):
        return ()
    raw = disk.raw("partition")
    if kind.partition_options is None:
        raise disk.error("partition", f"a disk with table = \"{name}\" has no partitions")
    if not isinstance(raw, list):
        raise disk.error("partition", "expected an array of tables: [[disk.partition]]")
    parts = []
    names: dict[str, str] = {}
    others = {k: v.partition_settings for k, v in TABLE_KINDS.items()}
    every = ["name", "image", "start", "size", "sparse",
             *(s.name for k in TABLE_KINDS.values() for s in k.partition_settings)]
    for i, item in enumerate(raw):
        try:
            t = Table(item, disk.file, f"disk.partition[{i}]")
            given = t.data.get("name")
            t.note = f" ({given})" if isinstance(given, str) and given else ""
            t.refuse_unknown(every)
            common = read_settings(t, PARTITION_SETTINGS, ctx)
            pname: str = common["name"]
            if not pname:
                raise t.error("name", "a partition needs a non-empty name")
            if pname in names:
                raise t.error("name", f"{pname!r} is also the name of {names[pname]}")
            names[pname] = f"disk.partition[{i}]"
            size = common["size"]
            if common["image"] is None and size is None:
                raise t.error("size", "is required for a partition without an image")
            if common["sparse"] and not NAME.fullmatch(pname):
                raise t.error("sparse", f"the sparse image is named after the partition; "
                              f"{pname!r} is not a plain file name (letters, digits, '.', "
                              "'_', '-')")
            options = kind.load_partition(t, ctx, pname)
            t.done(_owners(others, "table", name))
        except LayoutError as exc:
            found.append(exc)
            continue
        rest = size == "rest"
        parts.append(PartitionSpec(i, f"disk.partition[{i}]", pname, common["image"],
                                   common["start"], None if rest else size, rest, options,
                                   common["sparse"]))
    return tuple(parts)


def _load_regions(disk: Table, kind: TableKind, name: str, ctx: Context,
                  parts: tuple[PartitionSpec, ...]) -> tuple[RegionSpec, ...]:
    if not disk.has("region"):
        return ()
    raw = disk.raw("region")
    if kind.partition_options is None:
        raise disk.error("region", f"a disk with table = \"{name}\" is its one image; "
                         "regions go on partitioned disks")
    if not isinstance(raw, list):
        raise disk.error("region", "expected an array of tables: [[disk.region]]")
    names = {p.name: p.where for p in parts}
    regions = []
    for i, item in enumerate(raw):
        t = Table(item, disk.file, f"disk.region[{i}]")
        values = read_settings(t, REGION_SETTINGS, ctx)
        rname: str = values["name"]
        if not rname:
            raise t.error("name", "a region needs a non-empty name")
        if rname in names:
            raise t.error("name", f"{rname!r} is also the name of {names[rname]}")
        names[rname] = t.where
        t.done()
        regions.append(RegionSpec(i, t.where, rname, values["image"], values["start"],
                                  values["size"]))
    return tuple(regions)


__all__ = ["SCHEMA", "load_layout", "load_layouts"]

"""TOML layout files → the frozen model; errors name the file, key, value and rule."""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterable

from dfsbuild.errors import LayoutError
from dfsbuild.formats import gpt, parttypes
from dfsbuild.layout.model import (
    DEVICE_KINDS,
    IMAGE_TYPES,
    TABLE_KINDS,
    DeviceSpec,
    DiskSpec,
    FileSpec,
    ImageSpec,
    Layout,
    PartitionSpec,
)
from dfsbuild.layout.table import Table, describe, key_join
from dfsbuild.layout.validate import validate_layout
from dfsbuild.patterns import PatternError, check_pattern
from dfsbuild.units import SizeError, is_power_of_two, parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SCHEMA = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_ROMFS_NAME = 127


def load_layouts(paths: Iterable[str]) -> list[Layout]:
    layouts = [load_layout(p) for p in paths]
    seen: dict[str, str] = {}
    for layout in layouts:
        if layout.name in seen:
            raise LayoutError(
                layout.path, "",
                f"layout name {layout.name!r} is also the name of {seen[layout.name]}",
                hint="layouts built together need distinct file names",
            )
        seen[layout.name] = layout.path
    return layouts


def load_layout(path: str) -> Layout:
    """Read, parse and validate one layout file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LayoutError(path, "", "no such layout file") from None
    except OSError as exc:
        raise LayoutError(path, "", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError(path, "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LayoutError(path, "", f"not valid UTF-8: {exc.reason}") from None
    name = os.path.splitext(os.path.basename(path))[0]
    if not NAME.match(name):
        raise LayoutError(path, "", f"the file name gives the layout name {name!r}, which is "
                          "not a valid name (letters, digits, '_', '.', '-')")
    base = os.path.dirname(os.path.abspath(path))
    top = Table(data, path, "")
    schema = top.get("schema", int, required=True)
    if schema != SCHEMA:
        raise top.error("schema", f"schema {schema} is not supported; this dfsbuild reads "
                        f"schema {SCHEMA}")
    images: dict[str, ImageSpec] = {}
    image_table = top.sub("image")
    if image_table is not None:
        for image_name, sub in image_table.tables():
            if not NAME.match(image_name):
                raise sub.error("", f"{image_name!r} is not a valid image name "
                                "(letters, digits, '_', '.', '-'; starting with a letter or digit)")
            images[image_name] = _load_image(sub, image_name, base)
        image_table.done()
    disk = None
    disk_table = top.sub("disk")
    if disk_table is not None:
        disk = _load_disk(disk_table, name)
    top.done()
    layout = Layout(path=path, name=name, schema=schema, images=images, disk=disk)
    validate_layout(layout)
    return layout


def _host_path(table: Table, name: str, base: str) -> str | None:
    value = table.get(name, str)
    if value is None:
        return None
    if not value:
        raise table.error(name, "an empty path names nothing")
    return os.path.normpath(os.path.join(base, value))


def _image_path(value: str, table: Table, name: str) -> str:
    """A path inside an image: "/"-separated, relative, no "." or ".." components."""
    parts = value.strip("/").split("/")
    if value.strip("/") == "" or any(p in ("", ".", "..") for p in parts):
        raise table.error(name, f"{value!r} is not a usable path inside an image "
                          "(no empty, '.' or '..' components)")
    if "\0" in value:
        raise table.error(name, "a path cannot contain a NUL byte")
    if any(len(p.encode()) > MAX_ROMFS_NAME for p in parts):
        raise table.error(name, f"a name in {value!r} is longer than {MAX_ROMFS_NAME} bytes")
    return "/".join(parts)


def parse_mode(value: object) -> int:
    """``"0755"``, ``"755"`` or an integer such as TOML's ``0o755``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a mode such as \"0755\", found {describe(value)}")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{1,4}", value):
        mode = int(value, 8)
    else:
        raise ValueError(f"expected an octal mode such as \"0755\", found {describe(value)}")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode 0o{mode:o} is outside 0000..7777")
    return mode


def _load_files(table: Table | None, base: str) -> tuple[FileSpec, ...]:
    if table is None:
        return ()
    specs = []
    for dest, entry in table.tables():
        path = _image_path(dest, table, dest)
        host = _host_path(entry, "file", base)
        image = entry.get("image", str)
        mode = entry.parse("mode", parse_mode, None)
        entry.done()
        if (host is None) == (image is None):
            raise entry.error("", "give exactly one of 'file' (a host file) or 'image' "
                              "(an image of this layout)")
        specs.append(FileSpec(path, entry.key, file=host, image=image, mode=mode))
    return tuple(specs)


def _load_devices(table: Table | None) -> tuple[DeviceSpec, ...]:
    if table is None:
        return ()
    specs = []
    for dest, entry in table.tables():
        path = _image_path(dest, table, dest)
        kind = entry.get("type", str, required=True)
        if kind not in DEVICE_KINDS:
            raise entry.error("type", f"{kind!r} is not a special file type",
                              hint="one of: " + ", ".join(DEVICE_KINDS))
        major = entry.get("major", int, 0)
        minor = entry.get("minor", int, 0)
        mode = entry.parse("mode", parse_mode, 0o600)
        entry.done()
        if kind in ("char", "block"):
            if not entry.has("major") or not entry.has("minor"):
                raise entry.error("", f"a {kind} device needs 'major' and 'minor'")
            for key, value in (("major", major), ("minor", minor)):
                if not 0 <= value <= 0xFFFF:
                    raise entry.error(key, f"{value} is outside 0..65535 (romfs stores "
                                      "major and minor in 16 bits each)")
        elif entry.has("major") or entry.has("minor"):
            raise entry.error("", f"a {kind} has no device numbers")
        specs.append(DeviceSpec(path, entry.key, kind, major, minor, mode))
    return tuple(specs)


def _parse_align(value: object) -> int:
    try:
        size = parse_size(value)
    except SizeError as exc:
        raise ValueError(str(exc)) from None
    if size < 16 or not is_power_of_two(size):
        raise ValueError(f"{value!r}: the alignment must be a power of two of at least 16 bytes")
    return size


def _load_image(table: Table, name: str, base: str) -> ImageSpec:
    kind = table.get("type", str, required=True)
    if kind not in IMAGE_TYPES:
        raise table.error("type", f"{kind!r} is not an image type",
                          hint="one of: " + ", ".join(IMAGE_TYPES))
    output = table.parse("output", _output_path, f"{name}.img")
    if kind == "raw":
        host = _host_path(table, "file", base)
        if host is None:
            raise table.error("file", "is required for a raw image")
        table.done()
        return ImageSpec(name, kind, table.key, output, file=host)
    volume = table.get("volume", str, name)
    if len(volume.encode()) > MAX_ROMFS_NAME:
        raise table.error("volume", f"{len(volume.encode())} bytes; a romfs volume name holds "
                          f"at most {MAX_ROMFS_NAME}")
    if "\0" in volume:
        raise table.error("volume", "a volume name cannot contain a NUL byte")
    align = table.parse("align", _parse_align, 16)
    tree = _host_path(table, "tree", base)
    exclude_raw = table.get("exclude", list, [])
    exclude = []
    for i, pattern in enumerate(exclude_raw):
        key = f"exclude[{i}]"
        if not isinstance(pattern, str):
            raise table.error(key, f"expected a pattern string, found {describe(pattern)}")
        try:
            check_pattern(pattern)
        except PatternError as exc:
            raise table.error(key, str(exc)) from None
        exclude.append(pattern)
    files = _load_files(table.sub("files"), base)
    devices = _load_devices(table.sub("devices"))
    table.done()
    return ImageSpec(
        name, kind, table.key, output, volume=volume, align_bytes=align, tree=tree,
        exclude=tuple(exclude), files=files, devices=devices,
    )


def _output_path(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a file name, found {describe(value)}")
    norm = os.path.normpath(value)
    if os.path.isabs(value) or norm.startswith(".."):
        raise ValueError(f"{value!r} must stay inside the build directory")
    return norm


def _size(sector_size: int | None = None) -> Callable[[object], int]:
    def parse(value: object) -> int:
        try:
            return parse_size(value, sector_size=sector_size)
        except SizeError as exc:
            raise ValueError(str(exc)) from None
    return parse


def _bool(table: Table, name: str, default: bool) -> bool:
    return table.get(name, bool, default)


def _load_disk(table: Table, layout_name: str) -> DiskSpec:
    kind = table.get("table", str, required=True)
    if kind not in TABLE_KINDS:
        raise table.error("table", f"{kind!r} is not a partition table kind",
                          hint="one of: " + ", ".join(TABLE_KINDS))
    output = table.parse("output", _output_path, f"{layout_name}.img")
    image = table.get("image", str)
    sector_size = table.get("sector-size", int, 512)
    if sector_size not in (512, 4096):
        raise table.error("sector-size", f"{sector_size} is not 512 or 4096")
    size_raw = table.raw("size")
    size = None
    if size_raw is not None and size_raw != "auto":
        size = table.parse("size", _size(sector_size), 0)
        if size % sector_size:
            raise table.error("size", f"{size} bytes is not a whole number of "
                              f"{sector_size}-byte sectors")
    align = table.parse("align", _size(sector_size), 1 << 20)
    if align == 0 or align % sector_size:
        raise table.error("align", f"{align} bytes is not a whole, non-zero number of "
                          f"{sector_size}-byte sectors")
    seed = table.get("seed", str, layout_name)
    disk_id = table.parse("disk-id", _disk_id, None)
    guid = table.parse("guid", _guid, None)
    lba48 = _bool(table, "lba48", False)
    boot_code = table.get("boot-code", str)
    boot_delay = table.get("boot-delay", int, 10)
    legacy_boot = _bool(table, "legacy-boot", True)
    spare = table.get("spare-entries", int, 4)
    parts = _load_partitions(table, kind, sector_size)
    if kind == "none":
        if image is None:
            raise table.error("image", "is required when table = \"none\" (the disk is one "
                              "image)")
        if parts:
            raise table.error("partition", "a disk with table = \"none\" has no partitions")
    elif image is not None:
        raise table.error("image", f"only for table = \"none\"; a {kind} disk lists "
                          "[[disk.partition]] entries")
    per_table = {"disk-id": "mbr", "lba48": "mbr", "guid": "gpt", "boot-code": "embr",
                 "boot-delay": "embr", "legacy-boot": "embr", "spare-entries": "embr"}
    for key, owner in per_table.items():
        if table.has(key) and kind != owner:
            raise table.error(key, f"applies to table = \"{owner}\", not {kind!r}")
    if not 0 <= boot_delay <= 255:
        raise table.error("boot-delay", f"{boot_delay} is outside 0..255 seconds")
    if not 0 <= spare <= 0xFFFF - len(parts):
        raise table.error("spare-entries", f"{spare} is out of range")
    if boot_code is not None:
        boot_code = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(
            table.file)), boot_code))
    table.done()
    return DiskSpec(kind, output, image, size, sector_size, align, seed, disk_id, guid, lba48,
                    boot_code, boot_delay, legacy_boot, spare, parts)


def _disk_id(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a 32-bit disk signature such as \"0x12345678\"")
    if isinstance(value, str) and re.fullmatch(r"0x[0-9A-Fa-f]{1,8}", value):
        return int(value, 16)
    if isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:
        return value
    raise ValueError(f"{describe(value)} is not a 32-bit disk signature such as "
                     "\"0x12345678\"")


def _guid(value: object) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value)).upper()
        except ValueError:
            pass
    raise ValueError(f"{describe(value)} is not a GUID such as "
                     "\"11111111-2222-3333-4444-555555555555\"")


def _load_partitions(disk: Table, kind: str, sector_size: int) -> tuple[PartitionSpec, ...]:
    raw = disk.raw("partition")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise disk.error("partition", "expected an array of tables: [[disk.partition]]")
    parts = []
    names: dict[str, str] = {}
    for i, item in enumerate(raw):
        t = Table(item, disk.file, f"disk.partition[{i}]")
        name = t.get("name", str, required=True)
        if not name:
            raise t.error("name", "a partition needs a non-empty name")
        if name in names:
            raise t.error("name", f"{name!r} is also the name of {names[name]}")
        names[name] = t.key
        image = t.get("image", str)
        start = t.parse("start", _size(sector_size), None)
        size_raw = t.raw("size")
        rest = size_raw == "rest"
        size = None if rest or size_raw is None else t.parse("size", _size(sector_size), 0)
        for key, value in (("start", start), ("size", size)):
            if value is not None and value % sector_size:
                raise t.error(key, f"{value} bytes is not a whole number of {sector_size}-byte "
                              "sectors")
        if size == 0:
            raise t.error("size", "a partition cannot be empty")
        if image is None and size is None and not rest:
            raise t.error("size", "is required for a partition without an image")
        bootable = _bool(t, "bootable", False)
        logical = _bool(t, "logical", False)
        hidden = _bool(t, "hidden", False)
        hybrid = _bool(t, "hybrid", False)
        ptype = t.raw("type")
        uuid_value = t.parse("uuid", _guid, None)
        attributes = t.raw("attributes")
        os_signature = t.get("os-signature", int, 0)
        mbr_type_raw = t.raw("mbr-type")
        resolved: int | str | None = None
        try:
            if kind == "mbr":
                resolved = parttypes.mbr_type("linux" if ptype is None else ptype)
                if resolved in parttypes.EXTENDED_TYPES:
                    raise ValueError("extended partitions are made by logical = true")
            elif kind == "gpt":
                resolved = parttypes.gpt_type("linux" if ptype is None else ptype)
            elif ptype is not None:
                raise ValueError("eMBR entries have no type field; use os-signature")
        except ValueError as exc:
            raise t.error("type", str(exc),
                          hint=f"a type must be known for a {kind} table") from None
        only = {"logical": "mbr", "uuid": "gpt", "attributes": "gpt", "hybrid": "gpt",
                "mbr-type": "gpt", "hidden": "embr", "os-signature": "embr"}
        for key, owner in only.items():
            if t.has(key) and kind != owner:
                raise t.error(key, f"applies to table = \"{owner}\", not {kind!r}")
        attr_bits = 0
        if attributes is not None:
            try:
                attr_bits = parttypes.gpt_attribute_bits(attributes)
            except ValueError as exc:
                raise t.error("attributes", str(exc)) from None
        if kind == "gpt" and bootable:
            attr_bits |= 1 << parttypes.GPT_ATTRIBUTES["legacy-bios-bootable"]
        mbr_type = None
        if mbr_type_raw is not None:
            mbr_type = t.parse("mbr-type", parttypes.mbr_type, 0)
            if not hybrid:
                raise t.error("mbr-type", "only for partitions with hybrid = true")
        if kind == "gpt" and gpt.name_units(name) > 36:
            raise t.error("name", f"{name!r} is {gpt.name_units(name)} UTF-16 units; "
                          "a GPT name holds 36")
        if kind == "embr" and len(name.encode()) > 63:
            raise t.error("name", f"{name!r} is {len(name.encode())} bytes of UTF-8; an eMBR "
                          "name holds 63")
        if not 0 <= os_signature < 1 << 64:
            raise t.error("os-signature", f"{os_signature} does not fit 64 bits")
        t.done()
        parts.append(PartitionSpec(
            i, t.key, name, image, start, size, rest, resolved, bootable, logical,
            uuid_value, attr_bits, hidden, os_signature, hybrid, mbr_type))
    return tuple(parts)


__all__ = ["SCHEMA", "key_join", "load_layout", "load_layouts", "parse_mode"]

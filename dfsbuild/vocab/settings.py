"""Setting tables: every layout key declared once, with its parser, default, help and whether
it shapes the output bytes (and so enters the cache key).

An image type or a table kind lists its settings; that one list drives loading (defaults,
parsing, errors naming the key), the "applies only to …" errors for keys of other types,
the cache-key material, ``dfsbuild plan --json`` and the README key table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from dfsbuild.units import SizeError, is_power_of_two, parse_size
from dfsbuild.vocab.table import Table, describe


@dataclass(frozen=True, slots=True)
class Context:
    """What a parser may need beyond the value."""

    file: str                   # the layout file, for messages
    base: str                   # the layout's directory: host paths are relative to it
    name: str = ""              # the image or layout name (defaults derived from it)
    sector_size: int = 512      # sizes written as "2048s"
    where: str = ""             # dotted key of the value being parsed (nested tables)


Parser = Callable[[object, Context], Any]
NO_DEFAULT: Any = object()


@dataclass(frozen=True, slots=True)
class Setting:
    """One layout key."""

    name: str                    # the TOML key, kebab-case
    parse: Parser                # value -> typed value; ValueError names the rule
    default: Any = None          # a value, or a callable of the Context
    help: str = ""
    kind: str = "string"         # how the README and the schema name the value
    cached: bool = True          # shapes the output bytes: enters the cache key
    required: bool = False

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")

    def default_for(self, ctx: Context) -> Any:
        return self.default(ctx) if callable(self.default) else self.default


def read_settings(table: Table, settings: Sequence[Setting], ctx: Context) -> dict[str, Any]:
    """Every setting's value (parsed, or its default), by attribute name."""
    values: dict[str, Any] = {}
    for s in settings:
        if not table.has(s.name):
            if s.required:
                raise table.error(s.name, "is required")
            values[s.attr] = s.default_for(ctx)
            continue
        raw = table.raw(s.name)
        try:
            values[s.attr] = s.parse(raw, replace(ctx, where=table.path(s.name)))
        except ValueError as exc:
            raise table.error(s.name, str(exc)) from None
    return values


def build_options(cls: type[Any], settings: Sequence[Setting], values: Mapping[str, Any]) -> Any:
    """The frozen options record of a type from its settings' values."""
    names = {f.name for f in fields(cls)}
    return cls(**{s.attr: values[s.attr] for s in settings if s.attr in names})


def options_material(settings: Iterable[Setting], options: object) -> dict[str, object]:
    """The cached settings of ``options`` as JSON values, by key: the cache-key material."""
    return {s.name: jsonable(getattr(options, s.attr)) for s in settings if s.cached}


def options_json(settings: Iterable[Setting], options: object) -> dict[str, object]:
    """Every setting of ``options`` as JSON values, by key (``plan --json``)."""
    return {s.name: jsonable(getattr(options, s.attr)) for s in settings}


def jsonable(value: object) -> object:
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str | float):
        return value
    return str(value)


# -- parsers ------------------------------------------------------------------------------------

def p_str(value: object, ctx: Context) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, found {describe(value)}")
    return value


def p_uuid(value: object, ctx: Context) -> str:
    """A UUID in its usual text form, kept in lower case."""
    import uuid

    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ValueError(f"{describe(value)} is not a UUID such as "
                     "\"12345678-1234-1234-1234-123456789abc\"")


def p_bool(value: object, ctx: Context) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean (true or false), found {describe(value)}")
    return value


def p_int_range(low: int, high: int, unit: str = "") -> Parser:
    def parse(value: object, ctx: Context) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, found {describe(value)}")
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}{unit}")
        return value
    return parse


def p_choice(*choices: object) -> Parser:
    def parse(value: object, ctx: Context) -> object:
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"{describe(value)} is not one of: "
                             + ", ".join(str(c) for c in choices))
        return value
    return parse


def p_size(value: object, ctx: Context) -> int:
    """A size in bytes; ``"2048s"`` counts sectors of the disk's sector size."""
    try:
        return parse_size(value, sector_size=ctx.sector_size)
    except SizeError as exc:
        raise ValueError(str(exc)) from None


def p_sector_multiple(value: object, ctx: Context) -> int:
    size = p_size(value, ctx)
    if size % ctx.sector_size:
        raise ValueError(f"{size} bytes is not a whole number of {ctx.sector_size}-byte "
                         "sectors")
    return size


def p_align16(value: object, ctx: Context) -> int:
    size = p_size(value, ctx)
    if size < 16 or not is_power_of_two(size):
        raise ValueError(f"{value!r}: the alignment must be a power of two of at least 16 "
                         "bytes")
    return size


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


def p_mode(value: object, ctx: Context) -> int:
    return parse_mode(value)


def p_host_path(value: object, ctx: Context) -> str:
    """A host path, relative to the layout file; made absolute."""
    text = p_str(value, ctx)
    if not text:
        raise ValueError("an empty path names nothing")
    if "\0" in text:
        raise ValueError("a path cannot contain a NUL byte")
    return os.path.normpath(os.path.join(ctx.base, text))


def p_output(value: object, ctx: Context) -> str:
    """A file name under the build directory: relative, no '..' component, no NUL."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a file name, found {describe(value)}")
    if "\0" in value or "\n" in value:
        raise ValueError(f"{value!r}: a file name cannot hold a NUL byte or a newline")
    norm = os.path.normpath(value)
    if os.path.isabs(value) or norm.split(os.sep)[0] == ".." or norm in (".", ""):
        raise ValueError(f"{value!r} must name a file inside the build directory")
    return norm


def p_guid(value: object, ctx: Context) -> str:
    import uuid

    if isinstance(value, str):
        try:
            return str(uuid.UUID(value)).upper()
        except ValueError:
            pass
    raise ValueError(f"{describe(value)} is not a GUID such as "
                     "\"11111111-2222-3333-4444-555555555555\"")

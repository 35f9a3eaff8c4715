"""A JSON Schema of the layout format, generated from the Setting tables (the same source as
the loader and the README's key table): every key, its type, default and help. Editors use it
to complete and check layouts (taplo / Even Better TOML: a ``#:schema`` first line).

``dfsbuild schema`` prints it; ``schema/layout.schema.json`` is the committed copy, kept equal
by a test. Values a variable fills (``"${SIZE}"``) are strings; where a key takes only an
integer, such a value is valid for dfsbuild but not for the schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dfsbuild.images import IMAGE_TYPES
from dfsbuild.layout.load import SCHEMA, disk_common, image_common, image_settings
from dfsbuild.tables import TABLE_KINDS
from dfsbuild.tables.place import PARTITION_SETTINGS, REGION_SETTINGS
from dfsbuild.vocab.settings import Setting

SCHEMA_ID = "https://dfsbuild.invalid/schema/layout.schema.json"
_KINDS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "path": {"type": "string"},
    "boolean": {"type": "boolean"},
    'boolean or "append"': {"type": ["boolean", "string"], "enum": [True, False, "append"]},
    "integer": {"type": "integer"},
    "size": {"type": ["integer", "string"]},
    "array": {"type": ["array", "string"]},
    "array of strings": {"type": "array", "items": {"type": "string"}},
    "table": {"type": "object"},
    # A GUID, or a string a variable fills in.
    "guid": {"type": "string",
             "pattern": "^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                        "[0-9A-Fa-f]{12}|.*\\$\\{.*)$"},
}


def _value(s: Setting) -> dict[str, Any]:
    value = dict(_KINDS.get(s.kind, {}))
    if s.kind == "string" and isinstance(s.default, int) and not isinstance(s.default, bool):
        value["type"] = ["integer", "string"]           # an MBR type byte, or its name
    if s.name == "mode":
        value["type"] = ["integer", "string"]
    value["description"] = s.help
    default = s.default
    if not callable(default) and default is not None:
        value["default"] = default
    return value


def _properties(groups: Iterable[Iterable[Setting]]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for settings in groups:
        for s in settings:
            props.setdefault(s.name, _value(s))
    return props


def _by(field: str, owners: Sequence[tuple[str, Sequence[Setting]]],
        common: Sequence[str]) -> list[dict[str, Any]]:
    """``if field == NAME then only these keys``, for each type or kind."""
    return [{"if": {"properties": {field: {"const": name}}, "required": [field]},
             "then": {"propertyNames": {"enum": sorted({*common,
                                                       *(s.name for s in settings)})}}}
            for name, settings in owners]


def _required(settings: Iterable[Setting]) -> list[str]:
    return [s.name for s in settings if s.required]


def layout_schema() -> dict[str, Any]:
    image_owners = [(n, image_settings(t)) for n, t in IMAGE_TYPES.items()]
    image = {
        "type": "object",
        "properties": {
            "type": {"enum": list(IMAGE_TYPES), "description": "the image type: " + "; ".join(
                f"{n}: {t.help}" for n, t in IMAGE_TYPES.items())},
            **_properties([image_common("NAME"), *(s for _, s in image_owners)]),
        },
        "required": ["type"],
        "additionalProperties": False,
        "allOf": _by("type", image_owners,
                     ["type", *(s.name for s in image_common("NAME"))]),   # output, verity…
    }
    partition_owners = [(n, k.partition_settings) for n, k in TABLE_KINDS.items()]
    partition = {
        "type": "object",
        "properties": _properties([PARTITION_SETTINGS, *(s for _, s in partition_owners)]),
        "required": _required(PARTITION_SETTINGS),
        "additionalProperties": False,
    }
    region = {
        "type": "object",
        "properties": _properties([REGION_SETTINGS]),
        "required": _required(REGION_SETTINGS),
        "additionalProperties": False,
    }
    disk_owners = [(n, k.disk_settings) for n, k in TABLE_KINDS.items()]
    disk = {
        "type": "object",
        "properties": {
            "table": {"enum": list(TABLE_KINDS), "description": "the partition table: " +
                      "; ".join(f"{n}: {k.help}" for n, k in TABLE_KINDS.items())},
            **_properties([disk_common("LAYOUT"), *(s for _, s in disk_owners)]),
            "partition": {"type": "array", "items": {"$ref": "#/$defs/partition"},
                          "description": "[[disk.partition]]: the partitions, in order"},
            "region": {"type": "array", "items": {"$ref": "#/$defs/region"},
                       "description": "[[disk.region]]: images at fixed byte offsets outside "
                       "the partition table (boot loader blobs)"},
        },
        "required": ["table"],
        "additionalProperties": False,
        "allOf": _by("table", disk_owners, ["table", "output", "partition", "region"]),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "dfsbuild layout",
        "description": "A dfsbuild layout file (TOML): images and at most one disk.",
        "type": "object",
        "properties": {
            "schema": {"const": SCHEMA, "description": "the layout format version"},
            "include": {"type": "array", "items": {"type": "string"},
                        "description": "files (relative to this one) whose [image.NAME] "
                        "tables and [vars] this layout shares; a name defined twice is an "
                        "error"},
            "vars": {"type": "object", "description": "variables for ${NAME} in string "
                     "values; overridden by --var NAME=VALUE and $DFSBUILD_VAR_NAME",
                     "additionalProperties": {"type": ["string", "integer"]}},
            "image": {"type": "object", "additionalProperties": {"$ref": "#/$defs/image"},
                      "description": "[image.NAME]: the images, each also an output"},
            "disk": {"$ref": "#/$defs/disk"},
        },
        "required": ["schema"],
        "additionalProperties": False,
        "$defs": {"image": image, "disk": disk, "partition": partition, "region": region},
    }


def schema_text() -> str:
    """The schema as committed: sorted keys are not used, so it reads in table order."""
    import json

    return json.dumps(layout_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")

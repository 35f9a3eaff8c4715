"""The manifest beside a disk (``OUTPUT.json``): what a provisioning tool needs to know about
the card without reading it, in one JSON document that ``dfsbuild schema --manifest``
describes.

The partition table is read back from the disk as written, in ``sfdisk --json``'s words (the
same code as ``inspect --json``), so the manifest, ``inspect`` and sfdisk cannot disagree;
each partition and region names the image in it (its content key, sha256, size, and the
filesystem's type, UUID and label as ``blkid -p`` reports them); the files made beside the
disk (block map, sparse images, compressed disk) are listed with their sha256.
"""

from __future__ import annotations

import json
import os

from dfsbuild import __version__
from dfsbuild.engine.state import StateStore
from dfsbuild.errors import FormatError
from dfsbuild.fileio.atomic import atomic_write
from dfsbuild.fileio.digest import sha256_path
from dfsbuild.fileio.source import ByteSource, open_image
from dfsbuild.images import IMAGE_TYPES
from dfsbuild.inspect.render import table_json
from dfsbuild.plan import DiskPlan, ImagePlan
from dfsbuild.tables import read_table

FORMAT = 1


def disk_manifest(plan: DiskPlan, images: dict[str, ImagePlan],
                  state: StateStore) -> dict[str, object]:
    """The manifest of the disk ``plan`` as it is on disk now, its companions written."""
    placed = plan.settled()
    by_number = {p.number: p for p in placed.partitions}
    size = os.stat(plan.output).st_size
    table: dict[str, object] | None = None
    if placed.whole_image is None:
        with open_image(plan.output) as f:
            disk = read_table(ByteSource(f), placed.sector_size)
        read = table_json(disk, "")["partitiontable"]
        assert isinstance(read, dict)
        table = {k: v for k, v in read.items() if k not in ("device", "problems")}
        parts = []
        for p, row in zip(disk.partitions, read["partitions"], strict=True):
            entry = {k: v for k, v in row.items() if k != "node"}
            entry["number"] = p.number
            entry["image"] = None              # an MBR's extended container: no image
            mine = by_number.get(p.number)
            if mine is not None:
                entry.setdefault("name", mine.name)
                entry["image"] = _image(images[mine.image], state) \
                    if mine.image is not None else None
            parts.append(entry)
        table["partitions"] = parts
    data: dict[str, object] = {
        "manifest": FORMAT,
        "generator": f"dfsbuild {__version__}",
        "layout": plan.layout_file,
        "disk": {"file": os.path.basename(plan.output), "size": size, "key": plan.key,
                 "table": plan.table},
        "partitiontable": table,
        "whole": _image(images[placed.whole_image], state)
        if placed.whole_image is not None else None,
        "regions": [{"name": r.name, "start": r.start, "size": r.size,
                     "image": _image(images[r.image], state)} for r in placed.regions],
        "files": _files(plan),
    }
    return data


def _image(plan: ImagePlan, state: StateStore) -> dict[str, object]:
    record = state.current(plan.task, plan.key, plan.output)
    size = os.stat(plan.output).st_size
    sha = record.sha256 if record is not None else None
    if sha is None:
        sha = sha256_path(plan.output, size)
        state.note_sha256(plan.task, plan.key, plan.output, sha)
    out: dict[str, object] = {"name": plan.spec.name, "type": plan.spec.type,
                              "file": os.path.basename(plan.output), "size": size,
                              "key": plan.key, "sha256": sha}
    out["filesystem"] = _identity(plan) or None
    out.update(IMAGE_TYPES[plan.spec.type].published(plan.output))
    return out


def _identity(plan: ImagePlan) -> dict[str, str]:
    t = IMAGE_TYPES[plan.spec.type]
    try:
        with open_image(plan.output) as f:
            return t.reader(ByteSource(f)).identity()
    except FormatError:          # a type without a reader (raw) names nothing
        return {}


def _files(plan: DiskPlan) -> dict[str, object]:
    def entry(path: str | None) -> dict[str, object] | None:
        if path is None:
            return None
        return {"file": os.path.basename(path), "size": os.stat(path).st_size,
                "sha256": sha256_path(path, os.stat(path).st_size)}

    return {"bmap": entry(plan.bmap), "sparse": entry(plan.simg),
            "compressed": entry(plan.compressed),
            "partition_sparse": {name: entry(path)
                                 for name, path in plan.partition_simgs().items()}}


def write_manifest(path: str, data: dict[str, object]) -> None:
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_FILE = {"oneOf": [{"type": "null"}, {
    "type": "object", "additionalProperties": False, "required": ["file", "size", "sha256"],
    "properties": {"file": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
                   "sha256": _SHA256}}]}
_IMAGE = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "type", "file", "size", "key", "sha256", "filesystem"],
    "properties": {
        "name": {"type": "string", "description": "the image's name in the layout"},
        "type": {"type": "string", "description": "its type (romfs, fat, trivialfs, cpio, raw)"},
        "file": {"type": "string", "description": "its output, beside the disk"},
        "size": {"type": "integer", "minimum": 0, "description": "bytes"},
        "key": {**_SHA256, "description": "its content key (what names it in the caches)"},
        "sha256": _SHA256,
        "roothash": {"type": "string", "pattern": "^[0-9a-f]+$",
                     "description": "a dm-verity hash tree's root hash (type verity)"},
        "filesystem": {"oneOf": [{"type": "null"}, {
            "type": "object", "additionalProperties": False,
            "description": "what blkid -p reports: TYPE, UUID, LABEL",
            "properties": {"type": {"type": "string"}, "uuid": {"type": "string"},
                           "label": {"type": "string"}}}]},
    },
}
SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "dfsbuild disk manifest",
    "description": "OUTPUT.json beside a disk dfsbuild built: its table as sfdisk --json "
                   "names it, the image in each partition and region, the files made beside it.",
    "type": "object",
    "additionalProperties": False,
    "required": ["manifest", "generator", "layout", "disk", "partitiontable", "whole",
                 "regions", "files"],
    "properties": {
        "manifest": {"const": FORMAT, "description": "this format's version"},
        "generator": {"type": "string"},
        "layout": {"type": "string", "description": "the layout file, as it was named"},
        "disk": {"type": "object", "additionalProperties": False,
                 "required": ["file", "size", "key", "table"],
                 "properties": {"file": {"type": "string"},
                                "size": {"type": "integer", "minimum": 0},
                                "key": _SHA256, "table": {"type": "string"}}},
        "partitiontable": {"oneOf": [{"type": "null"}, {
            "type": "object",
            "description": "sfdisk --json's partitiontable (no device or node names)",
            "required": ["label", "id", "unit", "sectorsize", "partitions"],
            "properties": {
                "label": {"type": "string", "description": "sfdisk's name of the table"},
                "id": {"type": "string"},
                "unit": {"const": "sectors"},
                "sectorsize": {"enum": [512, 4096]},
                "firstlba": {"type": "integer"}, "lastlba": {"type": "integer"},
                "partitions": {"type": "array", "items": {
                    "type": "object",
                    "required": ["number", "start", "size", "type", "image"],
                    "properties": {
                        "number": {"type": "integer", "minimum": 1},
                        "start": {"type": "integer", "minimum": 0,
                                  "description": "first sector"},
                        "size": {"type": "integer", "minimum": 1, "description": "sectors"},
                        "type": {"type": "string",
                                 "description": "sfdisk's notation: MBR hex, GPT GUID"},
                        "uuid": {"type": "string"}, "name": {"type": "string"},
                        "attrs": {"type": "string"}, "bootable": {"type": "boolean"},
                        "image": {"oneOf": [{"type": "null"}, _IMAGE]},
                    }}},
            }}]},
        "whole": {"oneOf": [{"type": "null"}, _IMAGE],
                  "description": "table = \"none\": the image that is the whole disk"},
        "regions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "start", "size", "image"],
            "properties": {"name": {"type": "string"},
                           "start": {"type": "integer", "minimum": 0,
                                     "description": "bytes from the disk's start"},
                           "size": {"type": "integer", "minimum": 1,
                                    "description": "bytes kept for it"},
                           "image": _IMAGE}}},
        "files": {"type": "object", "additionalProperties": False,
                  "required": ["bmap", "sparse", "compressed", "partition_sparse"],
                  "properties": {"bmap": _FILE, "sparse": _FILE, "compressed": _FILE,
                                 "partition_sparse": {"type": "object",
                                                      "additionalProperties": _FILE}}},
    },
}


def schema_text() -> str:
    return json.dumps(SCHEMA, indent=2) + "\n"

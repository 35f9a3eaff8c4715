"""Content keys: one sha256 over everything that can change an output's bytes.

An image's key hashes the writer's revision, dfsbuild's version, the image's options, the
manifest of its file tree (paths, modes, link targets, content digests) and the keys of the
images nested in it; a disk's, its table options, its partitions, the keys of the images in
them and the build time. The same key decides "up to date" and names the cache entry, so the
two can never disagree.
"""

from __future__ import annotations

import hashlib
import json

from dfsbuild import __version__


def key_material(kind: str, revision: int, options: dict[str, object],
                 manifest: list[list[object]], nested: dict[str, str]) -> dict[str, object]:
    """``revision`` is the writer's (each image type and table kind declares it, and bumps it
    whenever its bytes change for the same inputs)."""
    return {
        "dfsbuild": __version__,
        "writer": [kind, revision],
        "options": options,
        "manifest": manifest,
        "nested": nested,
    }


def content_key(material: dict[str, object]) -> str:
    return hashlib.sha256(material_json(material).encode()).hexdigest()


_ENCODED: dict[int, tuple[dict[str, object], str]] = {}


def material_json(material: dict[str, object]) -> str:
    """The JSON text a key hashes (sorted keys, no spaces, ASCII). Encoded once per material
    (a material is not changed once made): the state records the same text (``--explain``)."""
    held = _ENCODED.get(id(material))
    if held is not None and held[0] is material:
        return held[1]
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    _ENCODED[id(material)] = (material, text)
    return text


def placement_key(material: dict[str, object], sizes: dict[str, int]) -> str | None:
    """The key of everything but the files' contents: ``material`` with each manifest row's
    content (a file's content id, a nested image's key) replaced by its size, from ``sizes``,
    and the nested keys left out. Two builds with the same placement key lay out the same
    bytes around files' data of the same sizes at the same offsets (for the types whose
    ``data_patch_from`` says so). None when a content's size is not known."""
    rows: list[object] = []
    manifest = material["manifest"]
    assert isinstance(manifest, list)
    for row in manifest:
        if len(row) > 3 and row[3]:
            size = sizes.get(row[3])
            if size is None:
                return None
            row = [*row[:3], size, *row[4:]]
        rows.append(row)
    blob = json.dumps({**material, "manifest": rows, "nested": {}, "placement": 1},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()

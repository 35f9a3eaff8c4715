"""Content keys and the content-addressed output store.

An image's key hashes everything that can change its bytes: the writer's revision, dfsbuild's
version, the image's options, the manifest of its file tree (paths, modes, link targets, content
digests) and the keys of the images nested in it. The same dict is what up-to-date checks
compare, so "up to date" and "in the cache" can never disagree.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from dfsbuild import __version__
from dfsbuild.fileio import copy_file_sparse

# Bump a writer's revision whenever its output bytes change for the same inputs.
WRITER_REVISIONS = {"romfs": 1, "raw": 1, "disk-none": 1, "disk-mbr": 1, "disk-gpt": 1,
                    "disk-embr": 1}


def key_material(kind: str, options: dict[str, object], manifest: list[list[object]],
                 nested: dict[str, str]) -> dict[str, object]:
    return {
        "dfsbuild": __version__,
        "writer": [kind, WRITER_REVISIONS[kind]],
        "options": options,
        "manifest": manifest,
        "nested": nested,
    }


def content_key(material: dict[str, object]) -> str:
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class OutputCache:
    """Outputs stored by key: ``ROOT/ab/abcdef…``. Entries appear atomically (rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> Path | None:
        path = self.path_for(key)
        return path if path.is_file() else None

    def store(self, key: str, source: Path) -> None:
        """Copy ``source`` in as the entry for ``key`` (keeping holes)."""
        dest = self.path_for(key)
        if dest.is_file():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{key}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            copy_file_sparse(str(source), fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, dest)

"""Content keys and the content-addressed output store.

An image's key hashes everything that can change its bytes: the writer's revision, dfsbuild's
version, the image's options, the manifest of its file tree (paths, modes, link targets, content
digests) and the keys of the images nested in it. The same dict is what up-to-date checks
compare, so "up to date" and "in the cache" can never disagree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from dfsbuild import __version__
from dfsbuild.fileio.copy import link_or_copy


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
    blob = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class OutputCache:
    """Outputs stored by key: ``ROOT/ab/abcdef…`` plus a ``.stamp`` of its size and mtime.

    Entries are hard links to the outputs where the filesystem allows (no second copy), else
    copies. Either way an entry counts only while its stamp matches: an output edited in place
    changes the shared inode's mtime, so the entry is dropped instead of being trusted.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _stamp_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.stamp"

    def lookup(self, key: str) -> Path | None:
        path = self.path_for(key)
        try:
            st = path.stat()
            stamp = json.loads(self._stamp_path(key).read_text())
        except (OSError, ValueError):
            return None
        if stamp != {"size": st.st_size, "mtime_ns": st.st_mtime_ns}:
            self.drop(key)
            return None
        return path

    def drop(self, key: str) -> None:
        for p in (self._stamp_path(key), self.path_for(key)):
            with contextlib.suppress(OSError):
                p.unlink()

    def store(self, key: str, source: Path) -> None:
        """Enter ``source`` as the output for ``key``."""
        if self.lookup(key) is not None:
            return
        dest = self.path_for(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{key}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):
            tmp.unlink()
        link_or_copy(str(source), str(tmp))
        st = tmp.stat()
        os.replace(tmp, dest)
        stamp = self._stamp_path(key)
        stamp_tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
        stamp_tmp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns}))
        os.replace(stamp_tmp, stamp)

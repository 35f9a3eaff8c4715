"""What the last build of each output recorded: its key, its file's identity (size, mtime,
inode) and sha256, and the key material (for ``--explain``). Kept under
``BUILD/.dfsbuild/state``, one small JSON file per output, each replaced atomically.

A record marked ``in_progress`` (written before an output is patched in place) never counts as
current. A record that cannot be read is set aside with a warning and the output rebuilt.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from dataclasses import asdict, dataclass, field

from dfsbuild.engine import extentfile
from dfsbuild.errors import warn
from dfsbuild.keys import material_json
from dfsbuild.shown import shown


@dataclass(frozen=True, slots=True)
class Record:
    """What the build that left an output recorded: its key, its file's identity, its sha256."""

    key: str
    size: int
    mtime_ns: int
    ino: int
    sha256: str | None = None
    in_progress: bool = False
    frame: dict[str, object] = field(default_factory=dict)   # disks: what a patch may reuse
    placement: str | None = None    # images: keys.placement_key of the build (datapatch.py)

    def matches(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


class StateStore:
    def __init__(self, root: str) -> None:
        self.root = root

    def _paths(self, task: str) -> tuple[str, str]:
        safe = _safe(task)
        return (os.path.join(self.root, f"{safe}.json"),
                os.path.join(self.root, f"{safe}.material.json"))

    def forget_layout(self, layout: str) -> None:
        """Every record of a layout's outputs, those of images since renamed included."""
        for pattern in (f"{_safe(layout)}__image.*", f"{_safe(layout)}__disk.*"):
            for p in glob.glob(os.path.join(glob.escape(self.root), pattern)):
                with contextlib.suppress(OSError):
                    os.unlink(p)

    def load(self, task: str) -> Record | None:
        state_path, _ = self._paths(task)
        try:
            with open(state_path, "rb") as f:
                text = f.read()
        except OSError:
            return None
        try:
            data = json.loads(text)
            record = Record(**data) if isinstance(data, dict) else None
            if record is None or not isinstance(record.key, str) or not all(
                    isinstance(v, int) for v in (record.size, record.mtime_ns, record.ino)):
                raise ValueError("not a state record")
        except (ValueError, TypeError):
            aside = state_path + ".corrupt"
            with contextlib.suppress(OSError):
                os.replace(state_path, aside)
            warn(f"{state_path}: unreadable build state, set aside as "
                 f"{os.path.basename(aside)}; "
                 f"{task} will be rebuilt")
            return None
        return record

    def current(self, task: str, key: str, output: str) -> Record | None:
        """The record if ``output`` is what the build of ``key`` left, untouched since."""
        record = self.load(task)
        if record is None or record.key != key:
            return None
        return _untouched(record, output)

    def placed(self, task: str, placement: str, output: str) -> Record | None:
        """The record if ``output`` is what a build of the same placement key left, untouched
        since: its size is the size a build of that placement gives."""
        record = self.load(task)
        if record is None or record.placement != placement:
            return None
        return _untouched(record, output)

    def is_current(self, task: str, key: str, output: str) -> bool:
        return self.current(task, key, output) is not None

    def record(self, task: str, key: str, st: os.stat_result, sha256: str | None,
               material: dict[str, object] | None = None,
               frame: dict[str, object] | None = None, placement: str | None = None) -> Record:
        state_path, material_path = self._paths(task)
        os.makedirs(self.root, exist_ok=True)
        if material is not None:
            _write(material_path, material_json(material))
        rec = Record(key, st.st_size, st.st_mtime_ns, st.st_ino, sha256, False, frame or {},
                     placement)
        _write(state_path, json.dumps(asdict(rec)))
        return rec

    def note_sha256(self, task: str, key: str, output: str, sha256: str) -> None:
        """Keep ``sha256``, computed from ``output`` after the build, in the record of the
        build of ``key`` that left it untouched (the next one asking need not hash it)."""
        record = self.current(task, key, output)
        if record is not None and record.sha256 is None:
            state_path, _ = self._paths(task)
            data = asdict(record)
            data["sha256"] = sha256
            _write(state_path, json.dumps(data))

    def begin_patch(self, task: str, record: Record) -> None:
        """Mark the output as being rewritten in place: until the next ``record`` it is not
        current, whatever its stat says."""
        state_path, _ = self._paths(task)
        data = asdict(record)
        data["in_progress"] = True
        _write(state_path, json.dumps(data))

    def record_extents(self, task: str, key: str, extents: list[tuple[int, int, str]],
                       names: dict[int, str] | None = None) -> None:
        """Where the output of ``key`` holds which content (a later build of the same output
        copies it and writes only what differs), and which file's data starts at an offset
        (``names``: its path in the image; a later build patches a file's data alone)."""
        os.makedirs(self.root, exist_ok=True)
        _write_bytes(self._extents_path(task), extentfile.encode(key, extents, names or {}))

    def extents(self, task: str, key: str) -> dict[tuple[int, int], str] | None:
        """The extents recorded with the output of ``key``; None without them."""
        found = self.named_extents(task, key)
        return found[0] if found is not None else None

    def named_extents(self, task: str, key: str) -> tuple[dict[tuple[int, int], str],
                                                         dict[str, tuple[int, int]]] | None:
        """The extents recorded with the output of ``key``, and where each named file's data
        lies (path -> (offset, size)); None without them."""
        try:
            with open(self._extents_path(task), "rb") as f:
                columns = extentfile.decode(f.read(), key)
        except OSError:
            return None
        if columns is None:
            return None
        at, size, what, names = columns
        spans = dict(zip(zip(at, size, strict=True), what, strict=True))
        named = {name: (a, n) for a, n, name in zip(at, size, names, strict=True) if name}
        return spans, named

    def record_changes(self, task: str, old_key: str, new_key: str,
                       spans: list[tuple[int, int]]) -> None:
        """The spans an in-place rewrite changed, turning the output of ``old_key`` into that
        of ``new_key`` (the same for any two outputs of those keys: a key's bytes are
        fixed). A disk holding the old image copies only these."""
        os.makedirs(self.root, exist_ok=True)
        _write(self._changes_path(task), json.dumps({"from": old_key, "to": new_key,
                                                     "spans": spans}))

    def changes(self, task: str, old_key: str, new_key: str) -> list[tuple[int, int]] | None:
        """The spans recorded for ``old_key`` -> ``new_key``, or None."""
        try:
            with open(self._changes_path(task)) as f:
                data = json.load(f)
            if data.get("from") != old_key or data.get("to") != new_key:
                return None
            return [(int(a), int(n)) for a, n in data["spans"]]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    def _changes_path(self, task: str) -> str:
        return os.path.join(self.root, f"{_safe(task)}.changes")

    def _extents_path(self, task: str) -> str:
        return os.path.join(self.root, f"{_safe(task)}.extents")

    def forget(self, task: str) -> None:
        for extra in (self._extents_path(task), self._changes_path(task)):
            with contextlib.suppress(OSError):
                os.unlink(extra)
        for p in self._paths(task):
            with contextlib.suppress(OSError):
                os.unlink(p)

    def previous_material(self, task: str) -> dict[str, object] | None:
        _, material_path = self._paths(task)
        try:
            with open(material_path, "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _untouched(record: Record, output: str) -> Record | None:
    """``record`` if ``output`` is the file it describes and the build finished."""
    if record.in_progress:
        return None
    try:
        st = os.stat(output, follow_symlinks=False)
    except OSError:
        return None
    return record if record.matches(st) else None


def _safe(task: str) -> str:
    return task.replace("/", "_").replace(":", "__")


def _write(path: str, text: str) -> None:
    _write_bytes(path, text.encode())


def _write_bytes(path: str, data: bytes) -> None:
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def explain(old: dict[str, object] | None, new: dict[str, object], output: str) -> str:
    """Why an output has to be produced again, in one line."""
    if old is None:
        return "never built here" if not os.path.exists(output) else "no record of a build"
    reasons: list[str] = []
    if old.get("dfsbuild") != new.get("dfsbuild") or old.get("writer") != new.get("writer"):
        reasons.append("dfsbuild or its writer changed")
    old_opts, new_opts = old.get("options"), new.get("options")
    if isinstance(old_opts, dict) and isinstance(new_opts, dict):
        for k in sorted(set(old_opts) | set(new_opts)):
            if old_opts.get(k) != new_opts.get(k):
                reasons.append(f"option {k}: {shown(old_opts.get(k), 'default')} -> "
                               f"{shown(new_opts.get(k), 'default')}")
    reasons += _diff_manifest(old.get("manifest"), new.get("manifest"))
    old_nested, new_nested = old.get("nested"), new.get("nested")
    if isinstance(old_nested, dict) and isinstance(new_nested, dict):
        for k in sorted(set(old_nested) | set(new_nested)):
            if old_nested.get(k) != new_nested.get(k):
                reasons.append(f"nested image {k} changed")
    if not reasons:
        return "the output file was changed or removed"
    more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
    return "; ".join(reasons[:3]) + more


FIELDS = ("path", "type", "mode", "content", "symlink target", "major", "minor", "hard link",
          "nested image")


def _diff_manifest(old: object, new: object) -> list[str]:
    if not isinstance(old, list) or not isinstance(new, list):
        return []
    before = {str(row[0]): row for row in old if isinstance(row, list) and row}
    after = {str(row[0]): row for row in new if isinstance(row, list) and row}
    out = []
    for path in sorted(set(before) | set(after)):
        shown = path or "/"
        if path not in before:
            out.append(f"{shown}: added")
        elif path not in after:
            out.append(f"{shown}: removed")
        elif before[path] != after[path]:
            pairs = zip(before[path], after[path], strict=False)
            changed = [FIELDS[i] for i, (a, b) in enumerate(pairs) if a != b and i < len(FIELDS)]
            out.append(f"{shown}: {', '.join(changed) or 'changed'}")
    return out

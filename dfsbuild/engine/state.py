"""What the last successful build of each output recorded: its key, its file's stat, and the
key material (for ``--explain``). Kept under ``BUILD/.dfsbuild/state``."""

from __future__ import annotations

import json
import os
from pathlib import Path


class StateStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, task: str) -> tuple[Path, Path]:
        safe = task.replace("/", "_").replace(":", "__")
        return self.root / f"{safe}.json", self.root / f"{safe}.material.json"

    def is_current(self, task: str, key: str, output: str) -> bool:
        """True if ``output`` is what the build of ``key`` left, untouched since."""
        state_path, _ = self._paths(task)
        try:
            state = json.loads(state_path.read_text())
            st = os.stat(output)
        except (OSError, ValueError):
            return False
        return bool(
            state.get("key") == key
            and state.get("size") == st.st_size
            and state.get("mtime_ns") == st.st_mtime_ns
            and state.get("ino") == st.st_ino
        )

    def record(self, task: str, key: str, output: str, material: dict[str, object]) -> None:
        state_path, material_path = self._paths(task)
        self.root.mkdir(parents=True, exist_ok=True)
        st = os.stat(output)
        _write(material_path, json.dumps(material, sort_keys=True))
        _write(state_path, json.dumps({"key": key, "size": st.st_size,
                                       "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}))

    def previous_material(self, task: str) -> dict[str, object] | None:
        _, material_path = self._paths(task)
        try:
            data = json.loads(material_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
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
                reasons.append(f"option {k}: {old_opts.get(k)!r} -> {new_opts.get(k)!r}")
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

"""dfsbuild verify: keys first, then bytes made again in a temporary file; nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli

LAYOUT = """schema = 1
[image.root]
type = "romfs"
tree = "tree"
[disk]
table = "gpt"
[[disk.partition]]
name = "root"
image = "root"
"""


def _built(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("hello\n")
    layout = tmp_path / "v.toml"
    layout.write_text(LAYOUT)
    build = tmp_path.parent / (tmp_path.name + "-build")
    run_cli("build", str(layout), "--build-dir", str(build))
    return layout, build


def _verify(layout: Path, build: Path, *target: str) -> tuple[int, list[dict[str, object]]]:
    arg = f"{layout}:{target[0]}" if target else str(layout)
    proc = run_cli("verify", "--json", arg, "--build-dir", str(build), check=False)
    return proc.returncode, json.loads(proc.stdout)


def _snapshot(build: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in build.rglob("*")
            if p.is_file()}


def test_verify_ok_then_each_kind_of_difference(tmp_path: Path) -> None:
    layout, build = _built(tmp_path)
    before = _snapshot(build)
    code, rows = _verify(layout, build)
    assert code == 0 and [(r["task"], r["ok"], r["check"]) for r in rows] == [
        ("v:image.root", True, "bytes"), ("v:disk", True, "bytes")]
    assert _snapshot(build) == before            # nothing written, the state included
    # Bytes changed behind the build's back, size and mtime kept: only the bytes tell.
    disk = build / "v" / "v.img"
    st = disk.stat()
    with open(disk, "r+b") as f:
        f.seek((1 << 20) + 512)
        f.write(b"tampered")
    os.utime(disk, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, rows = _verify(layout, build, "disk")
    assert code == 1
    bad = {r["task"]: r for r in rows if not r["ok"]}
    assert list(bad) == ["v:disk"] and bad["v:disk"]["check"] == "bytes", bad["v:disk"]["reason"]
    # The layout's inputs changed: the key tells, and says which.
    (tmp_path / "tree" / "f").write_text("changed\n")
    code, rows = _verify(layout, build, "image.root")
    assert code == 1 and rows[0]["check"] == "key" and "f" in str(rows[0]["reason"])
    # A missing output.
    (build / "v" / "root.img").unlink()
    code, rows = _verify(layout, build, "image.root")
    assert code == 1 and rows[0]["reason"] == "missing"

"""``dfsbuild init`` starts a repository whose layout builds at once, for dfsbuild and for
doit, and never overwrites anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, need_tool, run_cli


def test_init_gives_a_repository_that_builds(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.o")             # no newline at its end
    out = run_cli("init", cwd=tmp_path).stdout
    assert "created  layouts/board.toml" in out and "dfsbuild build" in out
    assert (tmp_path / ".gitignore").read_text() == "*.o\nbuild/\n"
    run_cli("check", "--strict", cwd=tmp_path)
    built = json.loads(run_cli("build", "--json", cwd=tmp_path).stdout)
    assert {r["outcome"] for r in built["outputs"]} == {"built"}
    disk = tmp_path / "build" / "board" / "board.img"
    table = json.loads(subprocess.run([need_tool("sfdisk"), "--json", str(disk)], check=True,
                                      capture_output=True, text=True).stdout)["partitiontable"]
    assert table["label"] == "dos" and [p["type"] for p in table["partitions"]] == ["c", "83"]
    assert table["partitions"][0].get("bootable") is True
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tasks = subprocess.run([sys.executable, "-m", "doit", "list"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "board:disk" in tasks and "board:image.rootfs" in tasks


def test_init_writes_nothing_where_a_repository_is(tmp_path: Path) -> None:
    (tmp_path / "dodo.py").write_text("# mine\n")
    proc = run_cli("init", str(tmp_path), check=False)
    assert proc.returncode == 1 and "dodo.py already there; nothing was written" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dodo.py"]
    assert (tmp_path / "dodo.py").read_text() == "# mine\n"
    missing = run_cli("init", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1 and "no such directory" in missing.stderr
    (tmp_path / "dodo.py").unlink()
    (tmp_path / ".gitignore").write_text("/build\n")
    run_cli("init", "-q", str(tmp_path))
    assert (tmp_path / ".gitignore").read_text() == "/build\n"   # already ignored

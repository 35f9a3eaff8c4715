"""clean, cache stats and prune, --force and --no-cache, what a build prints."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.engine_project import ALL, LAYOUT, build


def cache_files(project: Path) -> list[Path]:
    return sorted(p for p in (project / "build" / ".cache").rglob("*") if p.is_file())


def test_clean_removes_outputs_and_stale_ones_but_never_the_cache(project: Path) -> None:
    build(project)
    layout = project / "layouts" / "board.toml"
    layout.write_text(LAYOUT.replace("[image.other]", "[image.renamed]"))
    build(project)
    board = project / "build" / "board"
    assert (board / "other.img").exists()          # the renamed image's old output
    cached = cache_files(project)
    proc = run_cli("clean", "--json", cwd=project)
    removed = json.loads(proc.stdout)["removed"]
    assert str(board / "other.img") in removed and str(board / "renamed.img") in removed
    assert not board.exists()
    assert cache_files(project) == cached
    result = build(project)
    assert result["up_to_date"] == [] and "board:image.renamed" in result["restored"]
    run_cli("clean", "--cache", cwd=project)
    assert not (project / "build" / ".cache").exists()


def test_clean_all_keeps_only_the_cache(project: Path) -> None:
    build(project)
    (project / "build" / "gone-layout").mkdir()
    run_cli("clean", "--all", cwd=project)
    left = sorted(p.name for p in (project / "build").iterdir())
    assert left == [".cache", ".dfsbuild"]
    assert [p.name for p in (project / "build" / ".dfsbuild").iterdir()] == ["lock"]


def test_doit_clean_does_what_dfsbuild_clean_does(project: Path) -> None:
    shutil.copy(ROOT / "dodo.py", project / "dodo.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    build(project)
    (project / "build" / "board" / "stale.img").write_bytes(b"old")
    cached = cache_files(project)
    proc = subprocess.run([sys.executable, "-m", "doit", "clean"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (project / "build" / "board").exists()
    assert cache_files(project) == cached


def test_doit_always_execute_builds_rather_than_restores(project: Path) -> None:
    shutil.copy(ROOT / "dodo.py", project / "dodo.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    build(project)
    proc = subprocess.run([sys.executable, "-m", "doit", "-a"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 built, 0 patched, 0 restored" in proc.stdout


def test_force_rebuilds_and_no_cache_stores_nothing(project: Path) -> None:
    build(project)
    result = build(project, "--force")
    assert set(result["built"]) == ALL
    assert all(r["reason"] == "forced" for r in result["outputs"])
    shutil.rmtree(project / "build")
    result = build(project, "--no-cache")
    assert set(result["built"]) == ALL
    assert not (project / "build" / ".cache").exists()
    shutil.rmtree(project / "build")
    result = build(project, env={"DFSBUILD_NO_CACHE": "yes"})
    assert not (project / "build" / ".cache").exists()
    shutil.rmtree(project / "build")
    result = build(project, env={"DFSBUILD_NO_CACHE": "0"})
    assert (project / "build" / ".cache").exists()


def test_cache_stats_and_prune(project: Path) -> None:
    build(project)
    stats = json.loads(run_cli("cache", "stats", "--json", cwd=project).stdout)
    assert stats["entries"] == 3       # the images; the disk is assembled, not cached
    sizes = sorted(item["size"] for item in stats["items"])
    # Age every entry, then use one: pruning by age keeps only that one.
    records = sorted((project / "build" / ".cache" / "v3" / "entries").rglob("*.json"))
    old = time.time() - 40 * 86400
    for r in records:
        os.utime(r, (old, old))
    (project / "build" / "board" / "inner.img").unlink()
    assert build(project)["restored"] == ["board:image.inner"]
    pruned = json.loads(run_cli("cache", "prune", "--older-than", "30", "--json",
                                cwd=project).stdout)
    assert len(pruned["removed"]) == 2 and pruned["entries"] == 1
    build(project, "--force")           # all three stored again
    out = run_cli("cache", "prune", "--max-size", str(sizes[-1]), cwd=project).stdout
    assert "left" in out
    left = json.loads(run_cli("cache", "stats", "--json", cwd=project).stdout)
    assert left["bytes"] <= sizes[-1] and left["entries"] >= 1
    proc = run_cli("cache", "prune", cwd=project, check=False)
    assert proc.returncode == 1 and "--max-size" in proc.stderr


def test_json_gives_every_output_with_its_sha256(project: Path) -> None:
    first = build(project)
    again = build(project)
    for result, outcome in ((first, None), (again, "up_to_date")):
        rows = result["outputs"]
        assert {r["task"] for r in rows} == ALL
        for r in rows:
            assert set(r) == {"task", "path", "outcome", "reason", "size", "sha256", "seconds"}
            data = Path(r["path"]).read_bytes()
            assert r["size"] == len(data)
            assert r["sha256"] == hashlib.sha256(data).hexdigest()
            assert outcome is None or r["outcome"] == outcome
    assert first["planning_seconds"] <= first["seconds"]


def test_quiet_verbose_and_boolean_variables(project: Path) -> None:
    assert run_cli("build", "-q", cwd=project).stdout == ""
    verbose = run_cli("build", "-v", cwd=project).stdout
    assert verbose.count("current ") == 4 and "up to date" in verbose
    assert "current  board:disk  build/board/board.img\n" in verbose   # where each output is
    (project / "conf.txt").write_text("changed\n")
    off = run_cli("build", cwd=project, env={"DFSBUILD_EXPLAIN": "0"}).stdout
    assert "(extra/conf: content)" not in off and "building board:image.outer" in off
    assert "built    board:image.outer  build/board/outer.img  " in off
    (project / "conf.txt").write_text("changed again\n")
    on = run_cli("build", cwd=project, env={"DFSBUILD_EXPLAIN": "yes"}).stdout
    assert "(extra/conf: content)" in on
    bad = run_cli("build", cwd=project, env={"DFSBUILD_EXPLAIN": "maybe"}, check=False)
    assert bad.returncode == 1 and "is not a boolean" in bad.stderr


@pytest.mark.parametrize("command", [["build", "-q", "-v"], ["cache", "prune",
                                                               "--max-size", "lots"]])
def test_bad_arguments_are_usage_errors(project: Path, command: list[str]) -> None:
    proc = run_cli(*command, cwd=project, check=False)
    assert proc.returncode == 2 and "usage:" in proc.stderr

"""The build engine: content-based up-to-date checks, the output cache, atomic outputs, doit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfsbuild.faults import FAULT_ENV
from tests.conftest import ROOT, run_cli
from tests.engine_project import ALL, LAYOUT, build, made, outputs, ran


def test_first_build_then_nothing_to_do(project: Path) -> None:
    first = build(project)
    assert set(first["built"]) == ALL and first["failed"] == []
    second = build(project)
    assert ran(second) == set() and set(second["up_to_date"]) == ALL


def test_touching_every_input_rebuilds_nothing(project: Path) -> None:
    build(project)
    later = time.time() + 100
    for p in [*project.rglob("*")]:
        if not p.is_symlink() and "build" not in p.relative_to(project).parts:
            os.utime(p, (later, later))
    assert ran(build(project)) == set()


def test_a_changed_file_rebuilds_its_image_and_what_contains_it(project: Path) -> None:
    build(project)
    (project / "trees" / "inner" / "sub" / "file.txt").write_text("inner data, changed\n")
    result = build(project, "--explain")
    assert made(result) == {"board:image.inner", "board:image.outer", "board:disk"}
    assert result["reasons"]["board:image.inner"] == "sub/file.txt: content"
    assert "nested image inner changed" in result["reasons"]["board:image.outer"]


@pytest.mark.parametrize("change", [
    "mode", "symlink", "empty-dir", "added", "removed", "layout-key", "single-file",
])
def test_each_kind_of_change_rebuilds_the_image(project: Path, change: str) -> None:
    build(project)
    inner = project / "trees" / "inner"
    if change == "mode":
        os.chmod(inner / "run.sh", 0o644)
    elif change == "symlink":
        (inner / "ln").unlink()
        (inner / "ln").symlink_to("sub/file.txt")
    elif change == "empty-dir":
        (inner / "empty").mkdir()
    elif change == "added":
        (inner / "new").write_text("new\n")
    elif change == "removed":
        (inner / "sub" / "file.txt").unlink()
    elif change == "layout-key":
        layout = project / "layouts" / "board.toml"
        layout.write_text(LAYOUT.replace('tree = "../trees/inner"',
                                         'tree = "../trees/inner"\nvolume = "renamed"'))
    elif change == "single-file":
        (project / "conf.txt").write_text("conf, changed\n")
    result = build(project)
    expected = {"board:image.outer", "board:disk"}
    if change != "single-file":
        expected.add("board:image.inner")
    assert made(result) == expected
    assert "board:image.other" in result["up_to_date"]


def test_an_edited_output_is_rebuilt(project: Path) -> None:
    build(project)
    out = project / "build" / "board" / "other.img"
    good = out.read_bytes()
    out.write_bytes(b"garbage")             # in place: the cache entry is a separate file
    result = build(project)
    assert result["restored"] == ["board:image.other"]
    assert out.read_bytes() == good
    out.unlink()
    out.write_bytes(b"garbage")             # a new file: the cache entry is intact
    result = build(project)
    assert result["restored"] == ["board:image.other"]
    assert out.read_bytes() == good


def test_a_fresh_clone_with_only_the_cache_restores_everything(project: Path,
                                                                tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    (project / ".gitignore").write_text("build/\n")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "layouts"]):
        subprocess.run([git, *cmd], cwd=project, check=True, env={**os.environ, **env})
    build(project)
    before = outputs(project)
    clone = tmp_path / "clone"
    subprocess.run([git, "clone", "-q", str(project), str(clone)], check=True)
    shutil.copytree(project / "build" / ".cache", clone / "build" / ".cache")
    result = build(clone)
    # Images come from the cache; the disk is assembled from them (disks are not cached).
    assert result["built"] == ["board:disk"] and set(result["restored"]) == ALL - {"board:disk"}
    assert outputs(clone) == before
    assert ran(build(clone)) == set()


def test_cache_dir_is_movable_by_option_and_environment(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    build(project, "--cache-dir", str(cache))
    assert any(cache.rglob("*"))
    shutil.rmtree(project / "build")
    result = build(project, env={"DFSBUILD_CACHE_DIR": str(cache)})
    assert set(result["restored"]) == ALL - {"board:disk"}


def test_a_killed_build_leaves_nothing_taken_as_current(project: Path, tmp_path: Path) -> None:
    big = project / "trees" / "other" / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(256):
            f.write(block)
    reference = tmp_path / "reference"
    shutil.copytree(project, reference, symlinks=True)
    build(reference)
    expected = (reference / "build" / "board" / "other.img").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for where in ("written", "stored"):      # the fault hook: killed exactly there
        cache = str(tmp_path / f"cache-{where}")
        killed = subprocess.run([sys.executable, "-m", "dfsbuild", "build", "--cache-dir",
                                 cache], cwd=project, env={**env, FAULT_ENV: where},
                                capture_output=True, check=False)
        assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
        assert list((project / "build" / "board").glob(".*dfsbuild-tmp*"))  # died mid-way
        result = build(project, "--cache-dir", cache)
        assert result["failed"] == []
        assert (project / "build" / "board" / "other.img").read_bytes() == expected
        assert not list((project / "build" / "board").glob(".*dfsbuild-tmp*"))
        shutil.rmtree(project / "build")


def test_parallel_builds_with_doit_and_dfsbuild(project: Path, tmp_path: Path) -> None:
    build(project)
    expected = outputs(project)
    shutil.rmtree(project / "build")
    proc = run_cli("build", "-j", "2", cwd=project)
    assert "4 built" in proc.stdout
    assert outputs(project) == expected
    shutil.rmtree(project / "build")
    shutil.copy(ROOT / "dodo.py", project / "dodo.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    doit = subprocess.run([sys.executable, "-m", "doit", "-n", "2"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert doit.returncode == 0, doit.stderr
    assert outputs(project) == expected
    again = subprocess.run([sys.executable, "-m", "doit"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=300)
    assert "0 built, 0 patched, 0 restored from cache, 4 up to date" in again.stdout
    assert ran(build(project)) == set()  # doit and dfsbuild build share their state


def test_a_failing_image_reports_and_keeps_the_old_output(project: Path) -> None:
    build(project)
    out = project / "build" / "board" / "other.img"
    good = out.read_bytes()
    (project / "trees" / "other" / ("n" * 130)).write_text("")
    proc = run_cli("build", cwd=project, check=False)
    assert proc.returncode == 1
    # Planning finds it, before any task runs: the error names the layout and the image.
    assert "error: layouts/board.toml: image.other:" in proc.stderr
    assert "130 bytes" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == good

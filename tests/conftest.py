"""Shared fixtures: external tools (required under CI=true), ordered tmpfs trees, runners."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import BinaryIO

import pytest

from dfsbuild.fileio.atomic import atomic_output
from dfsbuild.fileio.sink import Sink
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.romfs.read import RomfsReader
from dfsbuild.images.romfs.write import plan_romfs
from dfsbuild.images.romfs.write import write_romfs as write_romfs_plan
from dfsbuild.tables import read_table
from dfsbuild.tables.base import DiskTable
from dfsbuild.trees.fstree import FsNode

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_tool(name: str) -> str:
    """Path of an external tool; skip without it, but fail under CI=true."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: see .ci/setup)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return path


@pytest.fixture
def ordered_dir() -> Iterator[Path]:
    """A directory on tmpfs, where readdir returns entries in reverse creation order."""
    base = Path("/dev/shm")
    if not base.is_dir():
        if IN_CI:
            pytest.fail("/dev/shm (tmpfs) is needed for byte comparisons with genromfs")
        pytest.skip("no /dev/shm tmpfs")
    with tempfile.TemporaryDirectory(dir=base, prefix="dfsbuild-test-") as d:
        yield Path(d)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m dfsbuild ARGS`` in a subprocess, text output."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "dfsbuild", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"dfsbuild {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def build_here(project: Path, *args: str) -> dict[str, list[str]]:
    """``dfsbuild build --json ARGS`` in this process, from ``project`` (quicker than a
    subprocess, and a test can patch what the build sees, such as the clock)."""
    from dfsbuild.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(project)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(["build", "--json", *args])
            except SystemExit as exc:
                assert not exc.code, err.getvalue()
    finally:
        os.chdir(cwd)
    data: dict[str, list[str]] = json.loads(out.getvalue())
    return data


def read_romfs(f: BinaryIO) -> RomfsReader:
    """Our romfs reader over a whole open file."""
    return RomfsReader(ByteSource(f))


def write_romfs(path: str, root: FsNode, volume: str, align: int = 16, *_: object) -> None:
    """Our romfs writer: plan, then stream into the file (as the build step does)."""
    plan = plan_romfs(root, volume, align, ("test", ""))
    with atomic_output(path) as fd:
        sink = Sink(fd, 0, plan.image_size)
        write_romfs_plan(plan, sink)
        sink.close()


def read_disk(f: BinaryIO, sector_size: int | None = None) -> DiskTable:
    return read_table(ByteSource(f), sector_size)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The engine tests' project (tests/engine_project.py)."""
    from tests.engine_project import make_project

    return make_project(tmp_path)

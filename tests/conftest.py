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


# Every CLI call as its own process (slower; what users run): DFSBUILD_TEST_SUBPROCESS=1.
SUBPROCESS = os.environ.get("DFSBUILD_TEST_SUBPROCESS", "") in ("1", "true", "yes")


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = True, isolated: bool = False) -> subprocess.CompletedProcess[str]:
    """``dfsbuild ARGS``: in this process, as ``main`` with its own environment, working
    directory and captured output (quick); as ``python -m dfsbuild`` in a subprocess when
    ``isolated`` (what a test of start-up, imports or signals needs) or under
    DFSBUILD_TEST_SUBPROCESS=1."""
    run = _cli_process if isolated or SUBPROCESS else _cli_here
    proc = run(list(args), cwd, env)
    if check and proc.returncode != 0:
        raise AssertionError(f"dfsbuild {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def _cli_process(args: list[str], cwd: Path | None,
                 env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "dfsbuild", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def _cli_here(args: list[str], cwd: Path | None,
              env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    from dfsbuild.cli.main import main

    out, err = io.BytesIO(), io.BytesIO()
    streams = [io.TextIOWrapper(b, encoding="utf-8", errors="surrogateescape",
                                write_through=True) for b in (out, err)]
    saved_env, saved_cwd, saved_streams = dict(os.environ), os.getcwd(), (sys.stdout, sys.stderr)
    os.environ.update(env or {})
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.stdout, sys.stderr = streams
        try:
            code = main(args)
        except SystemExit as exc:              # argparse: usage errors, --help, --version
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        for stream in streams:
            stream.flush()
        sys.stdout, sys.stderr = saved_streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["dfsbuild", *args], code,
                                       out.getvalue().decode("utf-8", "surrogateescape"),
                                       err.getvalue().decode("utf-8", "surrogateescape"))


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

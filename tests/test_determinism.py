"""Same layout and same input contents give the same bytes, wherever and whenever built."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfsbuild.clock import DEFAULT_EPOCH, EPOCH_1980, MAX_U32, build_time
from dfsbuild.errors import DfsbuildError
from tests.conftest import ROOT


def digests(build: Path) -> dict[str, str]:
    return {
        str(p.relative_to(build)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(build.rglob("*.img"))
    }


def copy_project(dest: Path, mtime: float) -> Path:
    for part in ("layouts", "samples"):
        shutil.copytree(ROOT / part, dest / part, symlinks=True)
    for p in dest.rglob("*"):
        if not p.is_symlink():
            os.utime(p, (mtime, mtime))
    return dest


def build_in(project: Path, umask: int, tz: str) -> None:
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "dfsbuild", "build"], cwd=project, env=env,
                   check=True, capture_output=True, preexec_fn=lambda: os.umask(umask))


def test_the_samples_build_to_identical_bytes_in_two_places(tmp_path: Path) -> None:
    a = copy_project(tmp_path / "first place", 1_000_000_000)
    b = copy_project(tmp_path / "b", 1_700_000_000)
    build_in(a, 0o022, "UTC")
    build_in(b, 0o077, "Asia/Kolkata")
    da, db = digests(a / "build"), digests(b / "build")
    assert da and da == db
    assert set(da) >= {"sample/rootfs.img", "sample/env.img", "sample/sample-disk.img"}


def test_build_time_rule() -> None:
    assert build_time({}) == DEFAULT_EPOCH
    assert build_time({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    assert build_time({"SOURCE_DATE_EPOCH": "0"}) == EPOCH_1980          # clamped up
    assert build_time({"SOURCE_DATE_EPOCH": str(1 << 40)}) == MAX_U32    # clamped down
    with pytest.raises(DfsbuildError, match="SOURCE_DATE_EPOCH"):
        build_time({"SOURCE_DATE_EPOCH": "yesterday"})

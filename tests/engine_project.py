"""The small project the engine tests share: three romfs images, one nested in another, and
a disk that is the outer image."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_cli

LAYOUT = """
schema = 1

[disk]
table = "none"
image = "outer"

[image.outer]
type = "romfs"
tree = "../trees/outer"
files."inner.img" = { image = "inner" }
files."extra/conf" = { file = "../conf.txt" }

[image.inner]
type = "romfs"
tree = "../trees/inner"

[image.other]
type = "romfs"
tree = "../trees/other"
"""


def make_project(tmp_path: Path) -> Path:
    p = tmp_path / "proj"
    for tree in ("outer", "inner", "other"):
        (p / "trees" / tree / "sub").mkdir(parents=True)
        (p / "trees" / tree / "sub" / "file.txt").write_text(f"{tree} data\n")
        (p / "trees" / tree / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(p / "trees" / tree / "run.sh", 0o755)
    (p / "trees" / "inner" / "ln").symlink_to("run.sh")
    (p / "conf.txt").write_text("conf\n")
    (p / "layouts").mkdir()
    (p / "layouts" / "board.toml").write_text(LAYOUT)
    return p


def build(project: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    proc = run_cli("build", "--json", *args, cwd=project, env=env)
    data: dict[str, list[str]] = json.loads(proc.stdout)
    return data


ALL = {"board:image.inner", "board:image.outer", "board:image.other", "board:disk"}


def ran(result: dict[str, list[str]]) -> set[str]:
    return set(result["built"]) | set(result["patched"]) | set(result["restored"])


def made(result: dict[str, list[str]]) -> set[str]:
    """Written again: built, or (a disk) patched in place."""
    return set(result["built"]) | set(result["patched"])


def outputs(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project / "build" / "board").iterdir())}

"""Extraction writes only inside the destination and never follows a stored symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dfsbuild.errors import ExtractError
from dfsbuild.images.base import FsReader
from dfsbuild.inspect.extract import extract
from dfsbuild.trees.fstree import FsNode, TreeBuilder
from tests.conftest import read_romfs, write_romfs


def image_of(tmp_path: Path, children: list[FsNode]) -> FsReader:
    """An image whose root holds exactly ``children`` (no name checks: hostile on purpose)."""
    root = FsNode("", "", "dir", 0o755, children=children)
    out = tmp_path / "hostile.img"
    write_romfs(str(out), root, "hostile", 16, ("t", ""))
    return read_romfs(open(out, "rb"))


@pytest.fixture
def payload(tmp_path: Path) -> str:
    p = tmp_path / "payload"
    p.write_bytes(b"evil")
    return str(p)


@pytest.mark.parametrize("name", ["../escaped", "a/../../escaped", "/abs", "x/"])
def test_names_that_leave_the_destination_are_refused(tmp_path: Path, payload: str,
                                                      name: str) -> None:
    reader = image_of(tmp_path, [FsNode(name, name, "file", 0o644, 4, source=payload)])
    dest = tmp_path / "a" / "dest"
    with pytest.raises(ExtractError, match="refusing"):
        extract(reader, str(dest))
    assert not (tmp_path / "a" / "escaped").exists()
    assert not (tmp_path / "escaped").exists()


def test_a_stored_symlink_is_never_followed(tmp_path: Path, payload: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    inner = FsNode("f", "a/f", "file", 0o644, 4, source=payload)
    reader = image_of(tmp_path, [
        FsNode("a", "a", "symlink", 0o777, len(str(outside)), target=str(outside)),
        FsNode("a", "a", "dir", 0o755, children=[inner]),
    ])
    with pytest.raises(ExtractError, match="already exists"):
        extract(reader, str(tmp_path / "dest"))
    assert list(outside.iterdir()) == []
    assert os.readlink(tmp_path / "dest" / "a") == str(outside)


def test_existing_files_are_not_overwritten(tmp_path: Path, payload: str) -> None:
    reader = image_of(tmp_path, [FsNode("f", "f", "file", 0o644, 4, source=payload)])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "f").write_bytes(b"mine")
    with pytest.raises(ExtractError, match="already exists"):
        extract(reader, str(dest))
    assert (dest / "f").read_bytes() == b"mine"


def test_a_full_tree_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d" / "e").mkdir(parents=True)
    (src / "run").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "run", 0o755)
    (src / "d" / "data").write_bytes(bytes(range(256)) * 300)
    os.link(src / "d" / "data", src / "d" / "e" / "same")
    (src / "d" / "ln").symlink_to("../run")
    os.mkfifo(src / "pipe")
    from dfsbuild.trees.digest import DigestCache
    from dfsbuild.trees.walk import scan_tree

    builder = TreeBuilder()
    builder.add_scan(scan_tree(str(src), (), DigestCache(None)))
    builder.put(FsNode("console", "dev/console", "char", 0o600, major=5, minor=1))
    out = tmp_path / "r.img"
    write_romfs(str(out), builder.finish(), "rt", 16, ("t", ""))
    dest = tmp_path / "dest"
    with open(out, "rb") as f:
        report = extract(read_romfs(f), str(dest))
    assert (dest / "run").read_bytes() == b"#!/bin/sh\n"
    assert (dest / "run").stat().st_mode & 0o777 == 0o755
    assert (dest / "d" / "data").read_bytes() == bytes(range(256)) * 300
    assert (dest / "d" / "e" / "same").stat().st_ino == (dest / "d" / "data").stat().st_ino
    assert os.readlink(dest / "d" / "ln") == "../run"
    assert (dest / "pipe").is_fifo()
    if os.geteuid() == 0:
        assert (dest / "dev" / "console").is_char_device()
        assert os.major((dest / "dev" / "console").stat().st_rdev) == 5
    else:
        assert report.skipped == ["dev/console (char 5:1)"]

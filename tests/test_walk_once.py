"""The engine walks an input tree once per build: the keys-by-stats pass (``stat_lines``)
keeps its walk, and the scan that keys the image from its contents describes that walk
instead of listing the directories again. Both must give what a scan of its own gives, with
the same exclusions, for every kind of entry; and the record of where an output holds which
content reads back as written, or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfsbuild.engine import extentfile
from dfsbuild.engine.state import StateStore
from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.walk import Stats, scan_tree, stat_lines


def _tree(root: Path) -> None:
    for rel, data in [("a.txt", b"a"), ("B/x.bin", b"x" * 300), ("B/c/deep.txt", b"deep"),
                      ("skip.o", b"o"), ("B/skip.o", b"o2"), ("obj/inner.txt", b"i"),
                      ("\u00e9t\u00e9.txt", b"e"), ("Z", b"")]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "link").symlink_to("a.txt")
    (root / "B" / "loop").symlink_to("..")
    os.mkfifo(root / "fifo")
    os.link(root / "a.txt", root / "B" / "hard")


@pytest.mark.parametrize("exclude", [(), ("*.o",), ("*.o", "obj"), ("B",)])
def test_a_scan_of_the_kept_walk_equals_a_scan_of_its_own(tmp_path: Path,
                                                          exclude: tuple[str, ...]) -> None:
    _tree(tmp_path)
    root = str(tmp_path)
    seen: Stats = {}
    lines, _ = stat_lines(root, exclude, seen)
    assert (root, exclude) in seen
    kept = scan_tree(root, exclude, DigestCache(None), None, seen)
    assert (root, exclude) not in seen                  # a walk is used once
    own = scan_tree(root, exclude, DigestCache(None))
    assert kept == own
    assert len(lines) == len(own)                       # a line per entry, the root's too
    assert [e.relpath for e in own][1:] == [line.split("\0")[0] for line in lines[1:]]


def test_a_kept_walk_of_other_exclusions_is_not_used(tmp_path: Path) -> None:
    _tree(tmp_path)
    root = str(tmp_path)
    seen: Stats = {}
    stat_lines(root, ("*.o",), seen)
    entries = scan_tree(root, (), DigestCache(None), None, seen)
    assert "skip.o" in {e.relpath for e in entries}
    assert (root, ("*.o",)) in seen


extents_st = st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2**40),
                                st.text(st.characters(blacklist_characters="\0",
                                                      blacklist_categories=("Cs",)),
                                        max_size=45)),
                      max_size=40)
names_st = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                   min_size=1, max_size=20)


@given(extents_st, st.lists(names_st, max_size=40), st.text(max_size=70))
def test_the_extents_file_reads_back_as_written(extents: list[tuple[int, int, str]],
                                                paths: list[str], key: str) -> None:
    names = {e[0]: p for e, p in zip(extents, paths, strict=False)}
    data = extentfile.encode(key, extents, names)
    columns = extentfile.decode(data, key)
    assert columns is not None
    at, size, what, named = columns
    assert list(zip(at, size, what, strict=True)) == extents
    assert named == [names.get(a, "") for a in at]
    assert extentfile.decode(data, key + "x") is None
    if extents:
        assert extentfile.decode(data[:-1 - len(extents[-1][2]) - 20], key) is None


def test_damaged_or_old_extents_are_not_used(tmp_path: Path) -> None:
    state = StateStore(str(tmp_path))
    state.record_extents("l:image.a", "K", [(0, 10, "a" * 40), (10, 5, "meta:x")],
                         {0: "dir/f\udcff"})
    spans, names = state.named_extents("l:image.a", "K") or ({}, {})
    assert spans == {(0, 10): "a" * 40, (10, 5): "meta:x"}
    assert names == {"dir/f\udcff": (0, 10)}
    assert state.named_extents("l:image.a", "other") is None
    path = tmp_path / "l__image.a.extents"
    whole = path.read_bytes()
    for damaged in (whole[:40], b"", b"{\"key\": \"K\", \"extents\": [[0, 10, \"x\", null]]}",
                    whole.replace(b'"count": 2', b'"count": 3')):
        path.write_bytes(damaged)
        assert state.named_extents("l:image.a", "K") is None

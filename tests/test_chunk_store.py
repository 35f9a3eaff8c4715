"""The cache as a store of pieces: an edited image costs the cache its changed files and its
metadata, not a second copy; every stored output comes back byte for byte; prune keeps the
pieces other entries still use."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfsbuild.engine.cache import BadEntry, OutputCache
from dfsbuild.errors import InternalError
from dfsbuild.fileio.sink import ZEROS, Extent
from tests.conftest import build_here

LAYOUT = """schema = 1
[image.rom]
type = "romfs"
tree = "../tree"
"""


def test_ten_edits_that_move_every_later_file_cost_little_more_than_one_image(
        tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for i in range(500):
        (tree / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 7}" / f"f{i:03}.bin").write_bytes(os.urandom(4000 + 97 * i))
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "l.toml").write_text(LAYOUT)
    build_here(tmp_path)
    image = tmp_path / "build" / "l" / "rom.img"
    one = image.stat().st_size
    versions = []
    for n in range(10):               # each edit grows a file early in the image
        with open(tree / "d0" / f"f{7 * n:03}.bin", "ab") as f:
            f.write(b"one more line %d\n" % n)
        assert build_here(tmp_path)["built"] == ["l:image.rom"]
        versions.append(image.read_bytes())
    cache = OutputCache(tmp_path / "build" / ".cache")
    assert len(cache.entries()) == 11
    stored = cache.stored_bytes()
    print(f"ten edits: {stored} bytes stored for a {one}-byte image")
    assert stored <= 1.2 * one, (stored, one)
    # The latest entry restores byte for byte.
    image.unlink()
    assert build_here(tmp_path)["restored"] == ["l:image.rom"]
    assert image.read_bytes() == versions[-1]


def blob_id(data: bytes) -> str:
    """What ``git hash-object`` gives for ``data``: the content id extents carry."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


SEGMENTS = st.lists(st.tuples(st.sampled_from(["file", "zeros", "meta", "hole"]),
                              st.integers(1, 70_000)), min_size=1, max_size=12)


def _compose(path: Path, segments: list[tuple[str, int]]) -> tuple[bytes, list[Extent]]:
    """A file of the given segments, and the extents a writer would note for it."""
    data = bytearray()
    extents: list[Extent] = []
    with open(path, "wb") as f:
        for kind, n in segments:
            at = len(data)
            if kind == "file":
                chunk = os.urandom(n)
                extents.append((at, n, blob_id(chunk)))
            elif kind == "zeros":
                chunk = bytes(n)
                extents.append((at, n, ZEROS))
            elif kind == "meta":
                chunk = os.urandom(n % 300 + 1)
            else:
                chunk = bytes(n)
            data += chunk
            if kind in ("zeros", "hole"):
                f.seek(len(chunk), os.SEEK_CUR)
            else:
                f.write(chunk)
        f.truncate(len(data))
    return bytes(data), extents


@settings(max_examples=40, deadline=None)
@given(segments=SEGMENTS, extents_are=st.sampled_from(["right", "overlapping", "lying"]))
def test_every_stored_output_comes_back_byte_for_byte(
        tmp_path_factory: pytest.TempPathFactory, segments: list[tuple[str, int]],
        extents_are: str) -> None:
    base = tmp_path_factory.mktemp("store")
    data, extents = _compose(base / "out", segments)
    lie = [(at, n, "ab" * 20) for at, n, what in extents if what != ZEROS][:1]
    if extents_are == "overlapping":     # not a writer's: none is trusted, all is rest
        extents = [*extents, (0, len(data), ZEROS)]
    elif extents_are == "lying":         # a file that is not the one named
        extents = [e for e in extents if e[:2] != (lie or [(-1, -1)])[0][:2]] + lie
    cache = OutputCache(base / "cache")
    key = hashlib.sha256(repr(segments).encode()).hexdigest()
    fd = os.open(base / "out", os.O_RDONLY)
    try:
        if extents_are == "lying" and lie:
            with pytest.raises(InternalError, match="not the file its extent names"):
                cache.store(key, fd, len(data), None, extents)
            assert cache.entry(key) is None
            return
        cache.store(key, fd, len(data), None, extents)
    finally:
        os.close(fd)
    fd = os.open(base / "back", os.O_RDWR | os.O_CREAT)
    try:
        found = cache.restore(key, fd)
    finally:
        os.close(fd)
    assert found is not None and found[0].size == len(data)
    if extents_are == "right":            # the files' extents come back with the bytes
        assert sorted(found[1]) == sorted(e for e in extents if e[2] != ZEROS)
    assert (base / "back").read_bytes() == data


def _store(cache: OutputCache, path: Path, key: str, extents: list[Extent]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        cache.store(key, fd, path.stat().st_size, None, extents)
    finally:
        os.close(fd)


def _restore(cache: OutputCache, key: str, path: Path) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        assert cache.restore(key, fd) is not None
    finally:
        os.close(fd)


def test_prune_keeps_the_pieces_that_other_entries_use(tmp_path: Path) -> None:
    shared = os.urandom(200_000)
    (tmp_path / "a").write_bytes(b"0123456789" + shared)     # the same file data in both
    a_ext: list[Extent] = [(10, len(shared), blob_id(shared))]
    (tmp_path / "b").write_bytes(b"other header" + shared)
    b_ext = [(12, len(shared), a_ext[0][2])]
    cache = OutputCache(tmp_path / "cache")
    _store(cache, tmp_path / "a", "a" * 64, a_ext)
    _store(cache, tmp_path / "b", "b" * 64, b_ext)
    assert cache.stored_bytes() < 2 * len(shared)        # the file data once
    old = cache.entries()[0].last_used - 100 * 86400
    os.utime(cache.entries_dir / "aa" / f"{'a' * 64}.json", (old, old))
    pruned = cache.prune(None, 30)
    assert [e.key for e in pruned.removed] == ["a" * 64]
    assert pruned.freed < 1000                          # only a's own header went
    _restore(cache, "b" * 64, tmp_path / "b2")
    assert (tmp_path / "b2").read_bytes() == (tmp_path / "b").read_bytes()
    assert cache.prune(0, None).freed > len(shared)
    assert cache.stored_bytes() == 0 and cache.entries() == []


def test_a_missing_piece_is_a_bad_entry_not_a_short_output(tmp_path: Path) -> None:
    _, extents = _compose(tmp_path / "out", [("meta", 50), ("file", 5000), ("meta", 9)])
    cache = OutputCache(tmp_path / "cache")
    _store(cache, tmp_path / "out", "c" * 64, extents)
    (piece,) = [p for p in cache.pieces_dir.rglob("*") if p.is_file()
                and p.stat().st_size > 5000]
    piece.unlink()
    fd = os.open(tmp_path / "back", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(BadEntry, match="cannot open"):
            cache.restore("c" * 64, fd)
    finally:
        os.close(fd)
    assert cache.entry("c" * 64) is None


def test_prune_removes_the_layouts_of_earlier_versions(tmp_path: Path) -> None:
    cache = OutputCache(tmp_path / "cache")
    old = tmp_path / "cache" / "v2" / "ab"
    old.mkdir(parents=True)
    (old / ("ab" * 32)).write_bytes(bytes(5000))
    _, extents = _compose(tmp_path / "out", [("meta", 50), ("file", 5000)])
    _store(cache, tmp_path / "out", "d" * 64, extents)
    pruned = cache.prune(None, 30)
    assert pruned.freed >= 5000 and not (tmp_path / "cache" / "v2").exists()
    assert cache.entry("d" * 64) is not None            # the current layout is kept

"""An image rebuilt over a copy of its previous build writes only what differs (its extents
say where each file's content lies), and the result is byte for byte what a fresh write of
the same plan gives, over random sequences of edits (romfs, FAT, TrivialFS, cpio); each one
put back from the cache's pieces is the same again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.fileio import sink as sink_module
from tests.conftest import build_here

LAYOUT = """schema = 1
[image.rom]
type = "romfs"
tree = "../tree"
[image.fat]
type = "fat"
tree = "../tree"
[image.env]
type = "trivialfs"
tree = "../tree"
align = 1
[image.initrd]
type = "cpio"
tree = "../tree"
"""
IMAGES = ("rom.img", "fat.img", "env.img", "initrd.img")

OPS = st.lists(st.tuples(st.sampled_from(["add", "remove", "grow", "shrink", "rename",
                                          "chmod", "rewrite"]),
                         st.integers(0, 1000)), min_size=1, max_size=5)


def _files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file())


def _apply(tree: Path, op: str, n: int) -> None:
    files = _files(tree)
    if op == "add" or not files:
        d = tree / f"d{n % 3}"
        d.mkdir(exist_ok=True)
        (d / f"new{n}.bin").write_bytes(os.urandom(n * 37 % 9000))
        return
    victim = files[n % len(files)]
    if op == "remove":
        victim.unlink()
    elif op == "grow":
        with open(victim, "ab") as f:
            f.write(os.urandom(1 + n % 5000))
    elif op == "shrink":
        os.truncate(victim, victim.stat().st_size // 2)
    elif op == "rename":
        victim.rename(victim.with_name(f"moved{n}"))
    elif op == "chmod":
        victim.chmod(0o755 if not victim.stat().st_mode & 0o100 else 0o644)
    else:                                    # same size, other bytes
        victim.write_bytes(os.urandom(victim.stat().st_size))


def _project(base: Path) -> Path:
    tree = base / "tree"
    for i in range(6):
        (tree / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 2}" / f"f{i}.bin").write_bytes(os.urandom(1000 + 3000 * i))
    (base / "layouts").mkdir()
    (base / "layouts" / "l.toml").write_text(LAYOUT)
    return tree


def _same_as_fresh(base: Path, why: object) -> None:
    fresh = base / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    build_here(base, "--build-dir", str(fresh), "--no-cache")
    for name in IMAGES:
        assert (base / "build" / "l" / name).read_bytes() == \
            (fresh / "l" / name).read_bytes(), (why, name)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_a_reused_image_equals_a_fresh_write(tmp_path_factory: pytest.TempPathFactory,
                                              ops: list[tuple[str, int]]) -> None:
    base = tmp_path_factory.mktemp("reuse")
    tree = _project(base)
    build_here(base)
    for op, n in ops:
        _apply(tree, op, n)
        build_here(base)
        _same_as_fresh(base, (op, n))
    for name in IMAGES:
        (base / "build" / "l" / name).unlink()
    assert len(build_here(base)["restored"]) == len(IMAGES)
    _same_as_fresh(base, "restored")


@pytest.mark.parametrize("first", ["built", "restored"])
def test_an_edit_in_place_writes_only_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                first: str) -> None:
    """A file whose bytes changed, its size kept: romfs, FAT and TrivialFS get that file's
    data and nothing else (a data patch); cpio is rewritten, every other file's bytes left in
    place. Also when the images were put back from the cache (a fresh clone): the restore
    notes where each file's data lies, so all four are rewritten that way (it does not know
    the files' names a data patch needs)."""
    tree = _project(tmp_path)
    build_here(tmp_path)
    if first == "restored":               # as in a fresh clone: no outputs, no extents
        for name in IMAGES:
            (tmp_path / "build" / "l" / name).unlink()
        for extents in (tmp_path / "build" / ".dfsbuild" / "state").glob("*.extents"):
            extents.unlink()
        assert len(build_here(tmp_path)["restored"]) == len(IMAGES)
    reused: list[int] = []
    close = sink_module.Sink.close

    def noting(self: sink_module.Sink) -> None:
        reused.append(self.reused)
        close(self)
    monkeypatch.setattr(sink_module.Sink, "close", noting)
    victim = tree / "d1" / "f5.bin"
    victim.write_bytes(os.urandom(victim.stat().st_size))
    result = build_here(tmp_path)
    patched = {"l:image.rom", "l:image.fat", "l:image.env"} if first == "built" else set()
    assert set(result["patched"]) == patched
    assert set(result["built"]) == {"l:image.rom", "l:image.fat", "l:image.env",
                                    "l:image.initrd"} - patched
    total = sum(p.stat().st_size for p in _files(tree))
    # Every image rewritten left all the other files' bytes in place.
    assert len(reused) == 4 - len(patched) and all(
        n >= total - victim.stat().st_size for n in reused), reused
    for task in patched:                   # a data patch wrote the file's data alone
        changes = tmp_path / "build" / ".dfsbuild" / "state" / \
            f"{task.replace(':', '__')}.changes"
        spans = json.loads(changes.read_text())["spans"]
        assert [n for _, n in spans] == [victim.stat().st_size], (task, spans)
    _same_as_fresh(tmp_path, "edit")


def test_an_edit_undone_is_patched_back_not_restored(tmp_path: Path) -> None:
    """The cache holds the output of the undone edit's key, but the output in place differs
    from it by one file: writing that file back beats copying the whole image from the
    cache (a branch checked out again, ``git stash`` and ``pop``)."""
    tree = _project(tmp_path)
    build_here(tmp_path)
    first = {name: (tmp_path / "build" / "l" / name).read_bytes() for name in IMAGES}
    victim = tree / "d1" / "f5.bin"
    before = victim.read_bytes()
    victim.write_bytes(os.urandom(len(before)))
    build_here(tmp_path)
    victim.write_bytes(before)
    result = build_here(tmp_path)
    assert {"l:image.rom", "l:image.fat", "l:image.env"} <= set(result["patched"]), result
    assert not {"l:image.rom", "l:image.fat", "l:image.env"} & set(result["restored"])
    for name in IMAGES:
        assert (tmp_path / "build" / "l" / name).read_bytes() == first[name], name


def test_a_zero_run_over_old_bytes_becomes_a_hole(tmp_path: Path) -> None:
    """A reused file's old bytes where the new image has a long zero run read as zeros, and
    are a hole as in a fresh write (a block map of either is the same)."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(1 << 20))
    fd = os.open(path, os.O_RDWR)
    try:
        sink = sink_module.Sink(fd, 0, 1 << 20, reuse={})
        sink.write(b"head")
        sink.zeros_or_hole((1 << 20) - 4)
        sink.close()
        data_at = os.lseek(fd, 4096, os.SEEK_DATA) if hasattr(os, "SEEK_DATA") else None
    except OSError:                        # ENXIO: no data after the first block
        data_at = None
    finally:
        os.close(fd)
    assert path.read_bytes() == b"head" + bytes((1 << 20) - 4)
    assert data_at is None


@pytest.mark.parametrize("way", ["rewrite", "data patch"])
def test_a_rewrite_that_fails_halfway_is_never_taken_as_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], way: str) -> None:
    """The image is rewritten in place (every file grown), or its files' data patched
    (every file's bytes changed, sizes kept); a fault halfway (here the disk filling up)
    leaves it "in progress": the next build writes it whole, and it equals a fresh write."""
    import errno

    from dfsbuild.cli.main import main
    from dfsbuild.engine import datapatch

    tree = _project(tmp_path)
    build_here(tmp_path)
    rom = tmp_path / "build" / "l" / "rom.img"
    inode = rom.stat().st_ino
    before = {f: f.read_bytes() for f in _files(tree)}
    for f in before:              # (the first file's data is in the checksummed 512 bytes)
        if way == "rewrite" or f.name != "f0.bin":
            f.write_bytes(os.urandom(f.stat().st_size + (1 if way == "rewrite" else 0)))
    module, name = (sink_module.Sink, "copy") if way == "rewrite" else \
        (datapatch, "_copy_checked")
    copy = getattr(module, name)
    calls = []

    def fill_up(*args: object) -> None:
        calls.append(args)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        copy(*args)
    monkeypatch.setattr(module, name, fill_up)
    monkeypatch.chdir(tmp_path)
    assert main(["build", "-q", "l:image.rom"]) != 0
    assert "incomplete; the next build writes it whole" in capsys.readouterr().err
    assert rom.stat().st_ino == inode         # it was written in place, and stopped
    monkeypatch.undo()
    # Back to the recorded inputs: only the "in progress" mark stops the old extents from
    # vouching for bytes the failed rewrite replaced.
    for f, data in before.items():
        f.write_bytes(data)
    result = build_here(tmp_path, "--no-cache")      # the cache would serve the old image
    assert "l:image.rom" in result["built"]
    assert len(calls) == 3
    _same_as_fresh(tmp_path, "after the fault")


DISK = """schema = 1
[image.rom]
type = "romfs"
tree = "../tree"
[disk]
table = "mbr"
size = "4MiB"
[[disk.partition]]
name = "rom"
image = "rom"
"""


@pytest.mark.parametrize("edit", ["same size", "grown"])
def test_the_disk_gets_only_the_spans_the_image_rewrite_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    from dfsbuild.engine import write as write_module

    tree = _project(tmp_path)
    (tmp_path / "layouts" / "l.toml").write_text(DISK)
    build_here(tmp_path)
    copied: list[int] = []
    copy_range = write_module.copy_range

    def counting(src: int, dst: int, n: int, *args: object, **kw: object) -> None:
        copied.append(n)
        copy_range(src, dst, n, *args, **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(write_module, "copy_range", counting)
    victim = tree / "d1" / "f3.bin"
    data = os.urandom(victim.stat().st_size + (100 if edit == "grown" else 0))
    victim.write_bytes(data)
    result = build_here(tmp_path)
    if edit == "same size":                 # the file's data alone: a data patch
        assert result["built"] == [] and result["patched"] == ["l:image.rom", "l:disk"]
    else:
        assert result["built"] == ["l:image.rom"] and result["patched"] == ["l:disk"]
    image = (tmp_path / "build" / "l" / "rom.img").stat().st_size
    assert 0 < sum(copied) < image if edit == "same size" else 0 < sum(copied) <= image
    if edit == "same size":
        assert sum(copied) <= len(data) + 4096, copied   # the file, and a header at most
    fresh = tmp_path / "fresh"
    build_here(tmp_path, "--build-dir", str(fresh), "--no-cache")
    assert (tmp_path / "build" / "l" / "l.img").read_bytes() == \
        (fresh / "l" / "l.img").read_bytes()


PATCHABLE = LAYOUT + """[image.mapped]
type = "fat"
tree = "../tree"
map = "offsets.txt"
[image.ro]
type = "erofs"
tree = "../tree"
[image.packed]
type = "erofs"
tree = "../tree"
tail-pack = true
"""


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.lists(st.integers(0, 1000), min_size=1, max_size=3), min_size=1,
                      max_size=4))
def test_data_patches_equal_a_fresh_write(tmp_path_factory: pytest.TempPathFactory,
                                          edits: list[list[int]]) -> None:
    """Files' bytes changed, their sizes kept, a few at a time: romfs, FAT, TrivialFS and
    EROFS patch those files' data (romfs not when a change falls in its first 512 bytes, which its
    superblock checksum covers), a FAT with a map file (it lists every file's sha256) and
    cpio and a tail-packed EROFS (a file in two parts) are rewritten; each result equals a
    fresh write."""
    base = tmp_path_factory.mktemp("datapatch")
    tree = _project(base)
    (base / "layouts" / "l.toml").write_text(PATCHABLE)
    build_here(base)
    for victims in edits:
        files = _files(tree)
        for n in victims:
            _apply(tree, "rewrite", n)
        result = build_here(base)
        assert {"l:image.mapped", "l:image.initrd", "l:image.packed"} <= set(result["built"]), \
            result
        assert {"l:image.fat", "l:image.env", "l:image.ro"} <= set(result["patched"]), result
        first = files[0] in [files[n % len(files)] for n in victims]
        assert ("l:image.rom" in result["patched"]) != first, (victims, result)
        _same_as_fresh(base, victims)
        for extra in ("mapped.img", "ro.img", "packed.img"):
            fresh = base / "fresh" / "l" / extra
            assert (base / "build" / "l" / extra).read_bytes() == fresh.read_bytes()
    # The cache's entries of patched images are derived from the previous ones: put back,
    # each is the image again.
    for name in (*IMAGES, "mapped.img", "ro.img", "packed.img"):
        (base / "build" / "l" / name).unlink()
    assert len(build_here(base)["restored"]) == len(IMAGES) + 3
    _same_as_fresh(base, "restored")

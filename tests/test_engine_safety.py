"""The engine under attack: inputs changing mid-build, damaged cache entries, shared caches,
concurrent builds, kills during a patch, full and read-only disks, damaged state."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dfsbuild.engine.jobs import disk_job, image_job
from dfsbuild.engine.lock import BuildLock
from dfsbuild.engine.project import plan_project, prepare
from dfsbuild.engine.settings import Settings
from dfsbuild.engine.step import Reuse, produce
from dfsbuild.engine.write import Rewritten
from dfsbuild.errors import InputError
from dfsbuild.faults import FAULT_ENV
from tests.conftest import IN_CI, ROOT, run_cli
from tests.engine_project import build, outputs


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "v3" / "pieces").rglob("*") if p.is_file())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- inputs are trusted only as read -------------------------------------------------------------

@pytest.mark.parametrize("aged", [False, True], ids=["racy-input", "aged-input"])
def test_an_input_rewritten_during_the_write_never_reaches_the_cache(
        project: Path, aged: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = project / "trees" / "other" / "sub" / "file.txt"
    settings = Settings.from_env(str(project / "build"))
    monkeypatch.chdir(project)
    (lp,) = plan_project(["layouts"], settings)
    plan = lp.images["other"]
    job = image_job(plan, lp)
    if aged:   # seen 3 s after their last change: checked by their stamps, not hashed again
        job.inputs = tuple(dataclasses.replace(i, seen_ns=i.seen_ns + 3_000_000_000)
                           for i in job.inputs)
    rewrite = job.rewrite
    assert rewrite is not None

    def write_then_edit(fd: int, reuse: Reuse | None) -> Rewritten:
        done = rewrite(fd, reuse)      # the old content is in the image now; the file
        victim.write_text(victim.read_text().upper())      # changes, same size
        return done

    job.rewrite = write_then_edit
    with pytest.raises(InputError, match=r"file\.txt: changed during the build"):
        produce(job, settings)
    assert entries(Path(settings.cache_dir)) == []
    assert not Path(plan.output).exists()
    assert not list(Path(plan.output).parent.glob(".*dfsbuild-tmp*"))
    # The next build hashes the new content and agrees with a clean build of it.
    result = build(project)
    assert "board:image.other" in result["built"]


# -- cache entries are immutable and checked -----------------------------------------------------

def pieces_of(project: Path, task: str) -> dict[str, Path]:
    """The pieces of the cache entry of ``task``'s last build: "group" and "rest" kinds."""
    state = project / "build" / ".dfsbuild" / "state" / f"{task.replace(':', '__')}.json"
    key = json.loads(state.read_text())["key"]
    cache = project / "build" / ".cache" / "v3"
    record = json.loads((cache / "entries" / key[:2] / f"{key}.json").read_text())
    found = {"group": [g for g, _ in record["groups"]], "rest": record["rest"]}
    return {kind: cache / "pieces" / ids[0][:2] / ids[0] for kind, ids in found.items() if ids}


@pytest.mark.parametrize("kind", ["group", "rest"])
def test_a_piece_with_a_flipped_byte_is_refused_and_dropped(project: Path, kind: str) -> None:
    build(project)
    out = project / "build" / "board" / "other.img"
    good = out.read_bytes()
    piece = pieces_of(project, "board:image.other")[kind]
    st = piece.stat()
    before = piece.read_bytes()
    os.chmod(piece, 0o644)
    data = bytearray(before)
    data[-1] ^= 0x01                       # the last byte: file data in a group
    piece.write_bytes(bytes(data))
    os.utime(piece, ns=(st.st_atime_ns, st.st_mtime_ns))   # size and mtime kept
    out.unlink()
    proc = run_cli("build", "--json", cwd=project)
    result = json.loads(proc.stdout)
    assert result["built"] == ["board:image.other"]
    assert "damaged" in proc.stderr and ("content id" in proc.stderr or "its id" in proc.stderr)
    assert out.read_bytes() == good
    assert piece.read_bytes() == before      # stored again from the fresh build
    out.unlink()
    assert build(project)["restored"] == ["board:image.other"]
    assert out.read_bytes() == good


def test_a_piece_replaced_by_a_symlink_is_never_followed(project: Path) -> None:
    build(project)
    out = project / "build" / "board" / "other.img"
    good = out.read_bytes()
    piece = pieces_of(project, "board:image.other")["group"]
    bait = project / "bait"
    held = piece.read_bytes()
    bait.write_bytes(held)                   # the right bytes, but not the cache's file
    piece.unlink()
    piece.symlink_to(bait)
    out.unlink()
    proc = run_cli("build", "--json", cwd=project)
    assert json.loads(proc.stdout)["built"] == ["board:image.other"]
    assert "not a regular file" in proc.stderr or "cannot open" in proc.stderr
    assert not out.is_symlink() and out.read_bytes() == good
    assert not piece.is_symlink() and piece.read_bytes() == held   # stored again
    assert bait.read_bytes() == held


def test_outputs_are_never_shared_with_the_cache_or_other_checkouts(project: Path,
                                                                    tmp_path: Path) -> None:
    cache = tmp_path / "shared-cache"
    other = tmp_path / "other-checkout"
    shutil.copytree(project, other, symlinks=True)
    build(project, "--cache-dir", str(cache))
    assert set(build(other, "--cache-dir", str(cache))["restored"]) >= {"board:image.other"}
    mine = project / "build" / "board" / "other.img"
    theirs = other / "build" / "board" / "other.img"
    good = theirs.read_bytes()
    assert mine.stat().st_nlink == 1 and theirs.stat().st_nlink == 1
    with open(mine, "r+b") as f:          # a dd-style patch of one checkout's output
        f.seek(0)
        f.write(b"PATCHED!")
    assert theirs.read_bytes() == good
    assert all(e.stat().st_mode & 0o222 == 0 for e in entries(cache))   # read-only entries
    theirs.unlink()
    assert build(other, "--cache-dir", str(cache))["restored"] == ["board:image.other"]
    assert theirs.read_bytes() == good


# -- one build at a time -------------------------------------------------------------------------

def test_two_builds_at_once_both_succeed_with_the_right_bytes(project: Path,
                                                             tmp_path: Path) -> None:
    with open(project / "trees" / "other" / "big.bin", "wb") as f:
        f.write(os.urandom(64 << 20))
    reference = tmp_path / "reference"
    shutil.copytree(project, reference, symlinks=True)
    build(reference)
    expected = outputs(reference)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "dfsbuild", "build"], cwd=project,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert any("waiting for another build" in err for _, err in results)
    assert outputs(project) == expected
    assert not list((project / "build" / "board").glob(".*dfsbuild-tmp*"))


def test_no_wait_fails_at_once_while_another_build_runs(project: Path) -> None:
    lock = BuildLock.acquire(str(project / "build"))
    try:
        proc = run_cli("build", "--no-wait", cwd=project, check=False)
    finally:
        lock.release()
    assert proc.returncode == 1
    assert f"another build is running there (process {os.getpid()})" in proc.stderr
    assert not (project / "build" / "board").exists()


def test_temporaries_of_live_builds_are_kept_and_dead_ones_removed(project: Path) -> None:
    build(project)
    board = project / "build" / "board"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        live = board / f".other.img.dfsbuild-tmp-{sleeper.pid}"
        live.write_bytes(b"in use")
        gone = subprocess.Popen(["true"])
        gone.wait()
        dead = board / f".other.img.dfsbuild-tmp-{gone.pid}"
        dead.write_bytes(b"left over")
        (board / "other.img").unlink()
        build(project)
        assert live.exists() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# -- disks are patched, never left half-patched and current -------------------------------------

DISK_LAYOUT = """schema = 1
[disk]
table = "mbr"
size = "600MiB"
disk-id = "0x12345678"
[[disk.partition]]
name = "small"
image = "small"
size = "4MiB"
[[disk.partition]]
name = "big"
image = "big"
size = "rest"
[image.small]
type = "romfs"
tree = "../small"
[image.big]
type = "raw"
file = "../big.bin"
"""


@pytest.fixture
def disk_project(tmp_path: Path) -> Path:
    p = tmp_path / "diskproj"
    (p / "small").mkdir(parents=True)
    (p / "small" / "a.txt").write_text("version 1\n")
    (p / "layouts").mkdir()
    (p / "layouts" / "d.toml").write_text(DISK_LAYOUT)
    with open(p / "big.bin", "wb") as f:
        f.write(os.urandom(200 << 20))
    return p


def disk_of(p: Path) -> Path:
    return p / "build" / "d" / "d.img"


def test_a_patch_rewrites_only_the_changed_partition(disk_project: Path, tmp_path: Path) -> None:
    build(disk_project)
    disk = disk_of(disk_project)
    ino = disk.stat().st_ino
    (disk_project / "small" / "a.txt").write_text("version 2\n")
    result = build(disk_project)
    assert result["patched"] == ["d:disk"] and result["built"] == ["d:image.small"]
    assert disk.stat().st_ino == ino
    fresh = tmp_path / "fresh"
    shutil.copytree(disk_project, fresh, symlinks=True, ignore=shutil.ignore_patterns("build"))
    build(fresh)
    assert sha(disk_of(fresh)) == sha(disk)


def test_an_interrupted_patch_is_never_taken_as_current(disk_project: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    build(disk_project)
    with open(disk_project / "big.bin", "r+b") as f:
        f.write(b"new head")
    settings = Settings.from_env(str(disk_project / "build"))
    monkeypatch.chdir(disk_project)
    (lp,) = plan_project(["layouts"], settings)
    produce(image_job(lp.images["big"], lp), settings)
    prepare([lp.disk] if lp.disk is not None else [])
    import dfsbuild.engine.write as write

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt    # the process dies half-way through the copy
    monkeypatch.setattr(write, "copy_range", crash)
    assert lp.disk is not None
    with pytest.raises(KeyboardInterrupt):
        produce(disk_job(lp.disk, lp), settings)
    assert not settings.state.is_current(lp.disk.task, lp.disk.key, lp.disk.output)
    monkeypatch.undo()
    result = build(disk_project)
    assert result["built"] == ["d:disk"]          # a full write, not a patch of a mixed disk


def test_kill_9_during_a_patch_never_leaves_a_disk_taken_as_current(disk_project: Path,
                                                                    tmp_path: Path) -> None:
    """Killed (SIGKILL, through the fault hook, so exactly there) while the image is being
    rewritten in place and while the disk is being patched: the next build gives what a
    clean build of the same inputs gives."""
    build(disk_project)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    points = ("rewrite-begun", "rewritten", "patch-begun", "patch-region-written")
    for n, where in enumerate(points):
        with open(disk_project / "big.bin", "r+b") as f:
            f.write(n.to_bytes(8, "little") * 4)
        reference = tmp_path / f"ref{n}"
        shutil.copytree(disk_project, reference, symlinks=True,
                        ignore=shutil.ignore_patterns("build"))
        build(reference, "--no-cache")
        killed = subprocess.run([sys.executable, "-m", "dfsbuild", "build", "--no-cache"],
                                cwd=disk_project, env={**env, FAULT_ENV: where},
                                capture_output=True, check=False)
        assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
        result = build(disk_project, "--no-cache")
        assert result["failed"] == []
        assert sha(disk_of(disk_project)) == sha(disk_of(reference)), (where, result)
        shutil.rmtree(reference)


# -- faults end cleanly --------------------------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        message = f"cannot mount a tmpfs here: {proc.stderr.strip()}"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_gives_one_error_and_keeps_earlier_outputs(project: Path,
                                                               tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "2m") as small:
        build_dir = small / "build"
        build(project, "--build-dir", str(build_dir), "--cache-dir", str(tmp_path / "cache"))
        before = {p.name: p.read_bytes() for p in (build_dir / "board").iterdir()}
        with open(project / "trees" / "other" / "big.bin", "wb") as f:
            f.write(os.urandom(3 << 20))
        proc = run_cli("build", "--build-dir", str(build_dir), "--cache-dir",
                       str(tmp_path / "cache"), cwd=project, check=False)
        assert proc.returncode == 1
        assert "no space left on the device" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert {p.name: p.read_bytes() for p in (build_dir / "board").iterdir()} == before
        # Not a byte left, for the build's own database either.
        with open(small / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(bytes(4096))
        proc = run_cli("build", "--build-dir", str(build_dir), "--cache-dir",
                       str(tmp_path / "cache"), cwd=project, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "no space left on the device" in proc.stderr
        assert {p.name: p.read_bytes() for p in (build_dir / "board").iterdir()} == before


def test_a_read_only_build_directory(project: Path, tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "ro", "64m") as ro:
        build_dir = ro / "build"
        build(project, "--build-dir", str(build_dir))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        # Nothing to do: fine. check and plan: fine.
        assert build(project, "--build-dir", str(build_dir))["failed"] == []
        run_cli("check", "--build-dir", str(build_dir), cwd=project)
        run_cli("plan", "layouts", "--build-dir", str(build_dir), cwd=project)
        (project / "trees" / "other" / "new.txt").write_text("new\n")
        proc = run_cli("build", "--build-dir", str(build_dir), cwd=project, check=False)
        assert proc.returncode == 1
        assert "read-only file system" in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.count("error:") == 1


def test_damaged_state_and_doit_database_are_set_aside(project: Path) -> None:
    build(project)
    state = project / "build" / ".dfsbuild" / "state" / "board__image.other.json"
    state.write_text("[1, 2")
    db = project / "build" / ".doit.sqlite"
    db.write_bytes(db.read_bytes()[:100])
    (project / "trees" / "inner" / "new.txt").write_text("new\n")   # doit has to run
    proc = run_cli("build", "--json", cwd=project)
    result = json.loads(proc.stdout)
    assert "board:image.other" in result["restored"]
    assert "unreadable build state" in proc.stderr
    assert "doit's database is damaged" in proc.stderr
    assert (state.parent / "board__image.other.json.corrupt").exists()
    again = build(project)
    assert set(again["up_to_date"]) == set(result["outputs"][i]["task"]
                                           for i in range(len(result["outputs"])))

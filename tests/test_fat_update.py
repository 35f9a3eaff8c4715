"""``put`` and ``rm`` change one file of a FAT in place, also inside a partition of an MBR and
a GPT disk: after any sequence fsck.fat has nothing to say and mtools reads the new bytes; an
interruption before the directory entry switches leaves the old file whole."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from dfsbuild.errors import DfsbuildError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.fat.read import FatReader
from dfsbuild.images.fat.update import FatUpdater
from dfsbuild.inspect.target import open_target
from tests.conftest import run_cli
from tests.fattree import as_mtools, fsck, mtools_files


def _tree(root: Path) -> dict[str, bytes]:
    files = {"cmdline.txt": b"console=ttyS0\n", "sub/kernel.img": bytes(range(256)) * 300,
             "sub/a long name.txt": b"long\n", "README": b"read me\n"}
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def _host(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "new" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _region(disk: Path, part: str, out: Path) -> tuple[Path, int]:
    """The partition's bytes as a file of its own (fsck.fat takes no offset)."""
    rows = json.loads(run_cli("ls", str(disk), "--json").stdout)
    row = next(r for r in rows if str(r["number"]) == part)
    start, size = row["start"] * 512, row["size"] * 512
    with open(disk, "rb") as f:
        f.seek(start)
        out.write_bytes(f.read(size))
    return out, start


def _sequence(target: str, check: Path, files: dict[str, bytes], tmp_path: Path,
              disk: Path | None = None, part: str = "") -> None:
    rng = random.Random(1)
    steps: list[tuple[str, str, bytes]] = [
        ("put", "cmdline.txt", b"console=ttyAMA0 root=/dev/mmcblk0p2\n"),    # same clusters
        ("put", "sub/kernel.img", rng.randbytes(200_000)),                    # grows
        ("put", "sub/kernel.img", rng.randbytes(10_000)),                     # shrinks
        ("put", "sub/Brand New Long Name.bin", rng.randbytes(70_000)),        # new, long name
        ("rm", "README", b""),
        ("put", "NEW.TXT", b"short name\n"),                                  # new, 8.3
        ("put", "sub/a long name.txt", b""),                                  # empties
        ("rm", "sub/a long name.txt", b""),
    ]
    for i in range(40):                       # enough entries to grow the directory
        steps.append(("put", f"sub/many file {i:02d} with a long name.txt", b"%d\n" % i))
    for index, (action, path, data) in enumerate(steps):
        if action == "put" and index >= 8:     # the many: in this process, for speed
            opened = open_target(target, write=True)
            try:
                FatUpdater(opened.f, opened.src, target).put(
                    path, _host(tmp_path, f"f{index}", data), 0)
            finally:
                opened.close()
            files[path] = data
        elif action == "put":
            run_cli("put", target, path, _host(tmp_path, f"f{index}", data), "-q")
            files[path] = data
        else:
            run_cli("rm", target, path, "-q")
            del files[path]
        if index < 8 or index % 10 == 0 or index == len(steps) - 1:
            image = check if disk is None else _region(disk, part, check)[0]
            fsck(image)
    assert mtools_files(image, tmp_path / "out") == as_mtools(files)


@pytest.mark.tool
def test_put_and_rm_keep_a_fat_image_clean(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    image = tmp_path / "fs.img"
    run_cli("mkfs", "fat", str(tmp_path / "src"), "-o", str(image), "--size", "4MiB")
    _sequence(str(image), image, files, tmp_path)


@pytest.mark.tool
@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_put_and_rm_inside_a_partition(table: str, tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    layout = tmp_path / "disk.toml"
    layout.write_text(f"""schema = 1
[image.boot]
type = "fat"
size = "4MiB"
fat = 16
cluster-size = 512
tree = "src"
[disk]
table = "{table}"
size = "16MiB"
[[disk.partition]]
name = "boot"
image = "boot"
[[disk.partition]]
name = "rest"
size = "rest"
""")
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    disk = tmp_path / "build" / "disk" / "disk.img"
    before = disk.read_bytes()
    _sequence(f"{disk}:1", tmp_path / "part.img", files, tmp_path, disk, "1")
    after = disk.read_bytes()
    _, start = _region(disk, "1", tmp_path / "part.img")
    # Nothing outside the partition changed.
    assert before[:start] == after[:start]
    assert before[start + (4 << 20):] == after[start + (4 << 20):]


def _offset(image: Path, path: str) -> int:
    report = json.loads(run_cli("map", str(image), "--json").stdout)
    row = next(f for f in report["files"] if f["path"] == path)
    return int(row["extents"][0]["offset"])


@pytest.mark.tool
def test_a_reserve_takes_the_new_contents_and_updates_alternate(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "root.img").write_bytes(b"A" * 100_000)
    (src / "after.txt").write_bytes(b"after\n")
    layout = tmp_path / "fs.toml"
    layout.write_text("""schema = 1
[image.fs]
type = "fat"
size = "2MiB"
cluster-size = 2048
tree = "src"
files."root.img" = { file = "src/root.img" }
reserve."root.img" = "120KiB"
""")
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    image = tmp_path / "build" / "fs" / "fs.img"
    first = _offset(image, "root.img")
    run_cli("put", str(image), "root.img", _host(tmp_path, "b", b"B" * 110_000))
    second = _offset(image, "root.img")
    assert second == first + 100_352          # into its reserve, right after the old clusters
    run_cli("put", str(image), "root.img", _host(tmp_path, "c", b"C" * 90_000))
    assert _offset(image, "root.img") == second - 90_112      # the run before it: A/B
    fsck(image)
    after = _offset(image, "after.txt")
    assert after > second + 110_000           # the file after the reserve never moved
    assert run_cli("cat", str(image), "root.img").stdout == "C" * 90_000


@pytest.mark.tool
@pytest.mark.parametrize("stage", ["data", "fat", "entry"])
def test_an_interrupted_put_leaves_the_old_file_whole(stage: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path / "src")
    image = tmp_path / "fs.img"
    run_cli("mkfs", "fat", str(tmp_path / "src"), "-o", str(image), "--size", "4MiB")
    new = _host(tmp_path, "new", b"N" * 50_000)
    calls = {"data": "_write_data", "fat": "_flush_fat", "entry": "_sync"}

    class Crash(Exception):
        pass

    original = getattr(FatUpdater, calls[stage])
    count = {"n": 0}

    def crash(self: FatUpdater, *args: object) -> None:
        count["n"] += 1
        # "entry": die just before the directory entry is written (after data and FAT).
        if stage == "entry" and count["n"] < 2:
            original(self, *args)
            return
        raise Crash

    monkeypatch.setattr(FatUpdater, calls[stage], crash)
    with open(image, "r+b") as f, pytest.raises(Crash):
        FatUpdater(f, ByteSource(f), str(image)).put("sub/kernel.img", new, 0)
    monkeypatch.undo()
    with open(image, "rb") as f:
        reader = FatReader(ByteSource(f))
        entry = reader.lookup("sub/kernel.img")
        assert b"".join(reader.data(entry)) == files["sub/kernel.img"]
    assert mtools_files(image, tmp_path / "out") == as_mtools(files)


@pytest.mark.tool
def test_put_refuses_what_it_cannot_do_and_changes_nothing(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    image = tmp_path / "fs.img"
    run_cli("mkfs", "fat", str(tmp_path / "src"), "-o", str(image))   # "auto": no free room
    before = image.read_bytes()
    cases = [
        (["put", str(image), "sub/kernel.img", _host(tmp_path, "big", os.urandom(1 << 20))],
         "needed"),
        (["put", str(image), "nodir/x.txt", _host(tmp_path, "x", b"x")], "no directory"),
        (["put", str(image), "bad:name", _host(tmp_path, "y", b"y")], "cannot hold"),
        (["put", str(image), "sub", _host(tmp_path, "z", b"z")], "is a directory"),
        (["rm", str(image), "missing.txt"], "no file"),
        (["put", str(image), "x.txt", str(tmp_path / "absent")], "absent"),
    ]
    for args, message in cases:
        proc = run_cli(*args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert image.read_bytes() == before
    romfs = tmp_path / "r.img"
    run_cli("mkfs", "romfs", str(tmp_path / "src"), "-o", str(romfs))
    proc = run_cli("put", str(romfs), "x", _host(tmp_path, "w", b"w"), check=False)
    assert proc.returncode == 1 and "cannot be changed in place" in proc.stderr


def test_updater_needs_a_fat(tmp_path: Path) -> None:
    path = tmp_path / "zero.img"
    path.write_bytes(bytes(1 << 16))
    with open(path, "r+b") as f, pytest.raises(DfsbuildError):
        FatUpdater(f, ByteSource(f), str(path))


@pytest.mark.tool
def test_free_keeps_room_for_put_and_errors_name_a_size_that_fits(tmp_path: Path) -> None:
    """``free`` beside ``size = "auto"`` keeps clusters for a later ``put`` (fsck.fat counts
    them); without it ``put`` says what to add; a fixed size too small names one that fits."""
    tree = tmp_path / "tree"
    _tree(tree)
    (tmp_path / "layouts").mkdir()
    layout = tmp_path / "layouts" / "boot.toml"
    kernel = _host(tmp_path, "zImage", os.urandom(900_000))
    base = '[image.boot]\ntype = "fat"\ntree = "../tree"\n'
    for free in ("", 'free = "1MiB"\n'):
        layout.write_text("schema = 1\n" + base + free)
        run_cli("build", "-q", cwd=tmp_path)
        image = tmp_path / "build" / "boot" / "boot.img"
        put = run_cli("put", str(image), "zImage", kernel, check=False)
        if not free:
            assert put.returncode == 1 and 'free = "1MiB"' in put.stderr, put.stderr
            continue
        assert put.returncode == 0, put.stderr          # 900 KB found room
        fsck(image)
        assert mtools_files(image, tmp_path / "out")["zImage"] == Path(kernel).read_bytes()
    layout.write_text("schema = 1\n" + base + 'size = "64KiB"\nfree = "1MiB"\n')
    too_small = run_cli("check", cwd=tmp_path, check=False)
    assert too_small.returncode == 1 and "holds them" in too_small.stderr
    fits = too_small.stderr.split("size = ")[-1].split(" or ")[0]
    layout.write_text("schema = 1\n" + base + f"size = {fits}\nfree = \"1MiB\"\n")
    run_cli("build", "-q", cwd=tmp_path)

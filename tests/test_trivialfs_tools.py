"""The six tools: ``dfsbuild trivialfs …`` and the POSIX-sh scripts under ``busybox sh`` agree
on the same volumes both ways; ``write`` never touches a byte outside the file; ``explode`` and
``extract`` refuse names that would leave the directory."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.errors import DfsbuildError
from dfsbuild.images.trivialfs.tools import write_range
from tests.conftest import need_tool, run_cli

UUID = "12345678-1234-1234-1234-123456789abc"
MAGIC = b"TrivialFS=80a29844-f5e3-11e3-b1c1-b827eb896db5\n"


@pytest.fixture
def sh_tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    run_cli("trivialfs", "install-sh", str(bin_dir))
    return bin_dir


def sh(bin_dir: Path, tool: str, *args: str, stdin: bytes = b"", cwd: Path | None = None,
       check: bool = True) -> subprocess.CompletedProcess[bytes]:
    busybox = need_tool("busybox")
    # Only busybox applets: a PATH of busybox links and the tools.
    applets = bin_dir / "applets"
    if not applets.exists():
        applets.mkdir()
        names = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout
        for name in names.split():
            os.symlink(busybox, applets / name)
    env = {"PATH": f"{bin_dir}:{applets}", "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run([busybox, "sh", str(bin_dir / tool), *args], input=stdin, cwd=cwd,
                          env=env, capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {args}: {proc.stderr.decode()}")
    return proc


def _tree(root: Path) -> None:
    (root / "boot").mkdir(parents=True)
    (root / "boot" / "counter").write_bytes(b"count=0")
    (root / "name with spaces=and,commas").write_bytes(b"odd\n")
    (root / "version").write_bytes(b"1.0\n")
    (root / "big.bin").write_bytes(os.urandom(300_000))
    os.link(root / "version", root / "boot" / "version-link")
    os.symlink("version", root / "current")
    (root / "version").chmod(0o640)


def test_gen_in_sh_and_in_python_give_the_same_bytes(sh_tools: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    sh(sh_tools, "trivialfs_gen", "-u", UUID.upper(), "-L", "ENV", str(tmp_path / "sh.img"),
       cwd=src)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    run_cli("trivialfs", "gen", "-u", UUID, "-L", "ENV", str(tmp_path / "py.img"), cwd=src,
            env=env)
    assert (tmp_path / "sh.img").read_bytes() == (tmp_path / "py.img").read_bytes()
    out = sh(sh_tools, "trivialfs_gen", "-u", UUID, "-N", cwd=src).stdout
    assert out.startswith(MAGIC) and b"0,0" not in out[:40]
    py = subprocess.run(["python3", "-m", "dfsbuild", "trivialfs", "gen", "-u", UUID,
                         "--no-label-fs"], cwd=src, capture_output=True,
                        env={**os.environ, **env, "PYTHONPATH": str(Path.cwd())}).stdout
    assert out == py


def test_the_sh_and_python_tools_agree_both_ways(sh_tools: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    image = tmp_path / "v.img"
    run_cli("trivialfs", "gen", "-u", UUID, str(image), cwd=src)
    # volume and file: the same answers
    assert sh(sh_tools, "trivialfs_volume", UUID.upper(), str(tmp_path / "nope"),
              str(image)).stdout.decode().strip() == str(image)
    for name in ("boot/counter", "name with spaces=and,commas", "current", "boot/version-link"):
        ours = run_cli("trivialfs", "file", str(image), name).stdout
        theirs = sh(sh_tools, "trivialfs_file", str(image), name).stdout.decode()
        assert ours == theirs and ours.endswith(f" {image}\n")
        assert sh(sh_tools, "trivialfs_file", name, stdin=f"{image}\n".encode()
                  ).stdout.decode() == ours
    # read: the sh tool reads what Python wrote
    location = run_cli("trivialfs", "file", str(image), "big.bin").stdout
    assert sh(sh_tools, "trivialfs_read", stdin=location.encode()).stdout == \
        (src / "big.bin").read_bytes()
    # write in sh, read in Python; write in Python, read in sh
    counter = run_cli("trivialfs", "file", str(image), "boot/counter").stdout.split()
    sh(sh_tools, "trivialfs_write", *counter, stdin=b"count=1 and more than fits")
    assert run_cli("cat", str(image), "boot/counter").stdout == "count=1"
    proc = subprocess.run(["python3", "-m", "dfsbuild", "trivialfs", "write"],
                          input=(" ".join(counter) + "\ncount=2").encode(),
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())}, check=True)
    assert proc.returncode == 0
    assert sh(sh_tools, "trivialfs_read", *counter).stdout == b"count=2"
    # the line-then-data form of the sh write
    sh(sh_tools, "trivialfs_write", stdin=(" ".join(counter) + "\ncount=3").encode())
    assert run_cli("cat", str(image), "boot/counter").stdout == "count=3"
    # explode: both give the same tree, links, modes and mtimes
    trees = []
    for how in ("sh", "py"):
        dest = tmp_path / f"ex-{how}"
        dest.mkdir()
        if how == "sh":
            sh(sh_tools, "trivialfs_explode", str(image), cwd=dest)
        else:
            run_cli("trivialfs", "explode", str(image), cwd=dest)
        rows = []
        for p in sorted(dest.rglob("*")):
            st_ = p.lstat()
            rows.append((str(p.relative_to(dest)), p.is_dir(), oct(st_.st_mode),
                         None if p.is_dir() else int(st_.st_mtime), st_.st_nlink,
                         None if p.is_dir() else p.read_bytes()))
        trees.append(rows)
    assert trees[0] == trees[1]
    assert ("version", False, oct(0o100640), 315532800, 3, b"1.0\n") in trees[0]


def test_volume_refuses_to_pick_between_clones(sh_tools: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    run_cli("trivialfs", "gen", "-u", UUID, str(tmp_path / "a.img"), cwd=src)
    (tmp_path / "b.img").write_bytes((tmp_path / "a.img").read_bytes())
    proc = sh(sh_tools, "trivialfs_volume", UUID, str(tmp_path / "a.img"),
              str(tmp_path / "b.img"), check=False)
    assert proc.returncode == 1 and b"2 volumes" in proc.stderr
    ours = run_cli("trivialfs", "volume", UUID, str(tmp_path / "a.img"),
                   str(tmp_path / "b.img"), check=False)
    assert ours.returncode == 1 and "2 volumes" in ours.stderr and "cloned" in ours.stderr


@settings(max_examples=200, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 300), size=st.integers(0, 300), data=st.binary(max_size=700))
def test_write_never_touches_a_byte_outside_the_range(tmp_path: Path, start: int, size: int,
                                                      data: bytes) -> None:
    volume = tmp_path / "vol"
    before = bytes(range(256)) * 3
    volume.write_bytes(before)
    try:
        written = write_range(str(volume), start, size, io.BytesIO(data))
    except DfsbuildError:
        assert start + size > len(before)
        assert volume.read_bytes() == before
        return
    after = volume.read_bytes()
    assert written == min(size, len(data))
    assert after[:start] == before[:start]
    assert after[start:start + written] == data[:written]
    assert after[start + written:] == before[start + written:]


HOSTILE = [b"0,0=../escape", b"0,0=/abs", b"0,0=a/../../x", b"0,0=", b"0,0=ok\n0,0=ok/inner"]


@pytest.mark.parametrize("entries", HOSTILE)
def test_explode_and_extract_refuse_names_that_leave(entries: bytes, sh_tools: Path,
                                                     tmp_path: Path) -> None:
    image = tmp_path / "bad.img"
    image.write_bytes(MAGIC + f"UUID={UUID}\n".encode() + entries + b"\nEOF\n")
    for how in ("py", "sh", "extract"):
        dest = tmp_path / f"dest-{how}"
        dest.mkdir()
        if how == "sh":
            proc = sh(sh_tools, "trivialfs_explode", str(image), cwd=dest, check=False)
            err = proc.stderr.decode()
        elif how == "py":
            done = run_cli("trivialfs", "explode", str(image), cwd=dest, check=False)
            proc, err = done, done.stderr  # type: ignore[assignment]
        else:
            done = run_cli("extract", str(image), str(dest), check=False)
            proc, err = done, done.stderr  # type: ignore[assignment]
        assert proc.returncode != 0, (how, err)
        assert "Traceback" not in err and "refus" in err, (how, err)
        assert list(dest.iterdir()) == [], how
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()


def test_a_builtin_tool_goes_into_any_image(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    layout = tmp_path / "b.toml"
    layout.write_text('schema = 1\n[image.r]\ntype = "romfs"\ntree = "src"\n'
                      'files."sbin/trivialfs_read" = { builtin = "trivialfs_read", '
                      'mode = "0755" }\n')
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    image = tmp_path / "build" / "b" / "r.img"
    script = run_cli("cat", str(image), "sbin/trivialfs_read").stdout
    assert script.startswith("#!/bin/sh") and "trivialfs_read" in script
    bad = layout.read_text().replace('"trivialfs_read", mode', '"nope", mode')
    layout.write_text(bad)
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and "trivialfs_gen" in proc.stderr


# -- the bounds both tools keep, with the same words ------------------------------------------

BIG = str(1 << 70)


@pytest.mark.parametrize(("start", "size", "words"), [
    ("16300", "180", "180 bytes at 16300 pass the end of {vol} (16384 bytes)"),
    ("0", BIG, f"{BIG} bytes at 0 pass the end of {{vol}} (16384 bytes)"),
    (BIG, "3", f"3 bytes at {BIG} pass the end of {{vol}} (16384 bytes)"),
    ("16385", "0", "0 bytes at 16385 pass the end of {vol} (16384 bytes)"),
    ("\u00b2", "3", "bad location: expected START SIZE VOLUME"),
    ("0", "\u0664\u0660\u0669\u0666", "bad location: expected START SIZE VOLUME"),
])
@pytest.mark.parametrize("tool", ["write", "read"])
def test_read_and_write_refuse_what_passes_the_volume(tool: str, start: str, size: str,
                                                      words: str, sh_tools: Path,
                                                      tmp_path: Path) -> None:
    volume = tmp_path / "v.img"
    before = os.urandom(16384)
    volume.write_bytes(before)
    expected = words.format(vol=volume)
    theirs = sh(sh_tools, f"trivialfs_{tool}", start, size, str(volume), stdin=b"x" * 200,
                check=False)
    assert theirs.returncode != 0 and theirs.stdout == b""
    assert theirs.stderr.decode() .startswith(f"trivialfs_{tool}: {expected}"), theirs.stderr
    ours = run_cli("trivialfs", tool, start, size, str(volume), check=False)
    assert ours.returncode != 0 and "Traceback" not in ours.stderr
    assert ours.stderr.startswith(f"error: {expected}"), ours.stderr
    assert volume.read_bytes() == before


def _volume_with_mtime(path: Path, mtime: int) -> None:
    from dfsbuild.images.trivialfs.records import Entry, format_header

    entries = [Entry(512, 3, 0o644, 0, [b"a.txt"], 0),
               Entry(516, 3, 0o644, mtime, [b"b.txt"], 0)]
    head = format_header(UUID, entries)
    path.write_bytes(head + bytes(512 - len(head)) + b"abc\0def")


@pytest.mark.parametrize("how", ["py", "sh"])
def test_explode_refuses_a_time_it_cannot_set_before_it_creates_anything(
        how: str, sh_tools: Path, tmp_path: Path) -> None:
    image = tmp_path / "v.img"
    _volume_with_mtime(image, 1 << 70)
    dest = tmp_path / "dest"
    dest.mkdir()
    if how == "sh":
        err = sh(sh_tools, "trivialfs_explode", str(image), cwd=dest, check=False).stderr \
            .decode()
    else:
        proc = run_cli("trivialfs", "explode", str(image), cwd=dest, check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        err = proc.stderr
    assert f"b.txt: mtime {1 << 70} is after 9999-12-31; nothing extracted" in err, err
    assert list(dest.iterdir()) == []
    _volume_with_mtime(image, 253402300799)      # the last second both tools set
    if how == "sh":
        sh(sh_tools, "trivialfs_explode", str(image), cwd=dest)
    else:
        run_cli("trivialfs", "explode", str(image), cwd=dest)
    assert (dest / "b.txt").read_bytes() == b"def"

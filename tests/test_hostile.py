"""Hostile inputs end in one clean ``error:`` line and a non-zero exit, with nothing written
outside the target: regression tests for the cases a probe of hostile commands found."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from dfsbuild.trees.fstree import FsNode
from tests.conftest import ROOT, run_cli, write_romfs


def fails_cleanly(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                  words: str = "") -> str:
    proc = run_cli(*args, cwd=cwd, env=env, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    assert words in proc.stderr, proc.stderr
    return proc.stderr


def layout(tmp_path: Path, text: str, name: str = "l") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text("schema = 1\n" + text)
    return path


def gpt_disk(tmp_path: Path, size: str = "4MiB") -> Path:
    lay = layout(tmp_path, f'[disk]\ntable = "gpt"\nsize = "{size}"\n'
                 '[[disk.partition]]\nname = "a"\nsize = "1MiB"\n')
    run_cli("build", str(lay), "--build-dir", str(tmp_path / "b"))
    return tmp_path / "b" / "l" / "l.img"


def _fix_header_crc(data: bytearray, at: int) -> None:
    data[at + 16:at + 20] = bytes(4)
    data[at + 16:at + 20] = struct.pack("<I", zlib.crc32(bytes(data[at:at + 92])))


# -- readers ----------------------------------------------------------------------------------

def test_a_partition_past_the_end_of_the_image(tmp_path: Path) -> None:
    disk = gpt_disk(tmp_path)
    os.truncate(disk, 64 << 10)       # the partition and the backup are gone
    for command in (["ls", f"{disk}:1"], ["cat", f"{disk}:1", "x"],
                    ["extract", f"{disk}:1", str(tmp_path / "out")]):
        fails_cleanly(*command, words="passes the end of the image")
    assert not (tmp_path / "out").exists()


def test_an_unbounded_gpt_entry_array_is_refused_not_allocated(tmp_path: Path) -> None:
    disk = gpt_disk(tmp_path)
    data = bytearray(disk.read_bytes()[: 20 << 10])     # a 20 KiB image: no backup
    data[512 + 80:512 + 88] = struct.pack("<II", 1 << 31, 1 << 20)
    _fix_header_crc(data, 512)
    small = tmp_path / "small.img"
    small.write_bytes(bytes(data))
    err = fails_cleanly("inspect", str(small), words="both GPT headers are damaged")
    assert "larger than any real table" in err


def test_gpt_entries_that_end_before_they_start_or_cover_the_header(tmp_path: Path) -> None:
    disk = gpt_disk(tmp_path)
    data = bytearray(disk.read_bytes())
    entry = 1024                                  # the first entry of the primary array
    data[entry + 32:entry + 48] = struct.pack("<QQ", 1, 0x800)   # covers LBA 1 (the header)
    data[entry + 128:entry + 144] = data[entry:entry + 16]       # a second entry: same type
    data[entry + 160:entry + 176] = struct.pack("<QQ", 0x900, 0x100)   # ends before it starts
    crc = zlib.crc32(bytes(data[entry:entry + 128 * 128]))
    data[512 + 88:512 + 92] = struct.pack("<I", crc)
    _fix_header_crc(data, 512)
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(data))
    proc = run_cli("inspect", str(bad), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "covers the GPT's own structures" in proc.stdout
    assert "ends (LBA 256) before it starts (LBA 2304)" in proc.stdout


@pytest.mark.parametrize("selector", ["", "²", "٥", "0", "1x"])
def test_partition_selectors_are_ascii_numbers_or_names(tmp_path: Path, selector: str) -> None:
    disk = gpt_disk(tmp_path)
    fails_cleanly("ls", f"{disk}:{selector}", words="partition")


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "f.toml"
    os.mkfifo(fifo)
    fails_cleanly("inspect", str(fifo), words="not a regular file")
    fails_cleanly("check", str(fifo), words="not a regular file")


def test_names_that_are_not_utf8_are_printed_escaped(tmp_path: Path) -> None:
    root = FsNode("", "", "dir", 0o755, children=[
        FsNode("caf\udce9", "caf\udce9", "file", 0o644, 0, content="x"),
        FsNode("nl\nname", "nl\nname", "file", 0o644, 0, content="x")])
    image = tmp_path / "n.img"
    write_romfs(str(image), root, "v\udcff")
    env = {"LANG": "en_US.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    for command in ("ls", "inspect"):
        proc = run_cli(command, str(image), env=env)
        assert "caf\\xe9" in proc.stdout and "nl\\nname" in proc.stdout
    assert "\\udc" in run_cli("inspect", "--json", str(image), env=env).stdout


# -- trees of any depth ------------------------------------------------------------------------

def test_a_tree_1000_levels_deep(tmp_path: Path) -> None:
    src = tmp_path / "deep"
    try:
        path = src
        path.mkdir()
        for _ in range(1000):       # os.makedirs recurses: make them one by one
            path = path / "d"
            path.mkdir()
        (path / "leaf").write_text("bottom\n")
        image = tmp_path / "deep.img"
        run_cli("mkfs", "romfs", str(src), "-o", str(image))
        assert "leaf" in run_cli("inspect", str(image)).stdout
        run_cli("extract", str(image), str(tmp_path / "out"))
        assert (tmp_path / "out" / Path(*["d"] * 1000) / "leaf").read_text() == "bottom\n"
        lay = layout(tmp_path, f'[image.deep]\ntype = "romfs"\ntree = "{src}"\n')
        run_cli("build", str(lay), "--build-dir", str(tmp_path / "b"))
        assert (tmp_path / "b" / "l" / "deep.img").read_bytes() == image.read_bytes()
    finally:
        for top in (src, tmp_path / "out"):   # pytest's own clean-up recurses: remove here
            if top.is_dir():
                remove_chain(top)


def remove_chain(top: Path) -> None:
    """Remove a chain of directories named "d" (and the files in them) from the bottom."""
    chain = [top]
    while (chain[-1] / "d").is_dir():
        chain.append(chain[-1] / "d")
    for directory in reversed(chain):
        for child in directory.iterdir():
            if not child.is_dir():
                child.unlink()
        directory.rmdir()


def test_deeply_nested_toml(tmp_path: Path) -> None:
    lay = tmp_path / "n.toml"
    lay.write_text("schema = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    fails_cleanly("check", str(lay), words="n.toml")


# -- extract -----------------------------------------------------------------------------------

def test_extract_refuses_long_symlink_targets_without_echoing_them(tmp_path: Path) -> None:
    target = "t" * (1 << 20)
    root = FsNode("", "", "dir", 0o755, children=[
        FsNode("ln", "ln", "symlink", 0o777, len(target), target=target)])
    image = tmp_path / "l.img"
    write_romfs(str(image), root, "v")
    err = fails_cleanly("extract", str(image), str(tmp_path / "out"), words="longer than 4095")
    assert len(err) < 1000


def test_extract_dest_must_be_a_real_writable_directory(tmp_path: Path) -> None:
    root = FsNode("", "", "dir", 0o755, children=[FsNode("f", "f", "file", 0o644, 0)])
    image = tmp_path / "i.img"
    write_romfs(str(image), root, "v")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    fails_cleanly("extract", str(image), str(tmp_path / "link"), words="symbolic link")
    (tmp_path / "file").write_text("")
    fails_cleanly("extract", str(image), str(tmp_path / "file"), words="not a directory")
    assert list((tmp_path / "real").iterdir()) == []
    if os.geteuid() != 0:      # root writes anywhere: the read-only case needs a user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        fails_cleanly("extract", str(image), str(ro), words="permission denied")


def test_extract_3000_directories_under_a_small_descriptor_limit(tmp_path: Path) -> None:
    src = tmp_path / "wide"
    for i in range(3000):
        (src / f"d{i:04}" / "sub").mkdir(parents=True)
    image = tmp_path / "w.img"
    run_cli("mkfs", "romfs", str(src), "-o", str(image))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["bash", "-c", 'ulimit -n 64 && exec "$@"', "-", sys.executable, "-m",
                           "dfsbuild", "extract", str(image), str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "out").iterdir())) == 3000


# -- layouts check refuses what build would fail on ------------------------------------------

@pytest.mark.parametrize(("disk", "words"), [
    ('table = "gpt"\nsize = "36893488147419103232s"\n', "larger than any file"),     # 2^65
    ('table = "embr"\nsize = "16777216TiB"\n', "larger than any file"),              # 2^64
    ('table = "gpt"\nsize = "16MiB"\noutput = "a\\u0000b"\n', "NUL"),
])
def test_check_refuses_what_build_would_crash_on(tmp_path: Path, disk: str, words: str) -> None:
    lay = layout(tmp_path, "[disk]\n" + disk + '[[disk.partition]]\nname = "a"\nsize = "1MiB"\n')
    fails_cleanly("check", str(lay), "--build-dir", str(tmp_path / "b"), words=words)


def test_a_disk_the_build_filesystem_cannot_hold(tmp_path: Path) -> None:
    lay = layout(tmp_path, '[disk]\ntable = "gpt"\nsize = "8192TiB"\n'
                 '[[disk.partition]]\nname = "a"\nsize = "1MiB"\n')
    # check says so early (it knows the build directory's limit), build fails cleanly
    fails_cleanly("check", str(lay), "--build-dir", str(tmp_path / "b"),
                  words="is more than a file can hold")
    proc = run_cli("build", str(lay), "--build-dir", str(tmp_path / "b"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot hold a file that large" in proc.stderr
    assert not [p for p in (tmp_path / "b" / "l").iterdir() if p.name.endswith(".img")
                or "tmp" in p.name]


def test_names_with_a_newline_and_dotted_outputs(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"x")
    bad = layout(tmp_path, '[image."a\\n"]\ntype = "raw"\nfile = "f.bin"\n')
    fails_cleanly("check", str(bad), words="not a valid image name")
    ok = layout(tmp_path, '[image.a]\ntype = "raw"\nfile = "f.bin"\noutput = "..."\n', "ok")
    run_cli("build", str(ok), "--build-dir", str(tmp_path / "b"))
    assert (tmp_path / "b" / "ok" / "...").read_bytes() == b"x"


def test_a_tree_holding_the_build_directory(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    lay = layout(tmp_path, '[image.r]\ntype = "romfs"\ntree = "root"\n')
    err = fails_cleanly("check", str(lay), "--build-dir", str(tmp_path / "root" / "build"),
                        words="contains the build directory")
    assert '"/build"' in err
    fine = layout(tmp_path, '[image.r]\ntype = "romfs"\ntree = "root"\nexclude = ["/build"]\n',
                  "fine")
    run_cli("check", str(fine), "--build-dir", str(tmp_path / "root" / "build"))


@pytest.mark.parametrize("output", [".", "", "..", "dir"])
def test_mkfs_to_a_directory_leaves_nothing_behind(tmp_path: Path, output: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    fails_cleanly("mkfs", "romfs", "src", "-o", output, cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before

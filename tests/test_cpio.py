"""cpio newc archives: GNU cpio lists and extracts ours byte-equal; our reader reads GNU cpio's
and gen_init_cpio-style archives, compressed and concatenated ones; mutated bytes end in
FormatError; the kernel unpacks ours (plain, gzip, xz) as its initramfs and runs /init."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.cpio.read import CpioReader
from dfsbuild.images.cpio.records import CpioHeader, pad4
from tests.conftest import need_tool, run_cli
from tests.qemu import boot, fetch_kernel, make_initramfs


def _tree(root: Path) -> dict[str, bytes]:
    files = {"etc/hostname": b"board\n", "bin/tool": os.urandom(70_000), "a b=c": b"odd\n",
             "empty": b""}
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    os.link(root / "etc" / "hostname", root / "hostname-link")
    os.symlink("etc/hostname", root / "link")
    (root / "bin" / "tool").chmod(0o755)
    return files


def _layout(tmp_path: Path, compress: str) -> Path:
    layout = tmp_path / f"c-{compress}.toml"
    layout.write_text(f"""schema = 1
[image.initrd]
type = "cpio"
compress = "{compress}"
tree = "src"
dirs = ["proc", "sys", "tmp/deep"]
devices."dev/console" = {{ type = "char", major = 5, minor = 1 }}
""")
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    return tmp_path / "build" / f"c-{compress}" / "initrd.img"


def _plain(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    return data


@pytest.mark.tool
@pytest.mark.parametrize("compress", ["none", "gzip", "xz"])
def test_gnu_cpio_lists_and_extracts_ours(compress: str, tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    image = _layout(tmp_path, compress)
    cpio = need_tool("cpio")
    plain = _plain(image)
    assert len(plain) % 512 == 0
    listing = subprocess.run([cpio, "-itv"], input=plain, capture_output=True,
                             check=True).stdout.decode()
    names = subprocess.run([cpio, "-it", "--quiet"], input=plain, capture_output=True,
                           check=True).stdout.decode().splitlines()
    assert {"etc/hostname", "bin/tool", "proc", "sys", "tmp/deep", "dev/console", "link",
            "hostname-link", "empty"} <= set(names)
    assert "crw-------" in listing and "5,   1" in listing
    assert names == sorted(names, key=lambda n: n.encode())    # byte order, dirs first
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run([cpio, "-idm", "--quiet"], input=plain, cwd=out, check=True,
                   capture_output=True)
    for path, data in files.items():
        assert (out / path).read_bytes() == data, path
    assert (out / "hostname-link").stat().st_ino == (out / "etc" / "hostname").stat().st_ino
    assert os.readlink(out / "link") == "etc/hostname"
    assert (out / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert int((out / "etc" / "hostname").stat().st_mtime) == 315532800
    # our reader, through the CLI, on our archive
    got = subprocess.run(["python3", "-m", "dfsbuild", "cat", str(image), "hostname-link"],
                         capture_output=True, env={**os.environ,
                                                   "PYTHONPATH": str(Path.cwd())}).stdout
    assert got == b"board\n"


@pytest.mark.tool
def test_our_reader_on_gnu_cpio_archives_concatenated_and_compressed(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    cpio = need_tool("cpio")
    names = subprocess.run(["find", "."], cwd=tmp_path / "src", capture_output=True,
                           check=True).stdout
    theirs = subprocess.run([cpio, "-o", "-H", "newc", "--quiet"], input=names,
                            cwd=tmp_path / "src", capture_output=True, check=True).stdout
    overlay = _gen_init_cpio_style([("etc/hostname", 0o100644, b"overlaid\n"),
                                    ("nul-link", 0o120777, b"etc/hostname\0")])
    for data in (theirs, gzip.compress(theirs, mtime=0) + lzma.compress(overlay),
                 theirs + bytes(512) + overlay):
        reader = CpioReader(ByteSource(io.BytesIO(data)))
        got = {e.path: b"".join(reader.data(e)) for e in reader.walk()
               if e.kind in ("file", "hardlink")}
        assert got["bin/tool"] == files["bin/tool"] and got["a b=c"] == b"odd\n"
        if data is not theirs:                      # the later archive replaces the file
            assert got["etc/hostname"] == b"overlaid\n"
            assert reader.lookup("nul-link").target == "etc/hostname"
        assert reader.problems() == []


def test_a_name_two_thousand_levels_deep_is_read() -> None:
    deep = "a/" * 2000 + "f"                  # past the recursion limit, within PATH_MAX
    reader = CpioReader(ByteSource(io.BytesIO(_gen_init_cpio_style([(deep, 0o100644, b"x")]))))
    assert b"".join(reader.data(reader.lookup(deep))) == b"x"
    assert sum(1 for _ in reader.walk()) == 2001


def _gen_init_cpio_style(entries: list[tuple[str, int, bytes]]) -> bytes:
    """Members as the kernel's gen_init_cpio writes them (symlink data with its NUL)."""
    out = b""
    for ino, (name, mode, data) in enumerate(entries, 1000):
        raw = name.encode() + b"\0"
        head = CpioHeader(ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw)).pack() + raw
        out += head + bytes(pad4(len(head)) - len(head)) + data + bytes(pad4(len(data))
                                                                         - len(data))
    trailer = CpioHeader(0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11).pack() + b"TRAILER!!!\0"
    out += trailer + bytes(pad4(len(trailer)) - len(trailer))
    return out + bytes(-len(out) % 512)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("cpio")
    _tree(root / "src")
    return _plain(_layout(root, "none"))


@settings(max_examples=300, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1,
                max_size=10))
def test_mutated_archives_give_only_format_errors(archive: bytes,
                                                  edits: list[tuple[int, int]]) -> None:
    data = bytearray(archive)
    for offset, value in edits:
        data[offset % len(data)] = value
    try:
        reader = CpioReader(ByteSource(io.BytesIO(bytes(data))))
        for e in reader.walk():
            if e.kind in ("file", "hardlink", "symlink"):
                b"".join(reader.data(e))
        reader.problems()
    except FormatError:
        pass


def test_dirs_apply_to_romfs_and_fat_too(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for kind in ("romfs", "fat"):
        layout = tmp_path / f"{kind}.toml"
        layout.write_text(f'schema = 1\n[image.i]\ntype = "{kind}"\ntree = "src"\n'
                          'dirs = ["proc", "var/tmp"]\n')
        run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
        listing = run_cli("ls", str(tmp_path / "build" / kind / "i.img"), "var").stdout
        assert "var/tmp" in listing


@pytest.mark.tool
@pytest.mark.slow
def test_the_kernel_unpacks_our_initramfs(tmp_path: Path) -> None:
    kernel = fetch_kernel()
    make_initramfs(kernel, tmp_path, 'echo "UNPACKED $(cat /etc/marker) $(ls -d /proc/1)"\n')
    tree = tmp_path / "initramfs"
    (tree / "etc").mkdir()
    (tree / "etc" / "marker").write_text("ours")
    (tree / "dev").rmdir()
    for compress in ("none", "gzip", "xz"):
        layout = tmp_path / f"i-{compress}.toml"
        layout.write_text(f'schema = 1\n[image.initrd]\ntype = "cpio"\ncompress = '
                          f'"{compress}"\ntree = "initramfs"\ndirs = ["dev"]\n'
                          'devices."dev/console" = { type = "char", major = 5, minor = 1 }\n')
        run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
        guest = boot(kernel, tmp_path / "build" / f"i-{compress}" / "initrd.img", [])
        assert "UNPACKED ours /proc/1" in guest.console, (compress, guest.console[-2000:])

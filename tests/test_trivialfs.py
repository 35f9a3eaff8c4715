"""TrivialFS: the design's vectors, the reference writer's output (formats.md §2.3), every
§2.4 decision, layouts, and the ext2 label block as blkid and file see it."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.trivialfs.read import TrivialReader
from tests.conftest import need_tool, run_cli

MAGIC = b"TrivialFS=80a29844-f5e3-11e3-b1c1-b827eb896db5\n"
UUID = b"UUID=12345678-1234-1234-1234-123456789abc\n"


def read(data: bytes) -> TrivialReader:
    return TrivialReader(ByteSource(io.BytesIO(data)))


def files(reader: TrivialReader) -> dict[str, bytes]:
    return {e.path: b"".join(reader.data(e)) for e in reader.walk()
            if e.kind in ("file", "hardlink")}


def test_the_90_byte_minimal_filesystem() -> None:
    data = MAGIC + UUID + b"\n"
    assert len(data) == 90
    r = read(data)
    assert files(r) == {} and r.problems() == []
    assert r.summary()["uuid"] == "12345678-1234-1234-1234-123456789abc"


REFERENCE = (MAGIC + UUID + b"# offset,size,mode,initial_mtime=name1\n# |name2\n"
             b"301,3,600,1577836800=a.txt\n304,6,644,1577836800=b.txt\n"
             b"0,0,644,1577836800=empty\n0,0,644,1577836800=empty2\n"
             b"310,6,644,1577836800=sub/hl\n316,5,777,1795215521=zlink\nEOF\n"
             b"abchello\nhello\nabc")


def test_the_reference_writers_output() -> None:
    """trivialfs_gen a26ce56's exact bytes (its symlink bug included: zlink's size says 5,
    the data holds the target's 3 bytes)."""
    assert len(REFERENCE) == 319
    r = read(REFERENCE)
    found = {e.path: e for e in r.walk()}
    assert set(found) == {"a.txt", "b.txt", "empty", "empty2", "sub", "sub/hl", "zlink"}
    assert b"".join(r.data(found["a.txt"])) == b"abc"
    assert b"".join(r.data(found["sub/hl"])) == b"hello\n"
    assert found["a.txt"].mode == 0o600 and dict(found["a.txt"].extra)["mtime"] == 1577836800
    problems = [p.message for p in r.problems()]
    assert any("zlink" in m and "pass the end" in m for m in problems)
    with pytest.raises(FormatError, match="pass the end"):
        b"".join(r.data(found["zlink"]))


def test_the_two_field_form_comments_terminators_and_odd_names() -> None:
    body = (b"# a comment\n"
            b"200,2=two=fields, | and spaces \n|link, name\n"
            b"202,1,4755,0=setuid\n"
            b"0,0=\n")                       # an empty name is legal; shown, not extractable
    for end in (b"EOF\n", b"\n", b"END\n", b"anything else\n"):
        data = MAGIC + UUID + body + end
        data += bytes(200 - len(data)) + b"hiX"
        r = read(data)
        got = files(r)
        assert got["two=fields, | and spaces "] == b"hi"
        assert got["link, name"] == b"hi"
        assert got["setuid"] == b"X"
        assert {e.path: e.mode for e in r.walk()}["setuid"] == 0o4755
        assert r.summary()["terminator"] == end[:-1].decode()


def test_compatible_version_header_first_match_wins_and_problems() -> None:
    data = (MAGIC + b"COMPATIBLE_VERSION=1\n" + UUID
            + b"220,4=a\n224,4=a\n222,4=b\n10,2=c\n500,9=d\n226,2=a/x\nEOF\n")
    data += bytes(220 - len(data)) + b"AAAABBBB"
    r = read(data)
    assert r.summary()["compatible_version"] == 1
    assert b"".join(r.data(r.lookup("a"))) == b"AAAA"
    messages = " | ".join(p.message for p in r.problems())
    assert "'a' is named again" in messages
    assert "overlap" in messages                       # b over a
    assert "inside the metadata" in messages           # c
    assert "pass the end" in messages                  # d
    assert "needs 'a' to be a directory" in messages   # a/x


def test_an_unterminated_header_is_reported() -> None:
    r = read(MAGIC + UUID + b"0,0=a\n0,0=b")
    assert [e.path for e in r.walk()] == ["a"]
    assert any("no terminating line" in p.message for p in r.problems())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_reader_or_a_format_error(tail: bytes) -> None:
    for data in (tail, MAGIC + UUID + tail, MAGIC + tail):
        try:
            r = read(data)
            for e in r.walk():
                if e.kind in ("file", "hardlink"):
                    with contextlib.suppress(FormatError):
                        b"".join(r.data(e))
            r.problems()
            r.summary()
        except FormatError:
            pass


# -- layouts ----------------------------------------------------------------------------------

def _build(tmp_path: Path, body: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    layout = tmp_path / "t.toml"
    layout.write_text('schema = 1\n[image.env]\ntype = "trivialfs"\ntree = "src"\n' + body)
    return run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"), check=check)


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"abc")
    (src / "b.txt").write_bytes(b"hello\n")
    os.link(src / "b.txt", src / "sub" / "hl")
    (src / "empty").write_bytes(b"")
    os.symlink("a.txt", src / "zlink")
    os.symlink("../b.txt", src / "sub" / "up")
    return src


def test_layout_volume_hard_links_symlinks_reserve_and_alignment(tmp_path: Path) -> None:
    _tree(tmp_path)
    _build(tmp_path, 'uuid = "12345678-1234-1234-1234-123456789ABC"\nalign = 1\n'
           'label-fs = "none"\n'
           'files."counter" = { file = "src/a.txt", reserve = "16" }\n')
    data = (tmp_path / "build" / "t" / "env.img").read_bytes()
    header = data[:data.index(b"EOF\n") + 4].decode()
    lines = header.splitlines()
    assert lines[:2] == ["TrivialFS=80a29844-f5e3-11e3-b1c1-b827eb896db5",
                         "UUID=12345678-1234-1234-1234-123456789abc"]
    # byte order of names; links and in-tree symlinks as continuation lines
    names = [line.split("=", 1)[1] if not line.startswith("|") else line for line in lines[2:-1]]
    assert names == ["a.txt", "|zlink", "b.txt", "|sub/hl", "|sub/up", "counter", "empty"]
    start = len(header)                          # align = 1: data right after the header
    assert lines[2].startswith(f"{start},3,") and lines[-2] == "0,0,644,315532800=empty"
    r = read(data)
    got = files(r)
    assert got["counter"] == b"abc" + bytes(13) and got["sub/up"] == b"hello\n"
    assert len(data) == start + 3 + 6 + 16


@pytest.mark.parametrize(("make", "words"), [
    (lambda s: os.symlink("/etc/passwd", s / "abs"), ["'abs' -> '/etc/passwd' dangles"]),
    (lambda s: os.symlink("../../outside", s / "out"), ["points outside the tree"]),
    (lambda s: os.symlink("nothing", s / "dang"), ["dangles"]),
    (lambda s: os.symlink("sub", s / "todir"), ["a dir; TrivialFS holds only files"]),
])
def test_symlinks_that_leave_or_dangle_are_layout_errors(make: object, words: list[str],
                                                         tmp_path: Path) -> None:
    src = _tree(tmp_path)
    assert callable(make)
    make(src)
    proc = _build(tmp_path, "", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_a_header_too_long_for_the_label_block_says_what_to_do(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"a rather long file name number {i:03d}").write_text("x")
    proc = _build(tmp_path, "", check=False)
    assert proc.returncode == 1 and "must fit in 1024" in proc.stderr
    assert 'label-fs = "none"' in proc.stderr
    _build(tmp_path, 'label-fs = "none"\n')


def test_reserve_applies_only_where_a_type_takes_it(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "f").write_text("x")
    layout = tmp_path / "r.toml"
    layout.write_text('schema = 1\n[image.r]\ntype = "romfs"\ntree = "src"\n'
                      'files."f" = { file = "f", reserve = "1KiB" }\n')
    proc = run_cli("check", str(layout), check=False)
    assert proc.returncode == 1 and 'files.f.reserve' in proc.stderr
    assert 'type = "trivialfs"' in proc.stderr


@pytest.mark.tool
def test_blkid_and_file_see_the_label_block(tmp_path: Path) -> None:
    _tree(tmp_path)
    _build(tmp_path, 'uuid = "0badc0de-0000-4000-8000-0123456789ab"\nlabel = "BOOTENV"\n')
    image = tmp_path / "build" / "t" / "env.img"
    out = subprocess.run([need_tool("blkid"), "-p", "-o", "export", str(image)],
                         capture_output=True, text=True).stdout
    found = dict(line.split("=", 1) for line in out.splitlines())
    assert (found["TYPE"], found["LABEL"], found["UUID"]) == (
        "ext2", "BOOTENV", "0badc0de-0000-4000-8000-0123456789ab")
    assert "ext2" in subprocess.run([need_tool("file"), "-b", str(image)], capture_output=True,
                                    text=True).stdout
    assert image.stat().st_size == 69632
    report = run_cli("inspect", "--json", str(image)).stdout
    assert '"label": "BOOTENV"' in report and '"format": "trivialfs"' in report

"""disk.sparse: an Android sparse image beside the disk. libsparse's own tools judge it
(``simg2img`` expands it to the disk byte for byte, ``img2simg``'s image of the same disk is
compared), a card flashed from it over old bytes reads as the disk (our reader, fsck.fat,
sfdisk), and the reader takes a ``.simg`` wherever it takes a raw image, hostile ones included.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dfsbuild.errors import FormatError
from dfsbuild.fileio.simg import BLOCK, DONT_CARE, FILL, RAW, write_sparse
from dfsbuild.fileio.simg_read import SparseImage, open_sparse
from dfsbuild.fileio.source import open_image
from tests.conftest import need_tool, run_cli

LAYOUT = """schema = 1
[image.boot]
type = "fat"
tree = "tree"
size = "1GiB"
[image.env]
type = "trivialfs"
files."env.txt" = {{ file = "env.txt", reserve = "64KiB" }}
[disk]
table = "{table}"
size = "1100MiB"
sparse = {sparse}
[[disk.partition]]
name = "boot"
image = "boot"
sparse = {part_sparse}
[[disk.partition]]
name = "env"
image = "env"
"""
MIB = 1 << 20


def _build(tmp_path: Path, table: str = "mbr", sparse: str = "true",
           part_sparse: str = "false") -> Path:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True, exist_ok=True)
    (tree / "kernel").write_bytes(os.urandom(3 * MIB))
    (tree / "sub" / "config.txt").write_text("console=ttyS0\n")
    (tmp_path / "env.txt").write_text("bootcount=0\n")
    layout = tmp_path / "card.toml"
    layout.write_text(LAYOUT.format(table=table, sparse=sparse, part_sparse=part_sparse))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    return tmp_path / "build" / "card" / "card.img"


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _chunks(path: Path) -> list[tuple[int, int]]:
    """(type, blocks) of every chunk, parsed here from the format's definition."""
    out = []
    with open(path, "rb") as f:
        head = f.read(28)
        hdr, chdr, total_chunks = struct.unpack_from("<HH", head, 8) + \
            struct.unpack_from("<I", head, 20)
        f.seek(hdr)
        for _ in range(total_chunks):
            kind, _, blocks, total = struct.unpack("<HHII", f.read(12))
            f.seek(chdr - 12 + total - chdr, os.SEEK_CUR)
            out.append((kind, blocks))
    return out


def _flash(simg: Path, card: Path) -> None:
    """What fastboot or uuu does to a device: RAW and FILL blocks written, DONT_CARE skipped
    (the device keeps its old bytes there). Written here from the format's definition."""
    with open(simg, "rb") as f, open(card, "r+b") as c:
        head = f.read(28)
        hdr, chdr = struct.unpack_from("<HH", head, 8)
        bsz, _blocks, total_chunks = struct.unpack_from("<III", head, 12)
        f.seek(hdr)
        block = 0
        for _ in range(total_chunks):
            kind, _, blocks, total = struct.unpack("<HHII", f.read(12))
            f.seek(chdr - 12, os.SEEK_CUR)
            data = f.read(total - chdr)
            if kind == 0xCAC1:
                c.seek(block * bsz)
                c.write(data)
            elif kind == 0xCAC2:
                c.seek(block * bsz)
                c.write(data * (blocks * bsz // 4))
            block += blocks


@pytest.mark.tool
@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_simg2img_gives_back_the_disk_and_flashing_skips_only_unread_bytes(
        tmp_path: Path, table: str) -> None:
    disk = _build(tmp_path, table)
    simg = disk.with_suffix(".simg")
    expanded = tmp_path / "expanded.img"
    subprocess.run([need_tool("simg2img"), str(simg), str(expanded)], check=True)
    assert _digest(expanded) == _digest(disk)
    # Against libsparse's img2simg of the same disk: both small files, but img2simg fills
    # the disk's holes with zeros (a flasher writes them) where ours says "don't care".
    theirs = tmp_path / "theirs.simg"
    subprocess.run([need_tool("img2simg"), str(disk), str(theirs)], check=True)
    ours_written = sum(n for kind, n in _chunks(simg) if kind in (RAW, FILL))
    theirs_written = sum(n for kind, n in _chunks(theirs) if kind in (RAW, FILL))
    print(f"\nsparse file: ours {simg.stat().st_size} bytes, img2simg's "
          f"{theirs.stat().st_size} bytes; blocks a flasher writes: ours {ours_written}, "
          f"img2simg's {theirs_written} of {disk.stat().st_size // BLOCK}")
    assert ours_written * 20 < theirs_written
    assert simg.stat().st_size <= theirs.stat().st_size * 1.01     # chunk headers apart
    assert any(kind == DONT_CARE for kind, _ in _chunks(simg))


@pytest.mark.tool
def test_a_card_flashed_over_old_bytes_reads_as_the_disk(tmp_path: Path) -> None:
    disk = _build(tmp_path)
    card = tmp_path / "card.dev"
    with open(card, "wb") as f:
        for _ in range(disk.stat().st_size // MIB):
            f.write(b"\xa5" * MIB)
    _flash(disk.with_suffix(".simg"), card)
    for number, path in ((1, "/kernel"), (1, "/sub/config.txt"), (2, "/env.txt")):
        want = run_cli("cat", f"{disk}:{number}", path).stdout
        assert run_cli("cat", f"{card}:{number}", path).stdout == want and want
    sfdisk = need_tool("sfdisk")
    tables = [json.loads(subprocess.run([sfdisk, "--json", str(p)], capture_output=True,
                                        text=True, check=True).stdout)["partitiontable"]
              for p in (disk, card)]
    for t in tables:
        t.pop("device")
        for part in t["partitions"]:
            part.pop("node")
    assert tables[0] == tables[1]
    start, size = (tables[1]["partitions"][0][k] * 512 for k in ("start", "size"))
    boot = tmp_path / "boot.fat"
    with open(card, "rb") as c, open(boot, "wb") as b:
        c.seek(start)
        for _ in range(size // MIB):
            b.write(c.read(MIB))
    fsck = subprocess.run([need_tool("fsck.fat"), "-n", str(boot)], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@pytest.mark.tool
def test_the_reader_takes_sparse_files_as_their_raw_images(tmp_path: Path) -> None:
    disk = _build(tmp_path)
    ours = disk.with_suffix(".simg")
    dense = tmp_path / "dense.img"
    subprocess.run(["cp", "--sparse=never", str(disk), str(dense)], check=True)
    theirs = tmp_path / "theirs.simg"              # FILL chunks for the zero runs
    subprocess.run([need_tool("img2simg"), str(dense), str(theirs)], check=True)
    want = _digest(disk)
    for simg in (ours, theirs):
        with open_image(str(simg)) as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == want
            f.seek(2048 * 512 + 3)             # reads that start inside a block
            with open(disk, "rb") as d:
                d.seek(2048 * 512 + 3)
                assert f.read(10_000) == d.read(10_000)
    listing = run_cli("ls", f"{disk}:1", "/").stdout
    assert run_cli("ls", f"{ours}:1", "/").stdout == listing and "kernel" in listing
    assert run_cli("inspect", str(ours)).stdout.replace(str(ours), "X") == \
        run_cli("inspect", str(disk)).stdout.replace(str(disk), "X")
    env = run_cli("cat", f"{disk}:2", "/env.txt").stdout
    assert run_cli("cat", f"{theirs}:2", "/env.txt").stdout == env and "bootcount=0" in env
    proc = run_cli("put", f"{ours}:1", str(tmp_path / "env.txt"), "/env.txt", check=False)
    assert proc.returncode == 1 and "sparse image is read, not changed" in proc.stderr


def test_the_setting_adds_and_removes_the_sparse_file(tmp_path: Path) -> None:
    disk = _build(tmp_path, sparse="false")
    assert not disk.with_suffix(".simg").exists()
    _build(tmp_path, sparse="true")
    assert disk.with_suffix(".simg").exists()
    disk.with_suffix(".simg").unlink()            # a companion removed: made again
    run_cli("build", str(tmp_path / "card.toml"), "--build-dir", str(tmp_path / "build"))
    assert disk.with_suffix(".simg").exists()
    _build(tmp_path, sparse="false", part_sparse="true")
    assert not disk.with_suffix(".simg").exists()
    assert disk.with_name("card.boot.simg").exists()
    _build(tmp_path, sparse="false")
    assert not disk.with_name("card.boot.simg").exists()


@pytest.mark.tool
def test_a_partition_s_sparse_image_is_its_bytes(tmp_path: Path) -> None:
    """What ``fastboot flash boot card.boot.simg`` writes: the partition's bytes, the FAT and
    the room after it (skipped where the disk has holes)."""
    disk = _build(tmp_path, "gpt", sparse="false", part_sparse="true")
    simg = disk.with_name("card.boot.simg")
    expanded = tmp_path / "boot.part"
    subprocess.run([need_tool("simg2img"), str(simg), str(expanded)], check=True)
    table = json.loads(run_cli("inspect", "--json", str(disk)).stdout)["partitiontable"]
    boot = next(p for p in table["partitions"] if p["name"] == "boot")
    start, size = boot["start"] * 512, boot["size"] * 512
    assert expanded.stat().st_size == size
    with open(disk, "rb") as d, open(expanded, "rb") as e:
        d.seek(start)
        for _ in range(size // MIB):
            assert e.read(MIB) == d.read(MIB)
    assert run_cli("ls", str(simg), "/").stdout == run_cli("ls", f"{disk}:1", "/").stdout


@pytest.mark.parametrize(("extra", "words"), [
    ('name = "a/b"\nsize = "1MiB"\nsparse = true\n', "not a plain file name"),
    ('name = "p"\nstart = "1025KiB"\nsize = "1MiB"\nsparse = true\n', "multiples of 4096"),
])
def test_a_partition_that_cannot_be_sparse_is_refused(tmp_path: Path, extra: str,
                                                      words: str) -> None:
    layout = tmp_path / "odd.toml"
    layout.write_text('schema = 1\n[disk]\ntable = "gpt"\nsize = "8MiB"\n'
                      '[[disk.partition]]\n' + extra)
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "disk.partition[0]" in proc.stderr and words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_disk_not_made_of_whole_blocks_is_refused(tmp_path: Path) -> None:
    layout = tmp_path / "odd.toml"
    layout.write_text('schema = 1\n[disk]\ntable = "mbr"\nsize = "4098KiB"\nsparse = true\n'
                      '[[disk.partition]]\nname = "p"\nsize = "1MiB"\n')
    proc = run_cli("build", str(layout), "--build-dir", str(tmp_path / "b"), check=False)
    assert proc.returncode == 1
    assert "disk.sparse" in proc.stderr and "4196352 bytes" in proc.stderr
    assert "Traceback" not in proc.stderr


blocks_st = st.lists(st.one_of(st.just("hole"), st.just("zero"),
                               st.sampled_from([b"\xa5\xa5\xa5\xa5", b"\x01\x02\x03\x04"]),
                               st.binary(min_size=1, max_size=8)), min_size=1, max_size=24)


@settings(max_examples=60, deadline=None)
@given(blocks_st, st.booleans())
def test_random_images_expand_back(tmp_path_factory: pytest.TempPathFactory,
                                   blocks: list[object], crc: bool) -> None:
    work = tmp_path_factory.mktemp("simg")
    raw, out = work / "raw.img", work / "out.simg"
    with open(raw, "wb") as f:
        f.truncate(len(blocks) * BLOCK)
        for i, b in enumerate(blocks):
            if b == "hole":
                continue
            f.seek(i * BLOCK)
            if b == "zero":
                f.write(bytes(BLOCK))
            elif isinstance(b, bytes) and len(b) == 4:
                f.write(b * (BLOCK // 4))
            else:
                assert isinstance(b, bytes)
                f.write((b * BLOCK)[:BLOCK - 1] + b"\x7f")
    src = os.open(raw, os.O_RDONLY)
    dst = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        written = write_sparse(src, len(blocks) * BLOCK, dst, crc)
    finally:
        os.close(src)
        os.close(dst)
    assert written.raw_blocks + written.fill_blocks + written.dont_care_blocks == len(blocks)
    with open(out, "rb") as f, SparseImage(f) as image:
        want = raw.read_bytes()
        assert image.read() == want
        for at in (3, BLOCK + 5):                 # reads that start inside a block
            image.seek(at)
            assert image.read(2 * BLOCK) == want[at:at + 2 * BLOCK]
        assert image.check_crc() is (True if crc else None)


@pytest.mark.tool
def test_disk_sparse_crc_ends_the_images_with_a_crc_simg2img_accepts(tmp_path: Path) -> None:
    disk = _build(tmp_path, "gpt", part_sparse="true")
    layout = tmp_path / "card.toml"
    layout.write_text(layout.read_text().replace("sparse = true\n",
                                                 "sparse = true\nsparse-crc = true\n", 1))
    run_cli("build", str(layout), "--build-dir", str(tmp_path / "build"))
    for simg in (disk.with_suffix(".simg"), disk.with_name("card.boot.simg")):
        kinds = [kind for kind, _ in _chunks(simg)]
        assert kinds[-1] == 0xCAC4 and kinds.count(0xCAC4) == 1, kinds
        with open(simg, "rb") as f, SparseImage(f) as image:
            assert image.check_crc() is True
        subprocess.run([need_tool("simg2img"), str(simg), str(tmp_path / "x.img")],
                       check=True)
    assert _digest(tmp_path / "x.img") != _digest(disk)        # the partition's bytes
    subprocess.run([need_tool("simg2img"), str(disk.with_suffix(".simg")),
                    str(tmp_path / "y.img")], check=True)
    assert _digest(tmp_path / "y.img") == _digest(disk)


def test_a_crc_chunk_catches_a_changed_byte(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw.img", tmp_path / "out.simg"
    raw.write_bytes(os.urandom(3 * BLOCK) + bytes(BLOCK))
    src, dst = os.open(raw, os.O_RDONLY), os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
    write_sparse(src, 4 * BLOCK, dst, crc=True)
    os.close(src)
    os.close(dst)
    data = bytearray(out.read_bytes())
    data[28 + 12 + 100] ^= 1                   # inside the first RAW chunk
    out.write_bytes(bytes(data))
    with open(out, "rb") as f, SparseImage(f) as image:
        assert image.check_crc() is False


def _sparse(chunks: list[tuple[int, int, bytes]], blocks: int, count: int | None = None,
            total_size: int | None = None) -> bytes:
    head = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, BLOCK, blocks,
                       len(chunks) if count is None else count, 0)
    body = b"".join(struct.pack("<HHII", kind, 0, n,
                                12 + len(data) if total_size is None else total_size) + data
                    for kind, n, data in chunks)
    return head + body


@pytest.mark.parametrize(("data", "words"), [
    (_sparse([(RAW, 1, bytes(100))], 1), "needs"),
    (_sparse([(RAW, 2, bytes(2 * BLOCK))], 2)[:-1], "passes the end"),
    (_sparse([(FILL, 1, b"\0\0\0\0")], 1, count=2), "passes the end"),
    (_sparse([(FILL, 3, b"\0\0\0\0")], 2), "passes the image"),
    (_sparse([(FILL, 1, b"\0\0\0\0")], 2), "cover 1 blocks"),
    (_sparse([(0xCAC9, 1, b"")], 1), "unknown type"),
    (_sparse([(DONT_CARE, 1, b"")], 1, total_size=2), "needs"),
    (_sparse([], 0, count=1 << 30), "at most"),
    (b"\x3a\xff\x26\xed" + bytes(10), "header needs"),
    (struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, 4097, 0, 0, 0), "multiple of 4"),
    (struct.pack("<IHHHHIIII", 0xED26FF3A, 2, 0, 28, 12, BLOCK, 0, 0, 0), "version 2"),
])
def test_hostile_sparse_files_are_refused_with_a_reason(tmp_path: Path, data: bytes,
                                                        words: str) -> None:
    path = tmp_path / "bad.simg"
    path.write_bytes(data)
    with open(path, "rb") as f, pytest.raises(FormatError, match=words):
        open_sparse(f)
    proc = run_cli("inspect", str(path), check=False)
    assert proc.returncode == 1 and "android-sparse" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

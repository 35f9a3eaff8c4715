"""Our FAT reader on images made by mkfs.fat + mcopy (also fragmented by deleting and adding
files), and on hostile bytes: mutated boot sectors, FAT loops and cross-linked chains give a
FormatError or a listed problem, never anything else."""

from __future__ import annotations

import io
import random
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.fat.read import FatReader
from tests.conftest import need_tool, run_cli
from tests.fattree import MTOOLS_ENV


def _mtools(*args: str) -> None:
    subprocess.run([need_tool(args[0]), *args[1:]], check=True, env=MTOOLS_ENV,
                   capture_output=True)


def _read_all(image: Path) -> dict[str, bytes]:
    with open(image, "rb") as f:
        reader = FatReader(ByteSource(f))
        assert reader.problems() == []
        return {e.path: b"".join(reader.data(e)) for e in reader.walk() if e.kind == "file"}


@pytest.mark.tool
@pytest.mark.parametrize("fat", ["12", "16", "32"])
def test_reader_on_mkfs_fat_and_mcopy_images_fragmented(fat: str, tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    size = {"12": 2 << 20, "16": 20 << 20, "32": 40 << 20}[fat]
    with open(image, "wb") as f:
        f.truncate(size)
    subprocess.run([need_tool("mkfs.fat"), "-F", fat, "-n", "THEIRS", "-s", "1", str(image)],
                   check=True, capture_output=True)
    rng = random.Random(int(fat))
    files: dict[str, bytes] = {}
    host = tmp_path / "host"
    host.mkdir()
    _mtools("mmd", "-i", str(image), "::/Sub Dir")
    for i in range(12):                         # interleave, then delete every other one
        name = f"Sub Dir/file with a long name {i}.bin" if i % 3 else f"F{i}.TXT"
        data = rng.randbytes(rng.randrange(1, 6000))
        (host / "x").write_bytes(data)
        _mtools("mcopy", "-i", str(image), str(host / "x"), f"::/{name}")
        files[name] = data
    for i in range(0, 12, 2):
        name = next(n for n in files if n.endswith(f" {i}.bin") or n == f"F{i}.TXT")
        _mtools("mdel", "-i", str(image), f"::/{name}")
        del files[name]
    if fat == "32":                             # FSInfo's hint would send mtools past them
        with open(image, "r+b") as f:
            f.seek(512 + 492)
            f.write(struct.pack("<I", 2))
    big = rng.randbytes(20_000)                 # lands in the holes: fragmented
    (host / "big").write_bytes(big)
    _mtools("mcopy", "-i", str(image), str(host / "big"), "::/Sub Dir/fragmented big file.bin")
    files["Sub Dir/fragmented big file.bin"] = big
    assert _read_all(image) == files
    report = run_cli("inspect", "--json", str(image)).stdout
    assert '"contiguous": false' in report and '"label": "THEIRS"' in report
    mapped = run_cli("map", str(image)).stdout.splitlines()
    pieces = [line for line in mapped if line.endswith("/Sub Dir/fragmented big file.bin")]
    assert len(pieces) > 1
    with open(image, "rb") as f:                # the map's pieces are the file's bytes
        joined = b""
        for line in pieces:
            offset, _, length = (int(w) for w in line.split()[:3])
            f.seek(offset)
            joined += f.read(length)
    assert joined == big


def _small_image(tmp_path: Path) -> bytes:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(6):
        (src / "d" / f"a long name number {i}.txt").write_bytes(b"x" * (i * 700))
    image = tmp_path / "small.img"
    run_cli("mkfs", "fat", str(src), "-o", str(image), "--size", "64KiB")
    return image.read_bytes()


def _exercise(data: bytes) -> None:
    try:
        reader = FatReader(ByteSource(io.BytesIO(data)))
        for entry in reader.walk():
            if entry.kind == "file":
                for _ in reader.data(entry):
                    pass
                reader.detail(entry)
        reader.problems()
        reader.summary()
    except FormatError:
        pass


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _small_image(tmp_path_factory.mktemp("small"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 16383), st.integers(0, 255)), min_size=1,
                max_size=12))
def test_mutated_images_give_only_format_errors(small: bytes,
                                                edits: list[tuple[int, int]]) -> None:
    data = bytearray(small)
    for offset, value in edits:
        data[offset] = value
    _exercise(bytes(data))


def _fat_offset(data: bytes) -> int:
    return int(struct.unpack_from("<H", data, 14)[0]) * 512


def test_a_looping_chain_and_a_cross_link_are_reported(small: bytes) -> None:
    reader = FatReader(ByteSource(io.BytesIO(small)))
    files = [e for e in reader.walk() if e.kind == "file" and e.size_bytes > 1024]
    first = int(dict(files[-1].extra)["cluster"])
    data = bytearray(small)
    fat = _fat_offset(small)
    # FAT12: point the file's first cluster at itself.
    at = fat + first * 3 // 2
    value = data[at] | data[at + 1] << 8
    value = (value & 0x000F) | (first << 4) if first & 1 else (value & 0xF000) | first
    struct.pack_into("<H", data, at, value)
    looped = FatReader(ByteSource(io.BytesIO(bytes(data))))
    with pytest.raises(FormatError, match="loops"):
        b"".join(looped.data(looped.lookup(files[-1].path)))
    # Two entries naming the same first cluster: a cross link, listed with its offset.
    crossed = bytearray(small)
    a, b = files[-1], files[-2]
    offset = int(dict(b.extra)["entry_offset"])
    struct.pack_into("<H", crossed, offset + 26, first)
    struct.pack_into("<I", crossed, offset + 28, a.size_bytes)
    problems = FatReader(ByteSource(io.BytesIO(bytes(crossed)))).problems()
    assert any("belongs to both" in p.message for p in problems)


def test_a_truncated_image_is_reported(small: bytes) -> None:
    reader = FatReader(ByteSource(io.BytesIO(small[:1024])))
    with pytest.raises(FormatError, match="pass the end"):
        list(reader.walk())
    with pytest.raises(FormatError):
        FatReader(ByteSource(io.BytesIO(small[:300])))
    half = FatReader(ByteSource(io.BytesIO(small[: len(small) // 2])))
    assert any("the boot sector counts" in p.message for p in half.problem_list)

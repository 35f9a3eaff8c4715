"""A host tree that exercises every FAT naming rule, and the independent checkers' output
parsed: fsck.fat (whose exit code is unreliable, formats.md §6.5), mtools, blkid and 7-Zip."""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
from pathlib import Path

from tests.conftest import need_tool

MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C.UTF-8"}

NAMES = [
    "A long file name.txt",          # long name, spaces
    "README",                        # 8.3 upper case
    "lower.txt",                     # 8.3 lower case: NT case bits, no long name
    "MiXeD.TxT",                     # mixed case: long name
    "two.dots.tar.gz",               # several dots
    "Ünïcödé/日本語のファイル.txt",       # non-ASCII in the BMP
    "Ünïcödé/🎉 party.txt",          # outside the BMP (UTF-16 surrogates)
    ".hidden-leading-dot",
    "empty",
]


def make_tree(root: Path, many: int = 300, big: int = 3 << 20) -> dict[str, bytes]:
    """Files by path (relative, '/'-separated) with their contents."""
    rng = random.Random(7)
    files: dict[str, bytes] = {}
    for i, name in enumerate(NAMES):
        files[name] = b"" if name == "empty" else f"{name}\n{i}\n".encode() * (i + 1)
    files["big/blob.bin"] = rng.randbytes(big)
    for i in range(many):
        files[f"many/file number {i:04d}.txt"] = f"{i}\n".encode() * (i % 50 + 1)
    for path, data in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return files


def as_mtools(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files as mtools names them: it shows each UTF-16 unit of a character outside the
    BMP as '_' (so those names are checked by 7-Zip and the kernel instead)."""
    return {"".join(c if ord(c) < 0x10000 else "__" for c in p): d for p, d in files.items()}


def fsck(image: Path, offset: int = 0) -> str:
    """fsck.fat -n must print only its version line and the summary line."""
    tool = need_tool("fsck.fat")
    proc = subprocess.run([tool, "-n", str(image)], capture_output=True, text=True)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("fsck.fat "), "\n".join(lines)
    assert re.fullmatch(rf"{re.escape(str(image))}: \d+ files, \d+/\d+ clusters", lines[1]), \
        "\n".join(lines)
    return lines[1]


def mtools_files(image: Path, dest: Path, offset: int = 0) -> dict[str, bytes]:
    """Every file as mcopy -s extracts it."""
    tool = need_tool("mcopy")
    dest.mkdir(parents=True, exist_ok=True)
    where = f"{image}@@{offset}" if offset else str(image)
    subprocess.run([tool, "-s", "-n", "-i", where, "::/", str(dest)], check=True,
                   env=MTOOLS_ENV, capture_output=True)
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def mshowfat_runs(image: Path, path: str) -> int:
    """How many runs of clusters mshowfat shows for one file."""
    tool = need_tool("mshowfat")
    out = subprocess.run([tool, "-i", str(image), f"::/{path}"], check=True, env=MTOOLS_ENV,
                         capture_output=True, text=True).stdout
    return len(re.findall(r"<\d+(?:-\d+)?>", out))


def blkid(image: Path) -> dict[str, str]:
    tool = need_tool("blkid")
    out = subprocess.run([tool, "-p", "-o", "export", str(image)], capture_output=True,
                         text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def sevenzip_names(image: Path) -> set[str]:
    tool = need_tool("7zz")
    out = subprocess.run([tool, "l", "-slt", str(image)], capture_output=True, text=True,
                         check=True).stdout
    return {line[7:] for line in out.splitlines() if line.startswith("Path = ")} - {str(image)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

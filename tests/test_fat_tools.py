"""Our FAT images as the independent tools see them: fsck.fat finds nothing to say, mtools
lists every name and copies every file byte-equal with one run of clusters per file, blkid
reports the planned type, version, label and serial, 7-Zip lists the long names (also those
outside the BMP, which mtools cannot show). Every FAT width, both cluster-count boundaries,
512- and 4096-byte sectors, one and two FATs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dfsbuild.images.fat.geometry import Wanted, choose
from tests.conftest import need_tool, run_cli
from tests.fattree import (
    as_mtools,
    blkid,
    fsck,
    make_tree,
    mshowfat_runs,
    mtools_files,
    sevenzip_names,
)


def _exact(bits: int, clusters: int, cluster_bytes: int = 512) -> tuple[int, int]:
    """(size, reserved sectors) whose geometry has exactly ``clusters`` clusters."""
    for kib in range(clusters * cluster_bytes // 1024, clusters * cluster_bytes // 1024 + 4096):
        for reserved in range(1 if bits != 32 else 2, 200):
            try:
                g = choose(kib * 1024, Wanted(bits, cluster_bytes, 512, reserved))
            except ValueError:         # too many clusters for this width: more reserved
                continue
            if g.clusters == clusters:
                return kib * 1024, reserved
            if g.clusters < clusters:
                break
    raise AssertionError(f"no size gives {clusters} FAT{bits} clusters")


CASES = {
    "fat12": (["--fat", "12"], 12),
    "fat16": (["--fat", "16", "--size", "32MiB", "--label", "BOOT"], 16),
    "fat32": (["--fat", "32", "--size", "600MiB", "--label", "data disk"], 32),
    "fat16-4k-sectors": (["--sector-size", "4096", "--size", "64MiB", "--fats", "1"], 16),
    "fat32-4k-sectors": (["--sector-size", "4096", "--size", "300MiB", "--fat", "32"], 32),
    "one-fat": (["--fats", "1", "--size", "12MiB"], 16),
}
BOUNDARIES = [(12, 4084), (16, 4087), (16, 65524), (32, 65525)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("fat") / "tree"
    return root, make_tree(root)


def _check(image: Path, files: dict[str, bytes], tmp_path: Path, bits: int,
           label: str | None = None, clusters: int | None = None,
           blkid_version: str | None = "planned") -> None:
    summary = fsck(image)
    if clusters is not None:
        assert summary.endswith(f"/{clusters} clusters"), summary
    assert mtools_files(image, tmp_path / "mcopy") == as_mtools(files)
    names = subprocess.run(["mdir", "-/", "-b", "-i", str(image), "::/"], capture_output=True,
                           text=True, env={"MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C.UTF-8"},
                           check=True).stdout
    for path in as_mtools(files):
        assert f"::/{path}" in names
    last = max(p for p in files if p.startswith("many/"))
    for path in ("big/blob.bin", "A long file name.txt", last):
        assert mshowfat_runs(image, path) == 1
    found = blkid(image)
    assert found["TYPE"] == "vfat"
    assert found.get("VERSION") == (f"FAT{bits}" if blkid_version == "planned" else blkid_version)
    report = run_cli("inspect", "--json", str(image)).stdout
    serial = re.search(r'"serial": "([0-9A-F]{4}-[0-9A-F]{4})"', report)
    assert serial is not None and found["UUID"] == serial.group(1)
    assert found.get("LABEL", "").replace("\\ ", " ") == (label or "")
    listed = sevenzip_names(image)
    assert set(files) <= listed


@pytest.mark.tool
@pytest.mark.parametrize("case", list(CASES))
def test_fat_checked_by_fsck_mtools_blkid_7zip(case: str, tree: tuple[Path, dict[str, bytes]],
                                               tmp_path: Path) -> None:
    root, files = tree
    args, bits = CASES[case]
    image = tmp_path / "fs.img"
    run_cli("mkfs", "fat", str(root), "-o", str(image), *args)
    label = args[args.index("--label") + 1] if "--label" in args else None
    _check(image, files, tmp_path, bits, label)


@pytest.mark.tool
@pytest.mark.parametrize(("bits", "clusters"), BOUNDARIES)
def test_fat_at_the_cluster_count_boundaries(bits: int, clusters: int, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    files = make_tree(root, many=20, big=1 << 20)
    size, reserved = _exact(bits, clusters)
    image = tmp_path / "fs.img"
    run_cli("mkfs", "fat", str(root), "-o", str(image), "--fat", str(bits), "--size", str(size),
            "--cluster-size", "512", "--reserved-sectors", str(reserved))
    # At 4084 and 65524 clusters blkid's VERSION disagrees with fsck.fat, mtools and the
    # kernel (it says FAT16 at 4084 and nothing at 65524): what it says of mkfs.fat's own
    # image of that geometry is the reference for its VERSION there.
    theirs = tmp_path / "mkfs.fat.img"
    with open(theirs, "wb") as f:
        f.truncate(size)
    subprocess.run([need_tool("mkfs.fat"), "-F", str(bits), "-s", "1", "-R", str(reserved),
                    "-a", str(theirs)], check=True, capture_output=True)
    assert fsck(theirs).endswith(f"/{clusters} clusters")
    _check(image, files, tmp_path, bits, clusters=clusters,
           blkid_version=blkid(theirs).get("VERSION"))


@pytest.mark.tool
def test_no_fat12_with_4085_or_4086_clusters(tmp_path: Path) -> None:
    """Sizes that would give 4085 or 4086 clusters are refused as FAT12 and as FAT16."""
    for bits in (12, 16):
        for kib in range(2040, 2060):
            try:
                g = choose(kib * 1024, Wanted(bits, 512, 512, 1))
            except ValueError:
                continue
            assert g.clusters not in (4085, 4086)
            assert (g.clusters <= 4084) if bits == 12 else (g.clusters >= 4087)

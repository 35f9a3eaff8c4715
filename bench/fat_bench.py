"""FAT benchmarks against mkfs.fat + mcopy -s, in the same run; prints ratios (dfsbuild / peer).

    python bench/fat_bench.py [--work DIR] [--runs 3]

Cases (both into a 512 MiB FAT32, as the peers would be used by genimage):
  small   2,000 small files in 40 directories with long names (target ratio <= 1.0)
  large   one 200 MiB file plus ten 1 MiB files (target ratio <= 1.0)
  memory  peak RSS of `dfsbuild mkfs fat` for a 512 MiB and a 4 GiB image of the same tree
          (must not grow with the image size)
  sparse  bytes the 4 GiB image occupies on disk

Both tools read from the page cache (each is run once to warm it, then timed best-of-N).
Not a test: machines are noisy, so nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.romfs_bench import bench_env, dfsbuild_cmd, peak_rss

SIZE = 512 << 20
ENV = bench_env(MTOOLS_SKIP_CHECK="1")


def make_small(root: Path) -> None:
    for i in range(2000):
        d = root / f"Directory with a long name {i // 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"A file with a long name {i:04d}.txt").write_bytes(f"{i}\n".encode() * (i % 200))


def make_large(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(1 << 20)
    with open(root / "root.img", "wb") as f:
        for _ in range(200):
            f.write(chunk)
    for i in range(10):
        (root / f"module-{i}.bin").write_bytes(os.urandom(1 << 20))


def peers(tree: Path, out: Path) -> None:
    out.unlink(missing_ok=True)
    with open(out, "wb") as f:
        f.truncate(SIZE)
    subprocess.run(["mkfs.fat", "-F", "32", str(out)], check=True, capture_output=True)
    entries = sorted(str(p) for p in tree.iterdir())
    subprocess.run(["mcopy", "-s", "-i", str(out), *entries, "::/"], check=True, env=ENV,
                   capture_output=True)


def ours(tree: Path, out: Path, size: int = SIZE) -> list[str]:
    return [*dfsbuild_cmd(), "mkfs", "fat", str(tree), "-o", str(out), "--size", str(size),
            "--fat", "32"]


def best(fn: object, runs: int) -> float:
    assert callable(fn)
    fn()                                  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for tool in ("mkfs.fat", "mcopy"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install dosfstools mtools)")
            return 1
    work = Path(args.work or tempfile.mkdtemp(prefix="fat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for case, make in (("small", make_small), ("large", make_large)):
        tree = work / case
        if not tree.exists():
            make(tree)
        mine = work / f"{case}-dfsbuild.img"
        theirs = work / f"{case}-peer.img"

        def run_ours(tree: Path = tree, mine: Path = mine) -> None:
            mine.unlink(missing_ok=True)
            subprocess.run(ours(tree, mine), check=True, env=ENV)

        def run_peers(tree: Path = tree, theirs: Path = theirs) -> None:
            peers(tree, theirs)

        t_ours, t_peer = best(run_ours, args.runs), best(run_peers, args.runs)
        results[case] = t_ours / t_peer
        print(f"{case:6}  dfsbuild {t_ours:7.3f}s  mkfs.fat+mcopy {t_peer:7.3f}s  "
              f"ratio {t_ours / t_peer:5.2f}  (target <= 1.00)")
    tree = work / "large"
    small_img, big_img = work / "mem-512m.img", work / "mem-4g.img"
    for p in (small_img, big_img):
        p.unlink(missing_ok=True)
    rss_small = peak_rss(ours(tree, small_img))
    rss_big = peak_rss(ours(tree, big_img, 4 << 30))
    print(f"memory  peak RSS 512 MiB image {rss_small / 1024:.1f} MiB, 4 GiB image "
          f"{rss_big / 1024:.1f} MiB  ratio {rss_big / rss_small:.2f}")
    used = os.stat(big_img).st_blocks * 512
    print(f"sparse  the 4 GiB image holding {sum(p.stat().st_size for p in tree.iterdir()) >> 20}"
          f" MiB occupies {used >> 20} MiB on disk")
    if not args.work:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())

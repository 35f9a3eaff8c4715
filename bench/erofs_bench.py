"""EROFS against mkfs.erofs (uncompressed, erofs-utils), in the same run; prints ratios
(dfsbuild / mkfs.erofs) and image sizes.

    python bench/erofs_bench.py [--work DIR] [--runs 3] [--small 20000] [--large-mib 1024]

Cases (target ratio <= 1.0):
  small   20,000 small files in 40 directories
  mixed   2,000 files of 0 to 64 KiB (most end in a partial block), also with tail-pack
          (the image's size against mkfs.erofs's, which packs tails)
  large   four large files, 1 GiB in all
  verity  the dm-verity hash tree of the large image, against veritysetup format (the same
          salt and UUID: the same bytes); dfsbuild's as the build runs it, in its process
Both read the trees from the page cache (each is run once to warm it, then timed best-of-N).
Not a test: machines are noisy, so nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.romfs_bench import dfsbuild_cmd, make_large, make_small, timed


def make_mixed(root: Path, count: int) -> None:
    import random

    rng = random.Random(23)
    for i in range(count):
        d = root / f"d{i // 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.bin").write_bytes(rng.randbytes(rng.randrange(64 << 10)))


def compare(name: str, src: Path, work: Path, runs: int, mkfs: str,
            *extra: str) -> None:
    ours = [*dfsbuild_cmd(), "mkfs", "erofs", str(src), "-o", str(work / "ours.img"), *extra]
    peer = [mkfs, "--quiet", "-T0", "--all-root", str(work / "peer.img"), str(src)]
    timed(ours, 1)
    timed(peer, 1)
    t_ours, _ = timed(ours, runs)
    t_peer, _ = timed(peer, runs)
    sizes = f"{(work / 'ours.img').stat().st_size >> 10} KiB vs " \
            f"{(work / 'peer.img').stat().st_size >> 10} KiB"
    print(f"{name:<8} dfsbuild {t_ours:7.3f}s  mkfs.erofs {t_peer:7.3f}s  ratio "
          f"{t_ours / t_peer:5.2f} (target <= 1.00)  sizes {sizes}")


def verity(work: Path, runs: int, veritysetup: str) -> None:
    import os
    import time

    from dfsbuild.images.verity.tree import geometry, hash_levels

    data = work / "ours.img"
    size = data.stat().st_size
    salt = bytes(range(32))

    def ours() -> None:
        fd = os.open(data, os.O_RDONLY)
        try:
            hash_levels(fd, size, geometry(size // 4096, 4096, 32), salt, "sha256")
        finally:
            os.close(fd)

    def best(fn: object) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return min(times)

    peer = [veritysetup, "format", f"--salt={salt.hex()}", str(data), str(work / "peer.hash")]
    t_ours = best(ours)
    t_peer = best(lambda: subprocess.run(peer, check=True, stdout=subprocess.DEVNULL))
    print(f"verity   dfsbuild {t_ours:7.3f}s  veritysetup {t_peer:7.3f}s  ratio "
          f"{t_ours / t_peer:5.2f} (target <= 1.00)  of {size >> 20} MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--small", type=int, default=20000, help="number of small files")
    ap.add_argument("--large-mib", type=int, default=1024, help="total MiB of large files")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    mkfs = shutil.which("mkfs.erofs")
    if mkfs is None:
        print("mkfs.erofs is not installed (apt-get install erofs-utils)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dfsbuild-erofs-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        make_small(work / "small", args.small)
        compare("small", work / "small", work, args.runs, mkfs)
        make_mixed(work / "mixed", 2000)
        compare("mixed", work / "mixed", work, args.runs, mkfs)
        compare("packed", work / "mixed", work, args.runs, mkfs, "--tail-pack", "true")
        make_large(work / "large", args.large_mib)
        compare("large", work / "large", work, args.runs, mkfs)
        veritysetup = shutil.which("veritysetup")
        if veritysetup is not None:
            verity(work, args.runs, veritysetup)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""romfs benchmarks against genromfs, in the same run; prints ratios (dfsbuild / peer).

    python bench/romfs_bench.py [--work DIR] [--large-mib 1024] [--small 20000]

Cases:
  small   20,000 small files: `dfsbuild mkfs romfs` vs `genromfs` (target ratio <= 1.5)
  large   a few large files totalling >= 1 GiB (target ratio <= 1.0)
  noop    a no-op `dfsbuild build` of a layout with 10,000 input files (target < 0.5 s wall)
  memory  peak RSS of mkfs for the large tree vs a tree of a tenth the size (must not grow)

Both tools read from the page cache (each is run once to warm it, then timed best-of-N).
Not a test: machines are noisy, so nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_env(**extra: str) -> dict[str, str]:
    """The environment the tools run in: dfsbuild importable, and Python allowed to cache its
    bytecode as on any user's machine (PYTHONDONTWRITEBYTECODE would make every run compile
    dfsbuild again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def dfsbuild_cmd() -> list[str]:
    return [sys.executable, "-m", "dfsbuild"]


def timed(cmd: list[str], runs: int, cwd: Path | None = None) -> tuple[float, int]:
    """Best wall time of ``runs`` runs, and the peak RSS (KiB) of the children."""
    env = bench_env()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def peak_rss(cmd: list[str]) -> int:
    """Peak RSS in KiB of one command, measured by a fresh helper process."""
    code = ("import resource,subprocess,sys;subprocess.run(sys.argv[1:],check=True,"
            "stdout=subprocess.DEVNULL);print(resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss)")
    env = bench_env()
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, env=env,
                         capture_output=True, text=True).stdout
    return int(out.strip())


def make_small(root: Path, count: int) -> None:
    for i in range(count):
        d = root / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.txt").write_bytes(f"file {i}\n".encode() * (1 + i % 40))


def make_large(root: Path, total_mib: int, files: int = 4) -> None:
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    for i in range(files):
        with open(root / f"blob{i}.bin", "wb") as f:
            for _ in range(total_mib // files):
                f.write(block)


def compare(name: str, src: Path, work: Path, runs: int, genromfs: str) -> float:
    ours = [*dfsbuild_cmd(), "mkfs", "romfs", str(src), "-o", str(work / "ours.img"), "-V", "b"]
    peer = [genromfs, "-f", str(work / "peer.img"), "-d", str(src), "-V", "b"]
    timed(ours, 1)
    timed(peer, 1)
    t_ours, _ = timed(ours, runs)
    t_peer, _ = timed(peer, runs)
    ratio = t_ours / t_peer
    print(f"{name:<8} dfsbuild {t_ours:7.3f}s  genromfs {t_peer:7.3f}s  ratio {ratio:5.2f}")
    return ratio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--small", type=int, default=20000, help="number of small files")
    ap.add_argument("--large-mib", type=int, default=1024, help="total MiB of large files")
    ap.add_argument("--noop-files", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    genromfs = shutil.which("genromfs")
    if genromfs is None:
        print("genromfs is not installed (apt-get install genromfs)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dfsbuild-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        make_small(work / "small", args.small)
        compare("small", work / "small", work, args.runs, genromfs)
        make_large(work / "large", args.large_mib)
        compare("large", work / "large", work, args.runs, genromfs)

        make_large(work / "tenth", max(args.large_mib // 10, 4))
        big = peak_rss([*dfsbuild_cmd(), "mkfs", "romfs", str(work / "large"), "-o",
                        str(work / "m1.img")])
        small = peak_rss([*dfsbuild_cmd(), "mkfs", "romfs", str(work / "tenth"), "-o",
                          str(work / "m2.img")])
        print(f"memory   peak RSS {big / 1024:6.1f} MiB for {args.large_mib} MiB of data, "
              f"{small / 1024:6.1f} MiB for a tenth: ratio {big / small:4.2f}")

        proj = work / "noop"
        make_small(proj / "tree", args.noop_files)
        (proj / "layouts").mkdir(parents=True)
        (proj / "layouts" / "big.toml").write_text(
            'schema = 1\n[image.root]\ntype = "romfs"\ntree = "../tree"\n')
        build = [*dfsbuild_cmd(), "build"]
        timed(build, 1, cwd=proj)
        t_noop, _ = timed(build, max(args.runs, 5), cwd=proj)
        print(f"noop     dfsbuild build of {args.noop_files} files, nothing changed: "
              f"{t_noop:.3f}s wall (target < 0.5s)")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

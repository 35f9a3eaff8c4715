"""The files made for flashing, against the tools users would run on the raw disk, in the same
run; prints ratios (dfsbuild / peer) and sizes.

    python bench/flash_bench.py [--work DIR] [--runs 3] [--mib 100]

The disk: a 1 GiB GPT card with a 512 MiB FAT32 holding MIB of files (half random, half text)
and a 256 MiB romfs of the same tree. Cases (target ratio <= 1.0 each):
  sparse  dfsbuild's Android sparse writer against libsparse's img2simg
  xz      dfsbuild's reproducible xz against xz -T0 -6
  zstd    dfsbuild's reproducible zstd against zstd -T0 -3
dfsbuild's writers run as the build runs them (in its process, after the disk is written);
the peers as commands. Best of RUNS. Not a test: machines are noisy, nothing fails on a number.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.romfs_bench import bench_env, dfsbuild_cmd  # noqa: E402
from dfsbuild.fileio.compress import compress_file  # noqa: E402
from dfsbuild.fileio.simg import write_simg  # noqa: E402

LAYOUT = """schema = 1
[image.boot]
type = "fat"
fat = 32
size = "512MiB"
tree = "../tree"
[image.rootfs]
type = "romfs"
tree = "../tree"
[disk]
table = "gpt"
size = "1GiB"
[[disk.partition]]
name = "boot"
image = "boot"
[[disk.partition]]
name = "rootfs"
image = "rootfs"
size = "rest"
"""


def best(runs: int, fn: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_tree(root: Path, mib: int) -> None:
    root.mkdir(parents=True)
    text = b"".join(b"line %d of a text file in the tree\n" % i for i in range(30_000))
    for i in range(mib):
        d = root / f"d{i // 10:02d}"
        d.mkdir(exist_ok=True)
        data = os.urandom(1 << 20) if i % 2 else (text * 2)[:1 << 20]
        (d / f"f{i:03d}.bin").write_bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=100)
    args = ap.parse_args()
    tools = {t: shutil.which(t) for t in ("img2simg", "xz", "zstd")}
    if None in tools.values():
        print("missing: apt-get install android-sdk-libsparse-utils xz-utils zstd",
              file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dfsbuild-flash-bench-", dir="/var/tmp"))
    try:
        make_tree(work / "tree", args.mib)
        (work / "layouts").mkdir()
        (work / "layouts" / "card.toml").write_text(LAYOUT)
        subprocess.run([*dfsbuild_cmd(), "build", "-q"], cwd=work, env=bench_env(),
                       check=True)
        disk = work / "build" / "card" / "card.img"
        out = work / "out"
        out.mkdir()

        def peer(cmd: list[str], dest: Path) -> Callable[[], None]:
            def run() -> None:
                with open(dest, "wb") as f:
                    subprocess.run(cmd, stdout=f, check=True)
            return run

        cases = [
            ("sparse", lambda: write_simg(str(disk), str(out / "ours.simg")),
             lambda: subprocess.run([str(tools["img2simg"]), str(disk),
                                     str(out / "theirs.simg")], check=True),
             "ours.simg", "theirs.simg"),
            ("xz", lambda: compress_file(str(disk), str(out / "ours.xz"), "xz"),
             peer([str(tools["xz"]), "-T0", "-6", "-c", str(disk)], out / "theirs.xz"),
             "ours.xz", "theirs.xz"),
            ("zstd", lambda: compress_file(str(disk), str(out / "ours.zst"), "zstd"),
             peer([str(tools["zstd"]), "-q", "-T0", "-3", "-c", str(disk)],
                  out / "theirs.zst"),
             "ours.zst", "theirs.zst"),
        ]
        print(f"disk {disk.stat().st_size >> 20} MiB, {args.mib} MiB of files in a FAT32 and "
              "a romfs")
        for name, ours, theirs, mine, peers in cases:
            t_ours, t_peer = best(args.runs, ours), best(args.runs, theirs)
            print(f"{name:7s} dfsbuild {t_ours:6.2f}s  peer {t_peer:6.2f}s  ratio "
                  f"{t_ours / t_peer:4.2f} (target <= 1.00)  sizes "
                  f"{(out / mine).stat().st_size >> 10} KiB vs "
                  f"{(out / peers).stat().st_size >> 10} KiB")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

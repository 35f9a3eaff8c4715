"""A fresh checkout's time to outputs with the remote cache, against building from scratch and
against copying the outputs with ``cp``, in the same run; prints ratios.

    python bench/remote_bench.py [--files 10000] [--mib 100] [--runs 3]

The project: a 512 MiB MBR disk with three images (a 10,000-file romfs rootfs, a 32 MiB raw
kernel, a small FAT boot partition). A first checkout builds and uploads to nginx (WebDAV on
loopback); each timed run is a fresh ``git clone`` (no build directory, no local cache), so the
content ids of its clean files come from git's index. Target: the remote cache at most
0.4 x a scratch build of the same checkout.
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

from bench.engine_bench import KERNEL_MIB, make_tree
from bench.nginx_dav import nginx_dav
from bench.romfs_bench import bench_env, dfsbuild_cmd

LAYOUT = f"""schema = 1
[disk]
table = "mbr"
size = "512MiB"
[[disk.partition]]
name = "boot"
image = "boot"
type = "fat16-lba"
[[disk.partition]]
name = "kernel"
image = "kernel"
size = "{KERNEL_MIB + 1}MiB"
[[disk.partition]]
name = "rootfs"
image = "rootfs"
size = "rest"
[image.boot]
type = "fat"
size = "16MiB"
tree = "../boot"
[image.kernel]
type = "raw"
file = "../kernel.bin"
[image.rootfs]
type = "romfs"
tree = "../tree"
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def checkout(src: Path, dest: Path) -> None:
    """A fresh ``git clone`` of the project (its sources only, no build directory)."""
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(src), str(dest)], check=True)
    time.sleep(1.1)       # git's racy rule: files as old as the index are read, not trusted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    nginx = shutil.which("nginx")
    if nginx is None:
        print("nginx is not installed (apt-get install nginx-light)")
        return 1
    with tempfile.TemporaryDirectory(prefix="remote-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        src = work / "repo"
        make_tree(src / "tree", args.files, args.mib)
        (src / "kernel.bin").write_bytes(os.urandom(KERNEL_MIB << 20))
        (src / "boot").mkdir()
        (src / "boot" / "cmdline.txt").write_text("console=ttyS0\n")
        (src / "layouts").mkdir()
        (src / "layouts" / "board.toml").write_text(LAYOUT)
        (src / ".gitignore").write_text("build/\n")
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "sources"]):
            subprocess.run([*git, *step], cwd=src, check=True)
        with nginx_dav(nginx, work / "nginx") as (url, _store):
            env = bench_env()
            build = [*dfsbuild_cmd(), "build", "-q"]
            subprocess.run([*build, "--remote-cache", url], cwd=src, env=env, check=True)
            remote, scratch, copy = [], [], []
            for _ in range(args.runs):
                clone = work / "clone"
                checkout(src, clone)
                remote.append(timed([*build, "--remote-cache", url], clone, env))
                checkout(src, clone)
                scratch.append(timed([*build, "--no-cache"], clone, env))
                shutil.rmtree(work / "copy", ignore_errors=True)
                copy.append(timed(["cp", "-r", str(src / "build" / "board"),
                                   str(work / "copy")], work, env))
        r, s, c = min(remote), min(scratch), min(copy)
        print(f"remote cache  {r:6.3f}s  ratio to scratch {r / s:4.2f} (target <= 0.40), "
              f"to cp {r / c:5.2f}")
        print(f"from scratch  {s:6.3f}s  ratio to cp {s / c:5.2f}")
        print(f"cp outputs    {c:6.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

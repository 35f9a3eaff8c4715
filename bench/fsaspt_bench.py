"""The filesystem-as-partition-table sample (layouts/fsaspt-mbr.toml) built by dfsbuild and by
the peers' way, in the same run; prints ratios (dfsbuild / peers).

    python bench/fsaspt_bench.py [--runs 3]

Peers: genromfs for root.img and root-b.img, GNU cpio + gzip -n for the initramfs, a TrivialFS
env.img (dfsbuild's, the peers have none), mkfs.fat + mcopy for the FAT, sfdisk + dd for the
MBR disk: every step every time, as a Makefile of shell commands would run them.
Cases:
  cold    from nothing (dfsbuild: empty build directory and cache)
  change  one file of root.img's tree changed (target: at most 0.5 x the peers' rebuild)
Not a test: machines are noisy, so nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.romfs_bench import bench_env, dfsbuild_cmd

ROOT = Path(__file__).resolve().parent.parent
ENV = bench_env(MTOOLS_SKIP_CHECK="1")


def sh(cmd: str, cwd: Path) -> None:
    subprocess.run(["bash", "-c", f"set -euo pipefail; {cmd}"], cwd=cwd, check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def peers(project: Path, out: Path) -> None:
    """Everything, the way shell glue would build it."""
    s = project / "samples" / "fsaspt"
    out.mkdir(exist_ok=True)
    for name, label in (("root", "root-a"), ("root-b", "root-b")):
        stage = out / f"{name}-tree"
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(s / "root", stage, symlinks=True)
        for d in ("boot", "dev", "proc", "sys", "tmp", "bin", "etc"):
            (stage / d).mkdir(exist_ok=True)
        shutil.copy("/bin/busybox", stage / "bin" / "busybox")
        shutil.copy(s / f"{label}.name", stage / "etc" / "image-name")
        sh(f"genromfs -f {out}/{name}.img -d {stage} -V {label}", out)
    stage = out / "initramfs-tree"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(s / "initramfs", stage, symlinks=True)
    for d in ("dev", "proc", "sys", "boot", "newroot", "tmp", "bin"):
        (stage / d).mkdir(exist_ok=True)
    shutil.copy("/bin/busybox", stage / "bin" / "busybox")
    sh(f"find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n -9 > {out}/initramfs.img",
       stage)
    shutil.copy(project / "build" / "fsaspt-mbr" / "env.img", out / "env.img")
    sh(f"rm -f {out}/boot.img; truncate -s 64M {out}/boot.img; "
       f"mkfs.fat -F 32 -n FSASPT {out}/boot.img; "
       f"mcopy -i {out}/boot.img {out}/root.img {out}/root-b.img {out}/env.img "
       f"{out}/initramfs.img {s}/kernel/vmlinuz {s}/boot/init ::/", out)
    sh(f"rm -f {out}/disk.img; truncate -s 80M {out}/disk.img; "
       f"echo 'start=2048, size=131072, type=c, bootable' | sfdisk -q {out}/disk.img; "
       f"dd if={out}/boot.img of={out}/disk.img bs=1M seek=1 conv=notrunc,sparse", out)


def ours(project: Path) -> None:
    subprocess.run([*dfsbuild_cmd(), "build", "-q", "layouts/fsaspt-mbr.toml"], cwd=project,
                   check=True, env=ENV)


def timed(fn: object) -> float:
    assert callable(fn)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for tool in ("genromfs", "cpio", "mkfs.fat", "mcopy", "sfdisk"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed")
            return 1
    if not (ROOT / "samples" / "fsaspt" / "kernel" / "vmlinuz").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "fetch-kernel")], check=True)
    with tempfile.TemporaryDirectory(prefix="fsaspt-bench-") as tmp:
        project = Path(tmp) / "project"
        (project / "layouts").mkdir(parents=True)
        shutil.copy(ROOT / "layouts" / "fsaspt-mbr.toml", project / "layouts")
        shutil.copytree(ROOT / "samples" / "fsaspt", project / "samples" / "fsaspt")
        name = project / "samples" / "fsaspt" / "root-a.name"
        cold, peer_cold, change, peer_change = [], [], [], []
        for run in range(args.runs):
            shutil.rmtree(project / "build", ignore_errors=True)
            cold.append(timed(lambda: ours(project)))
            peer_cold.append(timed(lambda: peers(project, Path(tmp) / "peers")))
            name.write_text(f"root-a, edit {run}\n")
            change.append(timed(lambda: ours(project)))
            peer_change.append(timed(lambda: peers(project, Path(tmp) / "peers")))
        for case, a, b, target in (("cold", cold, peer_cold, ""),
                                   ("change", change, peer_change, "  (target <= 0.50)")):
            print(f"{case:6}  dfsbuild {min(a):6.3f}s  peers {min(b):6.3f}s  "
                  f"ratio {min(a) / min(b):5.2f}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The build engine's loop against the peers' full rebuild, in the same run; prints ratios.

    python bench/engine_bench.py [--work DIR] [--runs 5] [--files 10000] [--mib 100] [--small-only]

The project: a romfs rootfs of 10,000 files (100 MiB) and a 32 MiB raw kernel blob in a
512 MiB MBR disk. The peers (genromfs + genimage) have no incremental mode, so their figure is
always the full rebuild.

Cases (targets from the engine issue):
  noop      `dfsbuild build` with nothing changed (target <= 0.15 s; `git status` on the same
            tree is printed beside it for scale)
  edit      one file of the rootfs rewritten, then `dfsbuild build` (a new rootfs image and a
            new disk) vs `genromfs` + `genimage` (target ratio <= 0.5)
  relayout  only the disk's layout changed (its disk-id): the disk is patched in place (its
            table rewritten, no partition copied), vs `genimage` alone
  assemble  the disk output removed: it is assembled from the unchanged images (the images
            are not rebuilt), vs `genimage` alone (target ratio <= 1.0)
  cache     ten one-line edits, each appended to another rootfs file (every later file
            moves), each built: what the rootfs takes in the cache then, over one rootfs
            image (target <= 1.2)
  small     a small card (a 16 MiB FAT boot partition of a few files and a 300-file, 3 MiB
            romfs rootfs in a 64 MiB MBR disk): one rootfs file edited, vs genromfs +
            genimage building the card (target ratio <= 0.7)

Figures are medians. Not a test: machines are noisy, so nothing here fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.romfs_bench import bench_env  # noqa: E402

KERNEL_MIB = 32


def run(cmd: list[str], cwd: Path | None = None) -> None:
    env = bench_env()
    subprocess.run(cmd, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def best(runs: int, prepare: Callable[[], None], cmd: Callable[[], None]) -> float:
    """The median of ``runs`` timed runs, each after ``prepare`` (not timed)."""
    times = []
    for _ in range(runs):
        prepare()
        start = time.perf_counter()
        cmd()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layout(disk_id: int) -> str:
    return f"""schema = 1
[disk]
table = "mbr"
manifest = false      # genimage writes none: the same outputs on both sides
size = "512MiB"
disk-id = "0x{disk_id:08x}"
[[disk.partition]]
name = "kernel"
image = "kernel"
size = "{KERNEL_MIB + 1}MiB"
[[disk.partition]]
name = "rootfs"
image = "rootfs"
size = "rest"
[image.kernel]
type = "raw"
file = "../kernel.bin"
[image.rootfs]
type = "romfs"
tree = "../tree"
"""


GENIMAGE = f"""image rootfs.img {{
  file {{ }}
  size = 0
}}
image disk.img {{
  size = 512M
  hdimage {{ partition-table-type = "mbr" }}
  partition kernel {{ image = "kernel.bin" size = {KERNEL_MIB + 1}M partition-type = 0x83 }}
  partition rootfs {{ image = "rootfs.img" partition-type = 0x83 }}
}}
"""


SMALL_LAYOUT = """schema = 1
[disk]
table = "mbr"
manifest = false      # genimage writes none: the same outputs on both sides
size = "64MiB"
[[disk.partition]]
name = "boot"
image = "boot"
type = "fat16-lba"
bootable = true
[[disk.partition]]
name = "rootfs"
image = "rootfs"
[image.boot]
type = "fat"
size = "16MiB"
tree = "../boot"
[image.rootfs]
type = "romfs"
tree = "../tree"
"""

SMALL_GENIMAGE = """image boot.vfat {
  vfat { label = "BOOT" }
  size = 16M
  mountpoint = "/boot"
}
image card.img {
  size = 64M
  hdimage { partition-table-type = "mbr" }
  partition boot { image = "boot.vfat" partition-type = 0x0e bootable = true }
  partition rootfs { image = "rootfs.img" partition-type = 0x83 }
}
"""


def small_card(runs: int, work: Path, tools: dict[str, str | None]) -> None:
    """The edit loop on a small card, against the peers building it whole."""
    paths = make_tree(work / "tree", 300, 3)
    (work / "boot").mkdir()
    for name, size in (("kernel.img", 1 << 20), ("config.txt", 300), ("cmdline.txt", 80)):
        (work / "boot" / name).write_bytes(os.urandom(size))
    time.sleep(2.1)             # past the racy-stat window, as real inputs are
    (work / "layouts").mkdir()
    (work / "layouts" / "card.toml").write_text(SMALL_LAYOUT)
    dfs = [sys.executable, "-m", "dfsbuild", "build", "-q"]
    run(dfs, cwd=work)
    edits = iter(range(1, 10**6))

    def edit() -> None:
        victim = paths[len(paths) // 2]
        data = bytearray(victim.read_bytes())
        data[:8] = next(edits).to_bytes(8, "little")
        victim.write_bytes(bytes(data))

    t_edit = best(runs, edit, lambda: run(dfs, cwd=work))
    peer = work / "peer"

    def prepare() -> None:
        shutil.rmtree(peer, ignore_errors=True)
        for d in ("in", "out", "tmp"):
            (peer / d).mkdir(parents=True)
        shutil.copytree(work / "boot", peer / "root" / "boot")
        (peer / "genimage.cfg").write_text(SMALL_GENIMAGE)

    def full() -> None:
        run([str(tools["genromfs"]), "-f", str(peer / "in" / "rootfs.img"),
             "-d", str(work / "tree"), "-V", "rootfs"])
        run([str(tools["genimage"]), "--config", str(peer / "genimage.cfg"),
             "--inputpath", str(peer / "in"), "--outputpath", str(peer / "out"),
             "--tmppath", str(peer / "tmp"), "--rootpath", str(peer / "root")])

    t_peer = best(runs, prepare, full)
    print(f"small    dfsbuild {t_edit:6.3f}s  genromfs+genimage {t_peer:6.3f}s "
          f"(ratio {t_edit / t_peer:4.2f}, target <= 0.70)")


def cache_bytes(work: Path) -> int:
    """What the project's local cache holds on disk (its pieces)."""
    out = subprocess.run([sys.executable, "-m", "dfsbuild", "cache", "stats", "--json"],
                         cwd=work, env=bench_env(), check=True, capture_output=True, text=True)
    return int(json.loads(out.stdout)["bytes"])


def make_tree(root: Path, files: int, total_mib: int) -> list[Path]:
    size = (total_mib << 20) // files
    paths = []
    for i in range(files):
        d = root / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"f{i:05d}"
        p.write_bytes(os.urandom(size))
        paths.append(p)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--small-only", action="store_true", help="only the small card")
    args = ap.parse_args()
    tools = {t: shutil.which(t) for t in ("genimage", "genromfs", "git", "mkdosfs", "mcopy")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        print(f"missing tools: {', '.join(missing)} (apt-get install genimage genromfs git "
              "dosfstools mtools)",
              file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dfsbuild-engine-bench-", dir="/var/tmp"))
    try:
        if args.small_only:
            small_card(args.runs, work / "small", tools)
            return 0
        paths = make_tree(work / "tree", args.files, args.mib)
        (work / "kernel.bin").write_bytes(os.urandom(KERNEL_MIB << 20))
        git = [str(tools["git"]), f"--git-dir={work / 'tree.git'}", f"--work-tree={work / 'tree'}"]
        run([*git, "init", "-q"])
        run([*git, "add", "-A"])
        # Inputs younger than 2 s are hashed on every run and their keys not remembered (the
        # racy-stat rule); real inputs are older than that when anyone rebuilds.
        time.sleep(2.1)
        (work / "layouts").mkdir(exist_ok=True)
        (work / "layouts" / "board.toml").write_text(layout(1))
        dfs = [sys.executable, "-m", "dfsbuild", "build", "-q"]
        run(dfs, cwd=work)
        run(dfs, cwd=work)

        t_noop = best(args.runs, lambda: None, lambda: run(dfs, cwd=work))
        t_git = best(args.runs, lambda: None,
                     lambda: run([*git, "status", "--short"]))
        print(f"noop     dfsbuild {t_noop:6.3f}s (target <= 0.150)  git status {t_git:6.3f}s")

        edits = iter(range(1, 10**6))

        def edit() -> None:
            victim = paths[len(paths) // 2]
            data = bytearray(victim.read_bytes())
            data[:8] = next(edits).to_bytes(8, "little")
            victim.write_bytes(bytes(data))

        t_edit = best(args.runs, edit, lambda: run(dfs, cwd=work))

        peer = work / "peer"

        def peer_prepare() -> None:
            shutil.rmtree(peer, ignore_errors=True)
            for d in ("in", "out", "tmp", "root"):
                (peer / d).mkdir(parents=True)
            os.link(work / "kernel.bin", peer / "in" / "kernel.bin")
            (peer / "genimage.cfg").write_text(GENIMAGE)

        def genimage() -> None:
            run([str(tools["genimage"]), "--config", str(peer / "genimage.cfg"),
                 "--inputpath", str(peer / "in"), "--outputpath", str(peer / "out"),
                 "--tmppath", str(peer / "tmp"), "--rootpath", str(peer / "root")])

        def peer_full() -> None:
            run([str(tools["genromfs"]), "-f", str(peer / "in" / "rootfs.img"),
                 "-d", str(work / "tree"), "-V", "rootfs"])
            genimage()

        t_peer = best(args.runs, peer_prepare, peer_full)
        print(f"edit     dfsbuild {t_edit:6.3f}s  genromfs+genimage {t_peer:6.3f}s "
              f"(ratio {t_edit / t_peer:4.2f}, target <= 0.50)")

        ids = iter(range(2, 10**6))

        def relayout() -> None:
            (work / "layouts" / "board.toml").write_text(layout(next(ids)))

        t_rel = best(args.runs, relayout, lambda: run(dfs, cwd=work))

        def unassemble() -> None:
            (work / "build" / "board" / "board.img").unlink()

        t_asm = best(args.runs, unassemble, lambda: run(dfs, cwd=work))

        def gen_prepare() -> None:
            for d in ("out", "tmp", "root"):
                shutil.rmtree(peer / d, ignore_errors=True)
                (peer / d).mkdir()

        t_gen = best(args.runs, gen_prepare, genimage)
        print(f"relayout dfsbuild {t_rel:6.3f}s  genimage {t_gen:6.3f}s "
              f"(ratio {t_rel / t_gen:4.2f})")
        print(f"assemble dfsbuild {t_asm:6.3f}s  genimage {t_gen:6.3f}s "
              f"(ratio {t_asm / t_gen:4.2f}, target <= 1.00)")

        before = cache_bytes(work)
        for n in range(10):
            with open(paths[(n * 997) % len(paths)], "ab") as f:
                f.write(b"one more line %d\n" % n)
            run(dfs, cwd=work)
        rootfs = (work / "build" / "board" / "rootfs.img").stat().st_size
        grown = cache_bytes(work) - before
        print(f"cache    rootfs after ten edits {(rootfs + grown) / 2**20:6.1f} MiB, one image "
              f"{rootfs / 2**20:6.1f} MiB (ratio {(rootfs + grown) / rootfs:4.2f}, "
              "target <= 1.20)")
        small_card(args.runs, work / "small", tools)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

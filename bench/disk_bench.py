"""Disk assembly benchmarks against genimage and sfdisk + dd, in the same run; prints ratios.

    python bench/disk_bench.py [--work DIR] [--runs 3]

Cases:
  assemble  an MBR disk of 512 MiB with three partitions filled from existing image files
            (100, 50 and 20 MiB of random data): `dfsbuild build` when only the disk has to be
            written (its layout changed, the images did not) vs `genimage` with an equivalent
            config vs `sfdisk` + three `dd conv=sparse,notrunc`. Ratios are dfsbuild / peer.
  sparse    a 16 GiB GPT disk holding about 100 MiB: dfsbuild's wall time and the blocks the
            output really occupies (and genimage's, for comparison).

dfsbuild also hashes new inputs and stores every output in its content-addressed cache (a
second copy of the disk, free on filesystems where copy_file_range clones, such as XFS and
Btrfs; a real copy on ext4); the peers do neither.

Not a test: nothing here fails on a number.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.romfs_bench import bench_env  # noqa: E402

SIZES_MIB = (100, 50, 20)


def run(cmd: list[str], cwd: Path | None = None, stdin: str | None = None) -> None:
    env = bench_env()
    subprocess.run(cmd, check=True, cwd=cwd, env=env, input=stdin, text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def best(runs: int, prepare: object, cmd: object) -> float:
    times = []
    for _ in range(runs):
        assert callable(prepare) and callable(cmd)
        prepare()
        start = time.perf_counter()
        cmd()
        times.append(time.perf_counter() - start)
    return min(times)


def layout(table: str, size: str, disk_id: int, sizes: tuple[int, ...]) -> str:
    text = f'schema = 1\n[disk]\ntable = "{table}"\nsize = "{size}"\n'
    if table == "mbr":
        text += f'disk-id = "0x{disk_id:08x}"\n'
    else:
        text += f'seed = "s{disk_id}"\n'
    for i, mib in enumerate(sizes):
        last = i == len(sizes) - 1 and table == "gpt"
        size_line = 'size = "rest"' if last else f'size = "{mib + 1}MiB"'
        text += f'[[disk.partition]]\nname = "p{i}"\nimage = "p{i}"\n{size_line}\n'
    for i in range(len(sizes)):
        text += f'[image.p{i}]\ntype = "raw"\nfile = "../in/p{i}.img"\n'
    return text


def genimage_config(table: str, size: str, sizes: tuple[int, ...]) -> str:
    parts = "".join(
        f'  partition p{i} {{\n    image = "p{i}.img"\n    size = {mib + 1}M\n'
        f'    partition-type{"-uuid" if table == "gpt" else ""} = '
        f'{"L" if table == "gpt" else "0x83"}\n  }}\n'
        for i, mib in enumerate(sizes))
    return (f'image disk.img {{\n  size = {size}\n  hdimage {{\n    partition-table-type = '
            f'"{table}"\n  }}\n{parts}}}\n')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tools = {t: shutil.which(t) for t in ("genimage", "sfdisk", "dd")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        print(f"missing tools: {', '.join(missing)} (apt-get install genimage fdisk)",
              file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dfsbuild-disk-bench-", dir="/var/tmp"))
    try:
        inp = work / "in"
        inp.mkdir(parents=True, exist_ok=True)
        for i, mib in enumerate(SIZES_MIB):
            (inp / f"p{i}.img").write_bytes(os.urandom(mib << 20))
        # Inputs younger than 2 s are re-hashed on every run (racy-stat rule); real inputs
        # are older than that by the time anyone rebuilds, so let these age.
        time.sleep(2.1)
        (work / "layouts").mkdir(exist_ok=True)
        dfs = [sys.executable, "-m", "dfsbuild", "build"]
        counter = iter(range(1, 10**6))

        def dfs_prepare() -> None:
            n = next(counter)
            (work / "layouts" / "d.toml").write_text(layout("mbr", "512MiB", n, SIZES_MIB))

        dfs_prepare()
        run(dfs, cwd=work)  # build the raw images once; later runs only write the disk
        t_dfs = best(args.runs, dfs_prepare, lambda: run(dfs, cwd=work))

        cfg = work / "genimage.cfg"
        cfg.write_text(genimage_config("mbr", "512M", SIZES_MIB))

        def gen_prepare() -> None:
            for d in ("gout", "gtmp", "groot"):
                shutil.rmtree(work / d, ignore_errors=True)
            (work / "groot").mkdir()

        gen = [str(tools["genimage"]), "--config", str(cfg), "--inputpath", str(inp),
               "--outputpath", str(work / "gout"), "--tmppath", str(work / "gtmp"),
               "--rootpath", str(work / "groot")]
        t_gen = best(args.runs, gen_prepare, lambda: run(gen))

        target = work / "sfdisk.img"
        script = "label: dos\n" + "".join(
            f"size={mib + 1}MiB, type=83\n" for mib in SIZES_MIB)

        def sf_prepare() -> None:
            target.unlink(missing_ok=True)

        def sf_run() -> None:
            with open(target, "wb") as f:
                f.truncate(512 << 20)
            run([str(tools["sfdisk"]), "-q", str(target)], stdin=script)
            start = 2048
            for i, mib in enumerate(SIZES_MIB):
                run([str(tools["dd"]), f"if={inp / f'p{i}.img'}", f"of={target}", "bs=1M",
                     f"seek={start * 512}", "oflag=seek_bytes", "conv=sparse,notrunc"])
                start += (mib + 1) * 2048
        t_sf = best(args.runs, sf_prepare, sf_run)
        print(f"assemble dfsbuild {t_dfs:6.3f}s  genimage {t_gen:6.3f}s "
              f"(ratio {t_dfs / t_gen:4.2f})  sfdisk+dd {t_sf:6.3f}s (ratio {t_dfs / t_sf:4.2f})")

        big = work / "big"
        (big / "layouts").mkdir(parents=True, exist_ok=True)
        (big / "in").mkdir(exist_ok=True)
        for i, mib in enumerate((30, 60, 10)):
            (big / "in" / f"p{i}.img").write_bytes(os.urandom(mib << 20))
        (big / "layouts" / "big.toml").write_text(layout("gpt", "16GiB", 1, (30, 60, 10)))
        start = time.perf_counter()
        run(dfs, cwd=big)
        t_big = time.perf_counter() - start
        st = (big / "build" / "big" / "big.img").stat()
        print(f"sparse   16 GiB GPT disk, 100 MiB of data: dfsbuild build {t_big:6.3f}s "
              f"(cold, three images and the disk), {st.st_blocks * 512 / 2**20:6.1f} MiB "
              f"allocated of {st.st_size / 2**30:.0f} GiB")
        cfg_big = big / "genimage.cfg"
        cfg_big.write_text(genimage_config("gpt", "16G", (30, 60, 10)).replace(
            "    size = 11M\n", ""))
        for d in ("gout", "gtmp", "groot"):
            shutil.rmtree(big / d, ignore_errors=True)
        (big / "groot").mkdir()
        start = time.perf_counter()
        run([str(tools["genimage"]), "--config", str(cfg_big), "--inputpath",
             str(big / "in"), "--outputpath", str(big / "gout"), "--tmppath",
             str(big / "gtmp"), "--rootpath", str(big / "groot")])
        t_gbig = time.perf_counter() - start
        gst = (big / "gout" / "disk.img").stat()
        print(f"sparse   genimage {t_gbig:6.3f}s, {gst.st_blocks * 512 / 2**20:6.1f} MiB "
              f"allocated (ratio of times {t_big / t_gbig:4.2f})")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

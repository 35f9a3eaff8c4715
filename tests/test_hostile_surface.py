"""Hostile input on the newer surface: ``put``/``rm`` never write outside the filesystem's
region nor into a sector that is not an FSInfo, compressed cpio images are read with bounded
memory and no temporary files, the remote cache's settings are one clean error that shows no
secret, layout variables expand (or are refused) as a whole, and ``check`` knows what the build
directory can hold. Each case failed before it was fixed."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_tool, run_cli
from tests.test_hostile import fails_cleanly, layout

MIB = 1 << 20


def _zeros(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _sha(path: Path, start: int = 0, size: int | None = None) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        return hashlib.sha256(f.read(size if size is not None else -1)).hexdigest()


# -- put / rm stay inside the filesystem -------------------------------------------------------

def _disk_with_an_oversized_fat(tmp_path: Path) -> Path:
    """A 40 MiB MBR disk (sfdisk) whose partition 2 (8 MiB) holds a 16 MiB FAT16 (mkfs.fat)."""
    disk = tmp_path / "disk.img"
    _zeros(disk, 40 * MIB)
    subprocess.run([need_tool("sfdisk"), "-q", str(disk)], check=True, text=True,
                   input="label: dos\n2048,8192,83\n10240,16384,0e\n26624,20000,83\n")
    p2 = tmp_path / "p2.img"
    _zeros(p2, 16 * MIB)
    subprocess.run([need_tool("mkfs.fat"), "-F", "16", str(p2)], check=True,
                   capture_output=True)
    with open(disk, "r+b") as f:
        f.seek(10240 * 512)
        f.write(p2.read_bytes())
    with open(disk, "r+b") as f:               # something to lose in partition 3
        f.seek(26624 * 512)
        f.write(os.urandom(MIB))
    return disk


def test_put_refuses_a_fat_larger_than_its_partition(tmp_path: Path) -> None:
    disk = _disk_with_an_oversized_fat(tmp_path)
    before = _sha(disk)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(10 * MIB))
    err = fails_cleanly("put", f"{disk}:2", "big.bin", str(big),
                        words="the boot sector counts 32768 sectors")
    assert "holds 8388608 bytes; nothing changed" in err
    fails_cleanly("rm", f"{disk}:2", "nothing.txt", words="nothing changed")
    assert _sha(disk) == before


def test_put_refuses_a_bare_fat_whose_boot_sector_counts_more_than_the_file(
        tmp_path: Path) -> None:
    image = tmp_path / "fat12.img"
    _zeros(image, MIB)
    subprocess.run([need_tool("mkfs.fat"), "-F", "12", str(image)], check=True,
                   capture_output=True)
    data = bytearray(image.read_bytes())
    struct.pack_into("<H", data, 11, 4096)       # 4096-byte sectors: 8 MiB claimed
    image.write_bytes(bytes(data))
    src = tmp_path / "x.bin"
    src.write_bytes(os.urandom(3 * MIB))
    fails_cleanly("put", str(image), "x.bin", str(src), words="nothing changed")
    assert image.stat().st_size == MIB and image.read_bytes() == bytes(data)


def _fat32(tmp_path: Path) -> tuple[Path, int, int]:
    """A 64 MiB FAT32 (mkfs.fat); its reserved sectors and FAT size in sectors."""
    image = tmp_path / "fat32.img"
    _zeros(image, 64 * MIB)
    subprocess.run([need_tool("mkfs.fat"), "-F", "32", str(image)], check=True,
                   capture_output=True)
    with open(image, "rb") as f:
        boot = f.read(512)
    reserved, = struct.unpack_from("<H", boot, 14)
    fat_sectors, = struct.unpack_from("<I", boot, 36)
    return image, reserved, fat_sectors


def test_put_writes_fsinfo_only_where_there_is_one(tmp_path: Path) -> None:
    image, reserved, fat_sectors = _fat32(tmp_path)
    with open(image, "r+b") as f:                 # FSInfo "at" the second sector of FAT 1
        f.seek(48)
        f.write(struct.pack("<H", reserved + 1))
    src = tmp_path / "k.bin"
    src.write_bytes(os.urandom(300_000))
    out = run_cli("put", str(image), "k.bin", str(src)).stdout
    assert "FSInfo not updated: sector" in out and "not an FSInfo sector" in out
    # Both FAT copies are the same: the second sector of the first was not overwritten.
    first = _sha(image, reserved * 512, fat_sectors * 512)
    assert first == _sha(image, (reserved + fat_sectors) * 512, fat_sectors * 512)
    got = subprocess.run([sys.executable, "-m", "dfsbuild", "cat", str(image), "k.bin"],
                         capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert got.stdout == src.read_bytes()
    # A sector inside the reserved area without FSInfo's signatures is left alone too.
    with open(image, "r+b") as f:
        f.seek(48)
        f.write(struct.pack("<H", 2))
        f.seek(2 * 512)
        f.write(b"\x5a" * 512)
    out = run_cli("rm", str(image), "k.bin").stdout
    assert "FSInfo not updated" in out
    assert image.read_bytes()[1024:1536] == b"\x5a" * 512


# -- compressed cpio: bounded memory, no temporary files, one limit per image ------------------

def _cpio_member(name: str, size: int, ino: int) -> bytes:
    fields = [ino, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
    return head + bytes(-len(head) % 4)


def _cpio_of_zeros(size: int) -> list[bytes]:
    """A newc archive of one file of ``size`` zero bytes, in pieces (never whole in memory)."""
    trailer = _cpio_member("TRAILER!!!", 0, 0)
    return [_cpio_member("zeros", size, 1), *([bytes(MIB)] * (size // MIB)),
            bytes(-size % 4), trailer + bytes(-len(trailer) % 512)]


def _write_compressed(path: Path, kind: str, size: int) -> None:
    with open(path, "wb") as out:
        c = lzma.LZMACompressor(preset=0) if kind == "xz" else None
        if c is None:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as g:
                for piece in _cpio_of_zeros(size):
                    g.write(piece)
            return
        for piece in _cpio_of_zeros(size):
            out.write(c.compress(piece))
        out.write(c.flush())


def _peak_rss_mib(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str],
                                                            float]:
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], "
            "capture_output=True, text=True); sys.stdout.write(p.stdout); "
            "sys.stderr.write(p.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss, file=sys.stderr); sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "dfsbuild",
                           *args], capture_output=True, text=True, env=env)
    *lines, peak = proc.stderr.rstrip("\n").split("\n")
    proc.stderr = "\n".join(lines)
    return proc, int(peak) / 1024


@pytest.mark.parametrize("kind", ["gzip", "xz"])
def test_a_compressed_cpio_is_read_with_bounded_memory_and_no_scratch(kind: str,
                                                                      tmp_path: Path) -> None:
    image = tmp_path / f"bomb.cpio.{kind}"
    _write_compressed(image, kind, 192 * MIB)
    assert image.stat().st_size < 2 * MIB
    # No temporary directory at all: a scratch file could not be made.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "absent")}
    proc, peak = _peak_rss_mib("ls", "--json", str(image), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "zeros" in proc.stdout and str(192 * MIB) in proc.stdout
    assert peak < 100, f"{peak:.0f} MiB"               # was more than the 192 MiB it held
    proc, peak = _peak_rss_mib("cat", str(image), "zeros", env=env)
    assert proc.returncode == 0 and peak < 100


def test_the_unpacked_limit_counts_every_member_of_an_image(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from dfsbuild.errors import FormatError
    from dfsbuild.fileio.source import ByteSource
    from dfsbuild.images.cpio import read

    member = tmp_path / "one.gz"
    _write_compressed(member, "gzip", 3 * MIB)
    image = tmp_path / "many.cpio"
    image.write_bytes(member.read_bytes() * 4)          # 4 members of 3 MiB each
    monkeypatch.setattr(read, "MAX_UNPACKED", 10 * MIB)
    with open(image, "rb") as f, pytest.raises(FormatError, match="unpacks to more than"):
        read.CpioReader(ByteSource(f))
    monkeypatch.setattr(read, "MAX_UNPACKED", 16 * MIB)
    with open(image, "rb") as f:
        reader = read.CpioReader(ByteSource(f))
        assert reader.summary()["archives"] == 4
        entry = reader.lookup("zeros")
        assert sum(len(b) for b in reader.data(entry)) == 3 * MIB


# -- remote cache settings: one error naming the setting, no secret shown ----------------------

@pytest.mark.parametrize(("setting", "value", "words"), [
    ("url", "ftp://ci:s3cretpw@cache.example/c", "not an http:// or https:// URL"),
    ("url", "http://ci:s3cretpw@/c", "names no host"),
    ("url", "http://ci:s3cretpw@cache.example:port/c", "not a URL"),
    ("url", "http://ci:s3cretpw@[::1/c", "not a URL"),
    ("header", "Authorization: Bearer s3cretpw\nX-Evil: 1", "line break"),
    ("header", "Authorization: Bearer s3cretpw\u2603", "Latin-1"),
    ("header", "no colon s3cretpw", "'Name: value'"),
    ("timeout", "nan", "not a number of seconds"),
])
def test_remote_cache_settings_are_checked_and_redacted(setting: str, value: str, words: str,
                                                        tmp_path: Path) -> None:
    lay = layout(tmp_path, '[image.a]\ntype = "raw"\nfile = "a.bin"\n')
    (tmp_path / "a.bin").write_bytes(b"a")
    url = value if setting == "url" else "http://127.0.0.1:9/c"
    env = {"DFSBUILD_REMOTE_CACHE_HEADER": value} if setting == "header" else \
        {"DFSBUILD_REMOTE_CACHE_TIMEOUT": value} if setting == "timeout" else {}
    err = fails_cleanly("build", str(lay), "--build-dir", str(tmp_path / "b"),
                        "--remote-cache", url, env=env, words=words)
    assert "s3cretpw" not in err
    name = {"url": "--remote-cache", "header": "DFSBUILD_REMOTE_CACHE_HEADER",
            "timeout": "DFSBUILD_REMOTE_CACHE_TIMEOUT"}[setting]
    assert name in err
    if setting == "url" and "@/" not in value:
        assert "ci:***@" in err


def test_redact_hides_every_password() -> None:
    from dfsbuild.engine.endpoint import redact

    assert redact("https://ci:pw@cache/c") == "https://ci:***@cache/c"
    assert redact("https://ci@cache/c") == "https://ci@cache/c"
    assert redact("http://u:p/w@cache/c") == "http://u:***@cache/c"   # an unescaped '/'
    assert redact("cache/c") == "cache/c"


# -- layout variables ---------------------------------------------------------------------------

def _romfs_layout(tmp_path: Path, vars_text: str, name_value: str = "${B}") -> Path:
    (tmp_path / "tree").mkdir(exist_ok=True)
    (tmp_path / "tree" / "f").write_text("x")
    return layout(tmp_path, f'[vars]\n{vars_text}\n[image.r]\ntype = "romfs"\n'
                  f'tree = "tree"\nvolume = "{name_value}"\n')


def test_a_variable_may_name_another(tmp_path: Path) -> None:
    lay = _romfs_layout(tmp_path, 'A = "base"\nB = "${A}-y"\nC = "$${A}"')
    plan = run_cli("plan", "--json", str(lay)).stdout
    assert '"volume": "base-y"' in plan
    assert "${A}-y" not in plan
    lay = _romfs_layout(tmp_path, 'A = "base"\nB = "${A}-y"\nC = "$${A}"', "${C}")
    assert '"volume": "${A}"' in run_cli("plan", "--json", str(lay)).stdout   # $${ is literal


def test_variables_in_a_cycle_are_refused(tmp_path: Path) -> None:
    lay = _romfs_layout(tmp_path, 'A = "${C}"\nB = "${A}"\nC = "x${B}"')
    fails_cleanly("check", str(lay), words="cycle: A -> C -> B -> A")


def test_an_expansion_past_the_limit_is_refused(tmp_path: Path) -> None:
    big = "v" * 100_000
    refs = ", ".join(['"${BIG}"'] * 20_000)
    lay = layout(tmp_path, f'[vars]\nBIG = "{big}"\n[image.r]\ntype = "romfs"\n'
                 f'tree = "tree"\nexclude = [{refs}]\n')
    (tmp_path / "tree").mkdir()
    assert lay.stat().st_size > 180_000
    fails_cleanly("check", str(lay), words="expand to more than 16777216 characters")
    doubling = "\n".join(f'V{i + 1} = "${{V{i}}}${{V{i}}}"' for i in range(40))
    lay = _romfs_layout(tmp_path, f'V0 = "xx"\n{doubling}\nB = "${{V40}}"')
    fails_cleanly("check", str(lay), words="expand to more than")


def test_a_file_included_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    (tmp_path / "c.toml").write_text('[vars]\nq = "shared"\n[image.c]\ntype = "romfs"\n'
                                     'tree = "tree"\nvolume = "${q}"\n')
    (tmp_path / "a.toml").write_text('include = ["c.toml"]\n')
    (tmp_path / "b.toml").write_text('include = ["c.toml"]\n')
    lay = layout(tmp_path, 'include = ["a.toml", "b.toml"]\n')
    assert "ok" in run_cli("check", str(lay)).stdout
    assert '"volume": "shared"' in run_cli("plan", "--json", str(lay)).stdout


# -- check knows the host's file-size limit -----------------------------------------------------

@pytest.mark.parametrize("text", [
    '[disk]\ntable = "gpt"\nsize = "64TiB"\n',
    '[disk]\ntable = "gpt"\n[[disk.region]]\nname = "far"\nimage = "a"\n'
    'start = 4611686018427387904\n[image.a]\ntype = "raw"\nfile = "a.bin"\n',
])
def test_check_knows_what_the_build_directory_can_hold(text: str, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        try:
            os.ftruncate(f.fileno(), 64 << 40)
            pytest.skip(f"{tmp_path} holds a 64 TiB file")
        except OSError:
            pass
    (tmp_path / "a.bin").write_bytes(b"a" * 512)
    lay = layout(tmp_path, text)
    fails_cleanly("check", str(lay), "--build-dir", str(tmp_path / "b"),
                  words="is more than a file can hold on the filesystem of")
    assert not [p for p in tmp_path.rglob(".dfsbuild-size-probe-*")]


# -- found since: detection by signature, nested outputs, the MBR's sector size -------------

def test_a_type_e0_partition_at_lba_1_is_not_taken_for_embr(tmp_path: Path) -> None:
    disk = _zeros(tmp_path / "e0.img", 4 * MIB)
    subprocess.run([need_tool("sfdisk"), "-q", str(disk)], check=True, text=True,
                   input="label: dos\n1,2047,e0\n2048,,83\n")
    proc = run_cli("inspect", "--json", str(disk))
    assert '"e0"' in proc.stdout and "embr" not in proc.stdout + proc.stderr


def test_an_output_inside_another_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a")
    lay = layout(tmp_path, '[image.a]\ntype = "raw"\nfile = "a.bin"\noutput = "x"\n'
                 '[image.b]\ntype = "raw"\nfile = "a.bin"\noutput = "x/y.img"\n')
    fails_cleanly("check", str(lay), words="image.b.output: 'x/y.img' lies inside 'x', the "
                  "output of image.a")


def test_a_4096_byte_sector_mbr_read_as_512_says_what_to_give(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a" * 4096)
    lay = layout(tmp_path, '[disk]\ntable = "mbr"\nsector-size = 4096\nsize = "16MiB"\n'
                 '[[disk.partition]]\nname = "a"\nsize = "1MiB"\n'
                 '[[disk.partition]]\nname = "b"\nsize = "1MiB"\nlogical = true\n'
                 '[[disk.partition]]\nname = "c"\nsize = "1MiB"\nlogical = true\n')
    run_cli("build", str(lay), "--build-dir", str(tmp_path / "b"))
    disk = tmp_path / "b" / "l" / "l.img"
    err = fails_cleanly("ls", f"{disk}:5", words="expected signature")
    assert "hint: " in err and "--sector-size 4096" in err
    assert run_cli("inspect", "--sector-size", "4096", str(disk)).returncode == 0

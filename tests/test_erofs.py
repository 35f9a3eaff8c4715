"""type = "erofs": judged by erofs-utils (``fsck.erofs`` finds nothing wrong and ``--extract``
gives the tree back), ``blkid -p`` and ``dump.erofs`` (our superblock), the Linux kernel in
QEMU (mounts it and reads every file), and our reader, which also reads mkfs.erofs's images
of the same tree; random trees written and read back equal."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfsbuild.clock import build_time
from dfsbuild.fileio.sink import Sink
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.erofs.read import ErofsReader
from dfsbuild.images.erofs.write import plan_erofs, write_erofs
from dfsbuild.trees.digest import DigestCache
from dfsbuild.trees.fstree import TreeBuilder
from dfsbuild.trees.walk import scan_tree
from tests.conftest import need_tool, run_cli
from tests.qemu import boot, fetch_kernel, make_initramfs

UUID = "8d8a244f-8850-41ff-ad51-ffb4fca54212"
SIZES = [0, 1, 100, 4063, 4064, 4065, 4096, 4097, 10_000, 1 << 20]


def _tree(root: Path) -> None:
    """Files either side of the inline limit, a directory of several blocks, links."""
    (root / "bin").mkdir(parents=True)
    for size in SIZES:
        (root / f"f{size}.bin").write_bytes(os.urandom(size))
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "secret").write_text("s\n")
    (root / "secret").chmod(0o600)
    many = root / "many"
    many.mkdir()
    for i in range(400):
        (many / f"entry-with-a-rather-long-name-{i:04d}.txt").write_text(f"{i}\n")
    (root / "empty-dir").mkdir()
    (root / "\u00e9t\u00e9").write_text("utf-8 name\n")
    os.symlink("f100.bin", root / "short-link")
    os.symlink("x" * 3000, root / "long-link")
    os.link(root / "f100.bin", root / "bin" / "hard")


LAYOUT = f"""schema = 1
[image.root]
type = "erofs"
uuid = "{UUID}"
label = "rootfs"
tree = "tree"
devices."dev/console" = {{ type = "char", major = 5, minor = 1, mode = "0600" }}
devices."dev/sda" = {{ type = "block", major = 8, minor = 0 }}
devices."dev/big" = {{ type = "char", major = 300, minor = 1000 }}
devices."run/fifo" = {{ type = "fifo" }}
"""


def _build(tmp_path: Path, build: str = "build", tail_pack: bool = False) -> Path:
    if not (tmp_path / "tree").exists():
        _tree(tmp_path / "tree")
    (tmp_path / "e.toml").write_text(LAYOUT + ("tail-pack = true\n" if tail_pack else ""))
    run_cli("build", str(tmp_path / "e.toml"), "--build-dir", str(tmp_path / build))
    return tmp_path / build / "e" / "root.img"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.tool
@pytest.mark.parametrize("tail_pack", [False, True])
def test_fsck_erofs_finds_nothing_and_extracts_the_tree(tmp_path: Path,
                                                        tail_pack: bool) -> None:
    image = _build(tmp_path, tail_pack=tail_pack)
    fsck = need_tool("fsck.erofs")
    proc = subprocess.run([fsck, str(image)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    proc = subprocess.run([fsck, f"--extract={out}", str(image)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tree = tmp_path / "tree"
    for path in tree.rglob("*"):
        rel = path.relative_to(tree)
        got = out / rel
        if path.is_symlink():
            assert os.readlink(got) == os.readlink(path), rel
        elif path.is_file():
            assert _sha(got) == _sha(path), rel
            assert got.stat().st_mtime == build_time(), rel     # the build's one time
            assert stat.S_IMODE(got.stat().st_mode) == stat.S_IMODE(path.stat().st_mode), rel
        else:
            assert sorted(p.name for p in got.iterdir()) == sorted(p.name for p in
                                                                  path.iterdir()), rel
    if os.geteuid() == 0:                      # fsck.erofs makes device nodes as root only
        for name, kind, major, minor in (("dev/console", stat.S_IFCHR, 5, 1),
                                         ("dev/sda", stat.S_IFBLK, 8, 0),
                                         ("dev/big", stat.S_IFCHR, 300, 1000)):
            st = os.lstat(out / name)
            assert stat.S_IFMT(st.st_mode) == kind, name
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor), name
        assert stat.S_ISFIFO(os.lstat(out / "run" / "fifo").st_mode)


@pytest.mark.tool
def test_tail_packing_is_as_small_as_mkfs_erofs(tmp_path: Path) -> None:
    """``tail-pack``: a file's last partial block follows its inode (dump.erofs: layout 2,
    flat inline), and the image is no larger than mkfs.erofs's of the same tree (its
    metadata blocks filled as tightly); without it, files of a block or more are whole
    blocks (layout 0), a block more each at most."""
    packed = _build(tmp_path, tail_pack=True)
    plain = _build(tmp_path, "plain")
    theirs, ours = tmp_path / "theirs.img", tmp_path / "ours.img"     # the tree alone
    subprocess.run([need_tool("mkfs.erofs"), "--quiet", "-T0", "--all-root", str(theirs),
                    str(tmp_path / "tree")], check=True, capture_output=True)
    run_cli("mkfs", "erofs", "--tail-pack", "true", "-o", str(ours), str(tmp_path / "tree"))
    assert ours.stat().st_size <= theirs.stat().st_size
    large = [size for size in SIZES if size >= 4096 and size % 4096]
    assert plain.stat().st_size <= packed.stat().st_size + len(large) * 4096
    for image, layout in ((packed, "Layout: 2"), (plain, "Layout: 0")):
        for size in large:
            dump = subprocess.run([need_tool("dump.erofs"), f"--path=/f{size}.bin",
                                   str(image)], capture_output=True, text=True,
                                  check=True).stdout
            assert layout in dump, (size, dump)
        for size in SIZES:
            data = run_cli("cat", str(image), f"/f{size}.bin").stdout.encode(
                "utf-8", "surrogateescape")
            assert data == (tmp_path / "tree" / f"f{size}.bin").read_bytes()


@pytest.mark.tool
def test_blkid_and_dump_erofs_see_our_superblock(tmp_path: Path) -> None:
    image = _build(tmp_path)
    out = subprocess.run([need_tool("blkid"), "-p", "-o", "export", str(image)],
                         capture_output=True, text=True).stdout
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert (found["TYPE"], found["UUID"], found["LABEL"]) == ("erofs", UUID, "rootfs")
    dump = subprocess.run([need_tool("dump.erofs"), str(image)], capture_output=True,
                          text=True, check=True).stdout
    assert UUID in dump and "Filesystem root nid:" in dump
    nlink = subprocess.run([need_tool("dump.erofs"), "--path=/bin/hard", str(image)],
                           capture_output=True, text=True, check=True).stdout
    assert "Links: 2" in nlink


def test_the_same_tree_gives_the_same_bytes(tmp_path: Path) -> None:
    first = _build(tmp_path).read_bytes()
    assert _build(tmp_path, "again").read_bytes() == first
    listing = run_cli("ls", str(tmp_path / "build" / "e" / "root.img"), "/").stdout
    assert "short-link -> f100.bin" in listing and "f4065.bin" in listing
    for size in SIZES:
        assert run_cli("cat", str(tmp_path / "build" / "e" / "root.img"),
                       f"/f{size}.bin").stdout.encode("utf-8", "surrogateescape") == \
            (tmp_path / "tree" / f"f{size}.bin").read_bytes()


@pytest.mark.tool
def test_our_reader_reads_mkfs_erofs_images(tmp_path: Path) -> None:
    _tree(tmp_path / "tree")
    theirs = tmp_path / "theirs.img"
    subprocess.run([need_tool("mkfs.erofs"), "--quiet", "-T0", "--all-root", str(theirs),
                    str(tmp_path / "tree")], check=True)
    with open(theirs, "rb") as f:
        reader = ErofsReader(ByteSource(f))
        seen = {}
        for entry in reader.walk():
            seen[entry.path] = entry
            host = tmp_path / "tree" / entry.path
            if entry.kind == "file":
                assert b"".join(reader.data(reader.resolve(entry))) == host.read_bytes()
            elif entry.kind == "symlink":
                assert entry.target == os.readlink(host)
    want = {str(p.relative_to(tmp_path / "tree")) for p in (tmp_path / "tree").rglob("*")}
    assert set(seen) == want


def test_a_label_too_long_is_a_layout_error(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "e.toml").write_text('schema = 1\n[image.r]\ntype = "erofs"\ntree = "tree"\n'
                                     'label = "seventeen-bytes!!"\n')
    proc = run_cli("check", str(tmp_path / "e.toml"), check=False)
    assert proc.returncode == 1 and "image.r.label" in proc.stderr, proc.stderr


names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                              blacklist_characters="/"), min_size=1, max_size=40)
files = st.dictionaries(names, st.one_of(st.integers(0, 9000),
                                         st.dictionaries(names, st.integers(0, 5000),
                                                         max_size=30)),
                        min_size=1, max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files, st.booleans())
def test_random_trees_read_back_equal(tmp_path_factory: pytest.TempPathFactory,
                                      spec: dict[str, object], tail_pack: bool) -> None:
    work = tmp_path_factory.mktemp("erofs")
    tree = work / "tree"
    tree.mkdir()
    for name, what in spec.items():
        if name in (".", ".."):
            continue
        if isinstance(what, int):
            (tree / name).write_bytes(bytes([len(name) % 251]) * what)
        else:
            assert isinstance(what, dict)
            (tree / name).mkdir()
            for inner, size in what.items():
                if inner not in (".", ".."):
                    (tree / name / inner).write_bytes(b"%d" % size * (size // 2 + 1))
    builder = TreeBuilder()
    builder.add_scan(scan_tree(str(tree), (), DigestCache(None)))
    root = builder.finish()
    plan = plan_erofs(root, bytes(16), b"t", 0, ("t.toml", "image.t"), tail_pack)
    out = work / "t.img"
    fd = os.open(out, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        sink = Sink(fd, 0, plan.image_size)
        write_erofs(plan, sink)
        sink.close()
    finally:
        os.close(fd)
    with open(out, "rb") as f:
        reader = ErofsReader(ByteSource(f))
        got = {e.path: b"".join(reader.data(e)) for e in reader.walk() if e.kind == "file"}
    want = {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert got == want
    fsck = subprocess.run([need_tool("fsck.erofs"), str(out)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


BODY = """for d in /dev/vd? /dev/vd?[0-9]; do
  if mount -t erofs -o ro $d /mnt; then
    echo "MOUNTED $d"
    find /mnt -type f | sort | while read -r f; do
      echo "FILE $(sha256sum "$f" | cut -d' ' -f1) ${f#/mnt/}"
    done
    find /mnt -type l | sort | while read -r f; do echo "LINK ${f#/mnt/} $(readlink "$f")"; done
    for f in /mnt/dev/*; do stat -c "NODE %F %t %T %a %n" "$f"; done
    stat -c "MODE %a %n" /mnt/secret /mnt/bin/tool
    echo "HARD $(stat -c %i /mnt/f100.bin) $(stat -c %i /mnt/bin/hard) $(stat -c %h /mnt/bin/hard)"
    umount /mnt
  else
    echo "NOMOUNT $d"
  fi
done
"""


@pytest.mark.tool
@pytest.mark.slow
def test_the_kernel_mounts_our_erofs_and_reads_every_file(tmp_path: Path) -> None:
    """Both layouts: files of a block or more as whole blocks (vda) and tail-packed (vdb);
    and the image as the first partition of a GPT disk (vdc1)."""
    kernel = fetch_kernel()
    image = _build(tmp_path)
    packed = _build(tmp_path, "packed", tail_pack=True)
    (tmp_path / "e.toml").write_text(LAYOUT + '[disk]\ntable = "gpt"\n[[disk.partition]]\n'
                                     'name = "root"\nimage = "root"\n'
                                     'type = "linux-root-x86-64"\n')
    run_cli("build", str(tmp_path / "e.toml"), "--build-dir", str(tmp_path / "disk"))
    disk = tmp_path / "disk" / "e" / "e.img"
    initrd = make_initramfs(kernel, tmp_path, BODY)
    guest = boot(kernel, initrd, [(image, 512), (packed, 512), (disk, 512)])
    body = guest.console.split("@@BEGIN@@", 1)[1].split("@@END@@", 1)[0]
    sections = {part.split()[0]: part for part in body.split("MOUNTED ")[1:]}
    assert sorted(sections) == ["/dev/vda", "/dev/vdb", "/dev/vdc1"], guest.console[-3000:]
    tree = tmp_path / "tree"
    want = {str(p.relative_to(tree)): _sha(p) for p in tree.rglob("*")
            if not p.is_symlink() and p.is_file()}
    for section in sections.values():
        files = {line.split(" ", 2)[2]: line.split(" ", 2)[1] for line in section.splitlines()
                 if line.startswith("FILE ")}
        assert files == want
        links = {line.split(" ")[1]: line.split(" ", 2)[2] for line in section.splitlines()
                 if line.startswith("LINK ")}
        assert links == {"short-link": "f100.bin", "long-link": "x" * 3000}
        assert "NODE character special file 5 1 600 /mnt/dev/console" in section
        assert "NODE block special file 8 0 600 /mnt/dev/sda" in section
        assert "MODE 600 /mnt/secret" in section and "MODE 755 /mnt/bin/tool" in section
        hard = next(line for line in section.splitlines() if line.startswith("HARD ")).split()
        assert hard[1] == hard[2] and hard[3] == "2"

"""type = "verity": the dm-verity hash device of another image, judged by cryptsetup's
``veritysetup`` (``format`` of the same data with the same salt and UUID gives the same bytes
and root hash; ``verify`` accepts the tree and refuses a flipped byte; ``dump`` shows our
salt and sizes) and by blkid."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ROOT, need_tool, run_cli

SALT = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
UUID = "82ac5165-4968-4fe2-8218-9c2a50b473fc"
LAYOUT = f"""schema = 1
[image.data]
type = "raw"
file = "data.bin"
[image.data-verity]
type = "verity"
data = "data"
salt = "{SALT}"
uuid = "{UUID}"
[image.root]
type = "erofs"
tree = "tree"
[image.root-verity]
type = "verity"
data = "root"
"""


def _build(tmp_path: Path, blocks: int) -> Path:
    (tmp_path / "data.bin").write_bytes(os.urandom(blocks * 4096))
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "a.txt").write_text("a\n")
    (tmp_path / "v.toml").write_text(LAYOUT)
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    return tmp_path / "b" / "v"


def _veritysetup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need_tool("veritysetup"), *args], capture_output=True, text=True)


@pytest.mark.tool
@pytest.mark.parametrize("blocks", [1, 2, 128, 129, 5000, 20_000])
def test_veritysetup_format_gives_the_same_hash_device(tmp_path: Path, blocks: int) -> None:
    out = _build(tmp_path, blocks)
    theirs = tmp_path / "theirs.hash"
    proc = _veritysetup("format", f"--salt={SALT}", f"--uuid={UUID}", str(out / "data.img"),
                        str(theirs))
    assert proc.returncode == 0, proc.stderr
    root = next(line.split()[-1] for line in proc.stdout.splitlines()
                if line.startswith("Root hash"))
    assert (out / "data-verity.img").read_bytes() == theirs.read_bytes()
    assert (out / "data-verity.roothash").read_text() == root + "\n"


@pytest.mark.tool
def test_verify_accepts_our_tree_and_refuses_a_flipped_byte(tmp_path: Path) -> None:
    out = _build(tmp_path, 300)
    for data, hashes in (("data.img", "data-verity"), ("root.img", "root-verity")):
        root = (out / f"{hashes}.roothash").read_text().strip()
        proc = _veritysetup("verify", str(out / data), str(out / f"{hashes}.img"), root)
        assert proc.returncode == 0, proc.stderr
    dump = _veritysetup("dump", str(out / "data-verity.img")).stdout
    assert SALT in dump and "Data blocks:     \t300" in dump and UUID in dump
    damaged = tmp_path / "damaged.img"
    data = bytearray((out / "data.img").read_bytes())
    data[123_456] ^= 1
    damaged.write_bytes(bytes(data))
    root = (out / "data-verity.roothash").read_text().strip()
    proc = _veritysetup("verify", str(damaged), str(out / "data-verity.img"), root)
    assert proc.returncode != 0
    assert run_cli("inspect", str(out / "data-verity.img")).stdout.count(root) == 1
    found = subprocess.run([need_tool("blkid"), "-p", "-o", "export",
                            str(out / "data-verity.img")], capture_output=True,
                           text=True).stdout
    assert "TYPE=DM_verity_hash" in found and f"UUID={UUID}" in found


def _disk(tmp_path: Path, root_type: str = "", hash_type: str = "",
          extra: str = "") -> Path:
    """The layout's images in a GPT disk: root, its hash tree, and ``extra`` partitions."""
    (tmp_path / "data.bin").write_bytes(os.urandom(8 * 4096))
    (tmp_path / "tree").mkdir()
    (tmp_path / "v.toml").write_text(LAYOUT + f"""[disk]
table = "gpt"
[[disk.partition]]
name = "root"
image = "root"
{root_type}
[[disk.partition]]
name = "root-verity"
image = "root-verity"
{hash_type}
{extra}""")
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    return tmp_path / "b" / "v" / "v.img"


def test_the_disk_manifest_names_the_root_hash(tmp_path: Path) -> None:
    _disk(tmp_path)
    manifest = json.loads((tmp_path / "b" / "v" / "v.json").read_text())
    jsonschema.validate(manifest, json.loads(run_cli("schema", "--manifest").stdout))
    parts = {p["name"]: p["image"] for p in manifest["partitiontable"]["partitions"]}
    root = (tmp_path / "b" / "v" / "root-verity.roothash").read_text().strip()
    assert parts["root-verity"]["roothash"] == root
    assert "roothash" not in parts["root"]


def test_a_removed_roothash_is_made_again_and_bad_data_is_refused(tmp_path: Path) -> None:
    out = _build(tmp_path, 10)
    (out / "data-verity.roothash").unlink()
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    assert len((out / "data-verity.roothash").read_text().strip()) == 64
    (tmp_path / "data.bin").write_bytes(os.urandom(4097))
    proc = run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"),
                   check=False)
    assert proc.returncode == 1 and "image.data-verity.data" in proc.stderr, proc.stderr
    assert "4097 bytes" in proc.stderr and "512-byte blocks" not in proc.stderr
    (tmp_path / "data.bin").write_bytes(os.urandom(1536))
    proc = run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"),
                   check=False)
    assert proc.returncode == 1 and "take 512-byte blocks" in proc.stderr, proc.stderr
    (tmp_path / "data.bin").write_bytes(b"")
    proc = run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"),
                   check=False)
    assert proc.returncode == 1 and "at least one" in proc.stderr, proc.stderr
    (tmp_path / "v.toml").write_text(LAYOUT.replace('data = "data"', 'data = "nope"'))
    proc = run_cli("check", str(tmp_path / "v.toml"), check=False)
    assert proc.returncode == 1 and "no image named 'nope'" in proc.stderr, proc.stderr


@pytest.mark.tool
def test_verity_true_on_an_image_adds_its_hash_tree(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    for i in range(50):
        (tmp_path / "tree" / f"f{i}").write_bytes(os.urandom(3000 + i))
    (tmp_path / "v.toml").write_text(f"""schema = 1
[image.root]
type = "erofs"
tree = "tree"
verity = true
verity-salt = "{SALT}"
verity-hash = "sha512"
""")
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    out = tmp_path / "b" / "v"
    root = (out / "root-verity.roothash").read_text().strip()
    assert len(root) == 128                                      # sha512
    proc = _veritysetup("verify", "--hash=sha512", str(out / "root.img"),
                        str(out / "root-verity.img"), root)
    assert proc.returncode == 0, proc.stderr
    assert SALT in _veritysetup("dump", str(out / "root-verity.img")).stdout
    (tmp_path / "v.toml").write_text((tmp_path / "v.toml").read_text() +
                                     '[image.root-verity]\ntype = "raw"\nfile = "v.toml"\n')
    proc = run_cli("check", str(tmp_path / "v.toml"), check=False)
    assert proc.returncode == 1 and "image.root.verity" in proc.stderr, proc.stderr
    assert "already has an image named 'root-verity'" in proc.stderr


@pytest.mark.tool
def test_the_verity_partition_types_are_the_discoverable_partitions_ones(
        tmp_path: Path) -> None:
    """sfdisk (util-linux) names the Discoverable Partitions Specification's types."""
    disk = _disk(tmp_path, 'type = "linux-root-x86-64"', 'type = "linux-root-verity-x86-64"',
                 '[[disk.partition]]\nname = "usr"\nimage = "data"\n'
                 'type = "linux-usr-verity-arm64"\n')
    listing = subprocess.run([need_tool("sfdisk"), "-l", str(disk)],
                             capture_output=True, text=True, check=True).stdout
    for name in ("Linux root (x86-64)", "Linux root verity (x86-64)",
                 "Linux /usr verity (ARM-64)"):
        assert name in listing, listing


@pytest.mark.tool
@pytest.mark.parametrize("blocks", [1, 2, 300])
def test_an_appended_tree_is_veritysetups_with_a_hash_offset(tmp_path: Path,
                                                             blocks: int) -> None:
    """``append = true``: the data, then the superblock and tree at the data's size, as
    ``veritysetup format DATA DATA --hash-offset=SIZE`` writes them over a copy of the data;
    ``verify`` with that offset accepts it and refuses a flipped data byte."""
    (tmp_path / "data.bin").write_bytes(os.urandom(blocks * 4096))
    (tmp_path / "tree").mkdir()
    (tmp_path / "v.toml").write_text(LAYOUT.replace('uuid = "', 'append = true\nuuid = "'))
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    out = tmp_path / "b" / "v"
    ours = (out / "data-verity.img").read_bytes()
    size = blocks * 4096
    assert ours[:size] == (tmp_path / "data.bin").read_bytes()
    theirs = tmp_path / "theirs.img"
    theirs.write_bytes((tmp_path / "data.bin").read_bytes())
    proc = _veritysetup("format", f"--salt={SALT}", f"--uuid={UUID}", f"--hash-offset={size}",
                        f"--data-blocks={blocks}", str(theirs), str(theirs))
    assert proc.returncode == 0, proc.stderr
    assert theirs.read_bytes() == ours
    root = (out / "data-verity.roothash").read_text().strip()
    assert f"Root hash:      \t{root}" in proc.stdout
    image = str(out / "data-verity.img")
    proc = _veritysetup("verify", f"--hash-offset={size}", image, image, root)
    assert proc.returncode == 0, proc.stderr
    damaged = tmp_path / "damaged.img"
    damaged.write_bytes(ours[:size - 1] + bytes([ours[size - 1] ^ 1]) + ours[size:])
    proc = _veritysetup("verify", f"--hash-offset={size}", str(damaged), str(damaged), root)
    assert proc.returncode != 0


@pytest.mark.tool
def test_verity_append_makes_the_image_its_data_with_the_tree(tmp_path: Path) -> None:
    """``verity = "append"``: the image keeps its name and output and holds its data then
    the tree; the data alone is NAME-data; a disk's partition takes the whole, which
    blkid and fsck.erofs still see as the EROFS and the manifest names with its root hash."""
    (tmp_path / "tree").mkdir()
    for i in range(40):
        (tmp_path / "tree" / f"f{i}").write_bytes(os.urandom(5000 + i))
    (tmp_path / "v.toml").write_text("""schema = 1
[image.root]
type = "erofs"
tree = "tree"
output = "rootfs.erofs"
verity = "append"
[disk]
table = "gpt"
[[disk.partition]]
name = "root"
image = "root"
""")
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    out = tmp_path / "b" / "v"
    data = (out / "root-data.img").read_bytes()
    whole = (out / "rootfs.erofs").read_bytes()
    assert whole[:len(data)] == data and len(whole) > len(data)
    root = (out / "rootfs.erofs.roothash").read_text().strip()
    image = str(out / "rootfs.erofs")
    proc = _veritysetup("verify", f"--hash-offset={len(data)}", image, image, root)
    assert proc.returncode == 0, proc.stderr
    subprocess.run([need_tool("fsck.erofs"), image], check=True, capture_output=True)
    found = subprocess.run([need_tool("blkid"), "-p", "-o", "export", image],
                           capture_output=True, text=True).stdout
    assert "TYPE=erofs" in found and "LABEL=root" in found
    manifest = json.loads((out / "v.json").read_text())
    part = manifest["partitiontable"]["partitions"][0]["image"]
    assert part["name"] == "root" and part["roothash"] == root
    for bad, said in (('verity = "yes"', "expected true, false or 'append'"),
                      ('verity = "append"\n[image.root-data]\ntype = "raw"\nfile = "v.toml"',
                       "already has an image named 'root-data'")):
        (tmp_path / "bad.toml").write_text(f'schema = 1\n[image.root]\ntype = "erofs"\n'
                                           f'tree = "tree"\n{bad}\n')
        proc = run_cli("check", str(tmp_path / "bad.toml"), check=False)
        assert proc.returncode == 1 and "image.root.verity" in proc.stderr, proc.stderr
        assert said in proc.stderr, proc.stderr


def _guid(hexdigits: str) -> str:
    h = hexdigits.upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _sfdisk_uuids(disk: Path) -> dict[str, str]:
    table = json.loads(subprocess.run([need_tool("sfdisk"), "--json", str(disk)],
                                      capture_output=True, text=True, check=True).stdout)
    return {p["name"]: p["uuid"] for p in table["partitiontable"]["partitions"]}


@pytest.mark.tool
def test_partition_guids_are_the_root_hash_halves(tmp_path: Path) -> None:
    """systemd's convention, read back by sfdisk: the data's partition GUID is the root
    hash's first 128 bits, the tree's its last 128 (as bytes, no version marked); a data
    partition whose tree is elsewhere follows it too; a given ``uuid`` wins; a new salt
    gives new GUIDs (the disk is rebuilt though it holds neither tree)."""
    given = "0F0E0D0C-0B0A-4908-8706-050403020100"
    disk = _disk(tmp_path, hash_type=f'uuid = "{given}"',
                 extra='[[disk.partition]]\nname = "usr"\nimage = "data"')
    out = tmp_path / "b" / "v"
    root = (out / "root-verity.roothash").read_text().strip()
    data = (out / "data-verity.roothash").read_text().strip()
    uuids = _sfdisk_uuids(disk)
    assert uuids["root"] == _guid(root[:32]) and uuids["root-verity"] == given
    assert uuids["usr"] == _guid(data[:32])
    planned = json.loads(run_cli("plan", str(tmp_path / "v.toml"), "--json").stdout)
    parts = {p["name"]: p for p in planned[0]["disk"]["partitions"]}
    assert parts["root"]["uuid"] is None and parts["root"]["uuid_from"] == "root hash"
    assert parts["root-verity"]["uuid"] == given and "uuid_from" not in parts["root-verity"]
    layout = (tmp_path / "v.toml").read_text().replace(SALT, SALT[::-1])
    (tmp_path / "v.toml").write_text(layout)
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    data = (out / "data-verity.roothash").read_text().strip()
    assert _sfdisk_uuids(disk)["usr"] == _guid(data[:32])


@pytest.mark.tool
def test_systemd_repart_writes_the_same_tree_and_partition_guids(tmp_path: Path) -> None:
    """systemd's own writer: systemd-repart puts our EROFS in a root partition (Verity=data)
    and hashes it into a root-verity one (Verity=hash). Given its data partition, salt,
    UUID and block size, we write the same hash device and root hash, and our GPT gives the
    two partitions the same GUIDs repart did."""
    repart = need_tool("systemd-repart")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "os-release").write_text("ID=dfsbuild\n")
    (tmp_path / "e.toml").write_text('schema = 1\n[image.root]\ntype = "erofs"\n'
                                     'tree = "tree"\n')
    run_cli("build", str(tmp_path / "e.toml"), "--build-dir", str(tmp_path / "b"))
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "10-root.conf").write_text("[Partition]\nType=root\nCopyBlocks="
                                       f"{tmp_path / 'b' / 'e' / 'root.img'}\n"
                                       "Verity=data\nVerityMatchKey=root\n")
    (defs / "20-verity.conf").write_text("[Partition]\nType=root-verity\nVerity=hash\n"
                                         "VerityMatchKey=root\n")
    theirs = tmp_path / "theirs.img"
    proc = subprocess.run([repart, "--empty=create", "--size=auto", f"--definitions={defs}",
                           "--dry-run=no", "--json=short",
                           "--seed=b8d8c6e4-6b8b-4a36-9f8a-6c5a7e1e8f00", str(theirs)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    parts = json.loads(proc.stdout)
    data_part, hash_part = parts[0], parts[1]
    blob = theirs.read_bytes()
    (tmp_path / "part.bin").write_bytes(
        blob[data_part["offset"]:data_part["offset"] + data_part["raw_size"]])
    dump = _veritysetup("dump", f"--hash-offset={hash_part['offset']}", str(theirs)).stdout
    fields = dict(line.split(":", 1) for line in dump.splitlines() if ":" in line)
    salt, uuid = fields["Salt"].strip(), fields["UUID"].strip()
    block = int(fields["Data block size"])
    (tmp_path / "v.toml").write_text(f"""schema = 1
[image.data]
type = "raw"
file = "part.bin"
[image.data-verity]
type = "verity"
data = "data"
salt = "{salt}"
uuid = "{uuid}"
block-size = {block}
[disk]
table = "gpt"
[[disk.partition]]
name = "root"
image = "data"
type = "linux-root-x86-64"
[[disk.partition]]
name = "root-verity"
image = "data-verity"
type = "linux-root-verity-x86-64"
""")
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    out = tmp_path / "b" / "v"
    ours = (out / "data-verity.img").read_bytes()
    assert ours == blob[hash_part["offset"]:hash_part["offset"] + len(ours)]
    assert (out / "data-verity.roothash").read_text().strip() == hash_part["roothash"]
    uuids = _sfdisk_uuids(out / "v.img")
    assert uuids["root"].lower() == data_part["uuid"]
    assert uuids["root-verity"].lower() == hash_part["uuid"]


@pytest.mark.tool
def test_systemd_dissect_finds_root_and_verity_by_the_root_hash(tmp_path: Path) -> None:
    """The bundled sample layouts/verity-gpt.toml, as systemd reads it."""
    dissect = need_tool("systemd-dissect")
    run_cli("build", "layouts/verity-gpt.toml", "--build-dir", str(tmp_path / "b"), cwd=ROOT)
    disk = tmp_path / "b" / "verity-gpt" / "verity-gpt.img"
    root = (tmp_path / "b" / "verity-gpt" / "root-verity.roothash").read_text().strip()
    proc = subprocess.run([dissect, "--json=short", f"--root-hash={root}", str(disk)],
                          capture_output=True, text=True)
    if proc.returncode != 0 and "loop" in proc.stderr.lower():
        pytest.skip(f"systemd-dissect needs a loop device here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert "ID=dfsbuild-sample" in found["osRelease"]      # read from the EROFS
    mounts = {m["designator"]: m for m in found["mounts"]}
    assert mounts["root"]["verity"] == "yes" and mounts["root"]["fstype"] == "erofs"
    assert mounts["root"]["partition_uuid"] == _guid(root[:32]).lower()
    assert mounts["root-verity"]["partition_uuid"] == _guid(root[32:]).lower()
    proc = subprocess.run([dissect, f"--root-hash={'ab' * 32}", str(disk)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "No root partition" in proc.stderr, proc.stderr


VERITY_BODY = """for m in reed_solomon dm-mod dm-bufio dm-verity; do insmod /bin/$m.ko; done
run() { DM_DISABLE_UDEV=1 /bin/ld-linux-x86-64.so.2 --library-path /bin /bin/veritysetup "$@"; }
if run open /dev/vda root /dev/vdb ROOTHASH; then
  echo "OPENED"
  if mount -t erofs -o ro /dev/mapper/root /mnt; then
    find /mnt -type f | sort | while read -r f; do
      echo "FILE $(sha256sum "$f" | cut -d' ' -f1) ${f#/mnt/}"
    done
    umount /mnt
  fi
  run close root
fi
if run open --hash-offset=APPOFFSET /dev/vdd app /dev/vdd APPHASH; then
  mount -t erofs -o ro /dev/mapper/app /mnt && sha256sum /mnt/big.bin | sed 's/^/APPENDED /'
  umount /mnt
fi
if run open /dev/vdc bad /dev/vdb ROOTHASH; then
  if mount -t erofs -o ro /dev/mapper/bad /mnt 2>/dev/null; then
    cat /mnt/big.bin > /dev/null 2>&1 && echo "BAD READ" || echo "BAD REFUSED"
  else
    echo "BAD REFUSED"
  fi
fi
"""


def _guest_files(kernel_root: Path) -> dict[str, Path]:
    """veritysetup and what it loads, and the device-mapper modules, for the guest's /bin."""
    import shutil

    tools: dict[str, Path] = {}
    binary = shutil.which("veritysetup") or "/usr/sbin/veritysetup"
    tools["veritysetup"] = Path(binary)
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        words = line.split()
        path = next((w for w in words if w.startswith("/")), None)
        if path is not None:
            tools[Path(path).name] = Path(path)
    for name in ("reed_solomon", "dm-mod", "dm-bufio", "dm-verity"):
        found = sorted(kernel_root.glob(f"lib/modules/*/kernel/**/{name}.ko"))
        if not found:
            pytest.skip(f"the kernel package has no {name}.ko")
        tools[f"{name}.ko"] = found[0]
    return tools


@pytest.mark.tool
@pytest.mark.slow
def test_the_kernel_opens_our_hash_tree_and_refuses_changed_data(tmp_path: Path) -> None:
    from tests.qemu import boot, fetch_kernel, make_initramfs

    kernel = fetch_kernel()
    need_tool("veritysetup")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big.bin").write_bytes(os.urandom(300_000))
    (tree / "small.txt").write_text("hello\n")
    (tmp_path / "v.toml").write_text('schema = 1\n[image.root]\ntype = "erofs"\n'
                                     'tree = "tree"\nverity = true\n'
                                     '[image.app]\ntype = "erofs"\ntree = "tree"\n'
                                     'verity = "append"\n')
    run_cli("build", str(tmp_path / "v.toml"), "--build-dir", str(tmp_path / "b"))
    out = tmp_path / "b" / "v"
    root = (out / "root-verity.roothash").read_text().strip()
    bad = tmp_path / "bad.img"
    data = bytearray((out / "root.img").read_bytes())
    at = data.index((tree / "big.bin").read_bytes()[:64]) + 1000
    data[at] ^= 1                              # inside big.bin's data
    bad.write_bytes(bytes(data))
    tools = _guest_files(kernel.vmlinuz.parent.parent)
    script = VERITY_BODY.replace("ROOTHASH", root).replace(
        "APPHASH", (out / "app.roothash").read_text().strip()).replace(
        "APPOFFSET", str((out / "app-data.img").stat().st_size))
    initrd = make_initramfs(kernel, tmp_path, script, tools)
    guest = boot(kernel, initrd, [(out / "root.img", 512), (out / "root-verity.img", 512),
                                  (bad, 512), (out / "app.img", 512)])
    body = guest.console.split("@@BEGIN@@", 1)[1].split("@@END@@", 1)[0]
    assert "OPENED" in body, guest.console[-3000:]
    files = {line.split(" ", 2)[2]: line.split(" ", 2)[1] for line in body.splitlines()
             if line.startswith("FILE ")}
    import hashlib

    assert files == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in tree.iterdir()}
    assert "BAD REFUSED" in body, guest.console[-3000:]
    assert f"APPENDED {files['big.bin']}  /mnt/big.bin" in body, guest.console[-3000:]

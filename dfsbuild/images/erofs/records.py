"""EROFS on-disk records (Linux ``fs/erofs/erofs_fs.h``; little-endian): the superblock at
byte 1024, 32-byte compact and 64-byte extended inodes addressed by NID (their offset from
the metadata area's start in 32-byte slots), and 12-byte directory entries."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError

MAGIC = 0xE0F5E1E2
SUPER_OFFSET = 1024
BLOCK_BITS = 12
BLOCK = 1 << BLOCK_BITS
SLOT = 32                       # inode alignment; NID = offset from the metadata area / 32
META_BLOCK = 0                  # the metadata area starts at block 0, the superblock's
FIRST_SLOT = 36                 # the first inode slot after the superblock (byte 1152)

FLAT_PLAIN, FLAT_INLINE = 0, 2  # data layouts (i_format bits 1-3)

# struct erofs_dirent file_type, as Linux's fs_types.c FT_*
FILE_TYPES = {"file": 1, "dir": 2, "char": 3, "block": 4, "fifo": 5, "socket": 6, "symlink": 7}
KINDS = {v: k for k, v in FILE_TYPES.items()}
S_IFMT = {"file": 0o100000, "dir": 0o040000, "char": 0o020000, "block": 0o060000,
          "fifo": 0o010000, "socket": 0o140000, "symlink": 0o120000}
MODE_KINDS = {v: k for k, v in S_IFMT.items()}


@dataclass(frozen=True, slots=True)
class Superblock:
    """struct erofs_super_block, 128 bytes at byte 1024."""

    root_nid: int
    inodes: int
    build_time: int
    blocks: int
    uuid: bytes
    volume: bytes
    meta_block: int = META_BLOCK
    block_bits: int = BLOCK_BITS
    feature_compat: int = 0      # no superblock checksum, no per-image mtime
    feature_incompat: int = 0    # uncompressed, no chunks, no extra devices

    FORMAT: ClassVar = struct.Struct(
        "<"
        "I"      # 0x00 magic 0xE0F5E1E2
        "I"      # 0x04 checksum (crc32c; only with COMPAT_SB_CHKSUM)
        "I"      # 0x08 feature_compat
        "B"      # 0x0C blkszbits
        "B"      # 0x0D sb_extslots
        "H"      # 0x0E root_nid
        "Q"      # 0x10 inos
        "Q"      # 0x18 build_time (s)
        "I"      # 0x20 build_time_nsec
        "I"      # 0x24 blocks
        "I"      # 0x28 meta_blkaddr
        "I"      # 0x2C xattr_blkaddr
        "16s"    # 0x30 uuid
        "16s"    # 0x40 volume_name
        "I"      # 0x50 feature_incompat
        "H"      # 0x54 available_compr_algs / lz4_max_distance
        "H"      # 0x56 extra_devices
        "H"      # 0x58 devt_slotoff
        "B"      # 0x5A dirblkbits
        "B"      # 0x5B xattr_prefix_count
        "I"      # 0x5C xattr_prefix_start
        "Q"      # 0x60 packed_nid
        "B"      # 0x68 xattr_filter_reserved
        "23x"    # 0x69 reserved
    )

    def pack(self) -> bytes:
        if not 0 <= self.root_nid <= 0xFFFF:
            raise ValueError(f"root NID {self.root_nid} does not fit 16 bits")
        if len(self.uuid) != 16 or len(self.volume) > 16 or not 0 <= self.blocks < 1 << 32:
            raise ValueError("superblock field out of range")
        return self.FORMAT.pack(MAGIC, 0, self.feature_compat, self.block_bits, 0,
                                self.root_nid, self.inodes, self.build_time, 0, self.blocks,
                                self.meta_block, 0, self.uuid, self.volume,
                                self.feature_incompat, 0, 0, 0, 0, 0, 0, 0, 0)

    @classmethod
    def unpack(cls, data: bytes) -> Superblock:
        f = cls.FORMAT.unpack(data)
        if f[0] != MAGIC:
            raise FormatError("erofs", SUPER_OFFSET, f"expected magic 0x{MAGIC:08x}, found "
                              f"0x{f[0]:08x}")
        if not 9 <= f[3] <= 16:
            raise FormatError("erofs", SUPER_OFFSET + 12, f"block size 2^{f[3]} is not read")
        return cls(root_nid=f[5], inodes=f[6], build_time=f[7], blocks=f[9], uuid=f[12],
                   volume=f[13].rstrip(b"\0"), meta_block=f[10], block_bits=f[3],
                   feature_compat=f[2], feature_incompat=f[14])


assert Superblock.FORMAT.size == 128


@dataclass(frozen=True, slots=True)
class Inode:
    """struct erofs_inode_compact (32 bytes) or erofs_inode_extended (64 bytes)."""

    layout: int                  # FLAT_PLAIN or FLAT_INLINE
    mode: int                    # S_IFMT and permission bits
    nlink: int
    size: int
    u: int                       # raw_blkaddr, or rdev for devices
    ino: int
    uid: int = 0
    gid: int = 0
    mtime: int = 0               # extended inodes only (compact ones take the build time)
    extended: bool = False

    COMPACT: ClassVar = struct.Struct(
        "<"
        "H"      # 0x00 i_format: bit 0 version, bits 1-3 data layout
        "H"      # 0x02 i_xattr_icount
        "H"      # 0x04 i_mode
        "H"      # 0x06 i_nlink
        "I"      # 0x08 i_size
        "4x"     # 0x0C i_reserved
        "I"      # 0x10 i_u: raw_blkaddr / rdev
        "I"      # 0x14 i_ino
        "H"      # 0x18 i_uid
        "H"      # 0x1A i_gid
        "4x"     # 0x1C i_reserved2
    )
    EXTENDED: ClassVar = struct.Struct(
        "<"
        "H"      # 0x00 i_format
        "H"      # 0x02 i_xattr_icount
        "H"      # 0x04 i_mode
        "2x"     # 0x06 i_reserved
        "Q"      # 0x08 i_size
        "I"      # 0x10 i_u
        "I"      # 0x14 i_ino
        "I"      # 0x18 i_uid
        "I"      # 0x1C i_gid
        "Q"      # 0x20 i_mtime
        "I"      # 0x28 i_mtime_nsec
        "I"      # 0x2C i_nlink
        "16x"    # 0x30 i_reserved2
    )

    @property
    def disk_size(self) -> int:
        return self.EXTENDED.size if self.extended else self.COMPACT.size

    def pack(self) -> bytes:
        return pack_inode(self.layout, self.mode, self.nlink, self.size, self.u, self.ino,
                          self.uid, self.gid, self.mtime, self.extended)

    @classmethod
    def unpack(cls, data: bytes, at: int) -> Inode:
        if len(data) < cls.COMPACT.size:
            raise FormatError("erofs", at, "an inode passes the image's end")
        fmt = struct.unpack_from("<H", data)[0]
        layout, extended = (fmt >> 1) & 7, bool(fmt & 1)
        if fmt >> 4 or layout not in (FLAT_PLAIN, FLAT_INLINE):
            raise FormatError("erofs", at, f"inode format 0x{fmt:04x}: only uncompressed "
                              "flat inodes are read")
        if extended:
            if len(data) < cls.EXTENDED.size:
                raise FormatError("erofs", at, "an extended inode passes the image's end")
            _, _, mode, size, u, ino, uid, gid, mtime, _, nlink = cls.EXTENDED.unpack_from(data)
            return cls(layout, mode, nlink, size, u, ino, uid, gid, mtime, True)
        _, _, mode, nlink, size, u, ino, uid, gid = cls.COMPACT.unpack_from(data)
        return cls(layout, mode, nlink, size, u, ino, uid, gid)


assert Inode.COMPACT.size == 32 and Inode.EXTENDED.size == 64
_COMPACT_PACK = Inode.COMPACT.pack
_EXTENDED_PACK = Inode.EXTENDED.pack


def pack_inode(layout: int, mode: int, nlink: int, size: int, u: int, ino: int, uid: int,
               gid: int, mtime: int, extended: bool) -> bytes:
    """An inode's bytes (``Inode.pack``, without making the record: the writer packs one per
    file)."""
    if extended:
        return _EXTENDED_PACK((layout << 1) | 1, 0, mode, size, u, ino, uid, gid, mtime, 0,
                              nlink)
    if size > 0xFFFFFFFF or nlink > 0xFFFF or uid > 0xFFFF or gid > 0xFFFF:
        raise ValueError("a compact inode cannot hold these values")
    return _COMPACT_PACK(layout << 1, 0, mode, nlink, size, u, ino, uid, gid)

DIRENT = struct.Struct(
    "<"
    "Q"      # 0x00 nid
    "H"      # 0x08 nameoff: the name's offset in this directory block
    "B"      # 0x0A file_type
    "x"      # 0x0B reserved
)
assert DIRENT.size == 12


def encode_rdev(major: int, minor: int) -> int:
    """Linux's new_encode_dev, as EROFS stores a device number."""
    return (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & ~0xFF) << 12)


def decode_rdev(rdev: int) -> tuple[int, int]:
    return (rdev & 0xFFF00) >> 8, (rdev & 0xFF) | ((rdev >> 12) & 0xFFF00)

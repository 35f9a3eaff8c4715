"""dm-verity's hash device as veritysetup formats it (format 1, "normal" hashes): a 512-byte
superblock in the first hash block, then the hash tree from the second block on, its top level
first. A data block's hash is H(salt || block); a hash block holds 2^k hashes, each padded to
a power of two bytes; level i+1 hashes the blocks of level i; the root hash is H(salt || the
single block of the top level) and is not stored anywhere on the device."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from dfsbuild.errors import FormatError

SIGNATURE = b"verity\0\0"
SB_SIZE = 512
MAX_SALT = 256


@dataclass(frozen=True, slots=True)
class VeritySuperblock:
    """struct verity_sb (cryptsetup lib/verity/verity.c), 512 bytes."""

    uuid: bytes
    algorithm: str
    data_block_size: int
    hash_block_size: int
    data_blocks: int
    salt: bytes
    version: int = 1
    hash_type: int = 1

    FORMAT: ClassVar = struct.Struct(
        "<"
        "8s"     # 0x000 signature "verity\0\0"
        "I"      # 0x008 version: 1
        "I"      # 0x00C hash_type: 1 (normal)
        "16s"    # 0x010 uuid
        "32s"    # 0x020 algorithm, NUL-padded ("sha256")
        "I"      # 0x040 data_block_size
        "I"      # 0x044 hash_block_size
        "Q"      # 0x048 data_blocks
        "H"      # 0x050 salt_size
        "6x"     # 0x052 padding
        "256s"   # 0x058 salt
        "168x"   # 0x158 padding
    )

    def pack(self) -> bytes:
        if len(self.salt) > MAX_SALT or len(self.uuid) != 16:
            raise ValueError("verity superblock field out of range")
        return self.FORMAT.pack(SIGNATURE, self.version, self.hash_type, self.uuid,
                                self.algorithm.encode(), self.data_block_size,
                                self.hash_block_size, self.data_blocks, len(self.salt),
                                self.salt)

    @classmethod
    def unpack(cls, data: bytes) -> VeritySuperblock:
        sig, version, htype, uuid, alg, dbs, hbs, blocks, salt_size, salt = \
            cls.FORMAT.unpack(data)
        if sig != SIGNATURE:
            raise FormatError("verity", 0, f"expected signature {SIGNATURE!r}, found {sig!r}")
        if version != 1 or htype != 1:
            raise FormatError("verity", 8, f"version {version}, hash type {htype}: only 1 and "
                              "1 are read")
        if salt_size > MAX_SALT:
            raise FormatError("verity", 0x50, f"salt of {salt_size} bytes; at most {MAX_SALT}")
        return cls(uuid, alg.rstrip(b"\0").decode("ascii", "replace"), dbs, hbs, blocks,
                   salt[:salt_size])


assert VeritySuperblock.FORMAT.size == SB_SIZE

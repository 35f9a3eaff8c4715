"""The hash tree of a data image, computed in one pass over it (bounded memory: a level is
at most 1/128 of the level below), and the root hash."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where each level lies on the hash device, as dm-verity computes it."""

    data_blocks: int
    block_size: int
    digest_size: int
    level_blocks: tuple[int, ...]      # blocks of level 0 (hashes of data blocks) upwards

    @property
    def per_block(self) -> int:
        """Hashes in one hash block: the block over the digest padded to a power of two."""
        padded = 1 << (self.digest_size - 1).bit_length()
        return self.block_size // padded

    @property
    def hash_blocks(self) -> int:
        return sum(self.level_blocks)

    def level_start(self, level: int) -> int:
        """First block of ``level`` on the hash device (block 0 is the superblock's): the
        top level first, then each level below it."""
        return 1 + sum(self.level_blocks[level + 1:])


def appended_data_blocks(total_blocks: int, block_size: int, digest_size: int) -> int | None:
    """D of an image of ``total_blocks``: D data blocks, then the superblock's block and the
    hash tree of D blocks (``verity = "append"``); None if no D gives that many. D plus its
    tree's blocks grows with D, so there is at most one."""
    lo, hi = 1, total_blocks
    while lo <= hi:
        mid = (lo + hi) // 2
        n = mid + 1 + geometry(mid, block_size, digest_size).hash_blocks
        if n == total_blocks:
            return mid
        lo, hi = (mid + 1, hi) if n < total_blocks else (lo, mid - 1)
    return None


def geometry(data_blocks: int, block_size: int, digest_size: int) -> Geometry:
    padded = 1 << (digest_size - 1).bit_length()
    bits = (block_size // padded).bit_length() - 1
    levels = 0
    while bits * levels < 64 and (data_blocks - 1) >> (bits * levels):
        levels += 1
    blocks = tuple(-(-data_blocks // (1 << (bits * (i + 1)))) for i in range(levels))
    return Geometry(data_blocks, block_size, digest_size, blocks)


def hash_levels(fd: int, size: int, geo: Geometry, salt: bytes,
                algorithm: str) -> tuple[list[bytes], bytes]:
    """The hash blocks of every level (level 0 first) and the root hash, from the first
    ``size`` bytes of ``fd`` (``geo.data_blocks`` whole blocks)."""
    bs = geo.block_size
    padded = 1 << (geo.digest_size - 1).bit_length()
    pad = bytes(padded - geo.digest_size)
    base = hashlib.new(algorithm, salt)

    def digest(block: bytes | memoryview) -> bytes:
        h = base.copy()
        h.update(block)
        return h.digest() + pad

    def pack(hashes: list[bytes]) -> bytes:
        data = b"".join(hashes)
        return data + bytes(-len(data) % bs)

    leaves: list[bytes] = []
    chunk = 256 * bs
    for at in range(0, size, chunk):
        data = os.pread(fd, min(chunk, size - at), at)
        if len(data) != min(chunk, size - at):
            raise OSError(0, "the data image changed while it was hashed")
        view = memoryview(data)
        leaves.extend(digest(view[i:i + bs]) for i in range(0, len(data), bs))
    levels: list[bytes] = []
    current = leaves
    for _ in geo.level_blocks:
        block = pack(current)
        levels.append(block)
        current = [digest(memoryview(block)[i:i + bs]) for i in range(0, len(block), bs)]
    root = current[0][:geo.digest_size] if levels else leaves[0][:geo.digest_size]
    return levels, root

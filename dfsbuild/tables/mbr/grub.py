"""GRUB's BIOS boot of an MBR disk, set up when the disk is built, as ``grub-bios-setup``
does when it embeds GRUB in the gap before the first partition:

- sector 0 gets the code of GRUB's ``boot.img`` (bytes 0..439; the disk signature and the
  table stay dfsbuild's), with the LBA of core.img's first sector at 0x5C (a u64) and the
  jump of its boot-drive check at 0x66 replaced by two NOPs (for BIOSes that pass a wrong
  drive number, which grub-bios-setup does for every hard disk);
- ``core.img`` (made by ``grub-mkimage -O i386-pc``) is written from LBA 1; its first sector
  (diskboot.img) ends with a block list ``{u64 start, u16 sectors, u16 segment}`` at 0x1F4,
  where grub-mkimage has put the length and the load segment and the setup puts the LBA of
  core.img's second sector.

Nothing here reads a file: bytes in, bytes out.
"""

from __future__ import annotations

import struct

KERNEL_SECTOR = 0x5C          # boot.img: u64 LBA of core.img's first sector
DRIVE_CHECK = 0x66            # boot.img: the 2-byte jump of the boot-drive check
BLOCK_LIST = 0x200 - 12       # core.img's first sector: {u64 start, u16 len, u16 segment}
KERNEL_SEGMENT = 0x820        # where diskboot.img loads the rest (0x800 + one sector)
CORE_LBA = 1
SECTOR = 512
CODE_BYTES = 440


def grub_sectors(boot: bytes, core: bytes) -> tuple[bytes, bytes]:
    """The boot code for bytes 0..439 of sector 0, and core.img as written from LBA 1
    (whole sectors); ValueError when the files are not GRUB's i386-pc images."""
    if len(boot) != SECTOR or boot[510:512] != b"\x55\xaa":
        raise ValueError(f"the boot image is {len(boot)} bytes; GRUB's boot.img is one "
                         "sector ending 55 aa")
    if len(core) < 2 * SECTOR:
        raise ValueError(f"core.img is {len(core)} bytes: not GRUB's (grub-mkimage -O i386-pc)")
    sectors = -(-len(core) // SECTOR)
    _, length, segment = struct.unpack_from("<QHH", core, BLOCK_LIST)
    if (length, segment) != (sectors - 1, KERNEL_SEGMENT):
        raise ValueError(f"core.img's block list says {length} sectors at segment "
                         f"0x{segment:x}, not {sectors - 1} at 0x{KERNEL_SEGMENT:x}: not a "
                         "core.img made by grub-mkimage -O i386-pc")
    code = bytearray(boot[:CODE_BYTES])
    struct.pack_into("<Q", code, KERNEL_SECTOR, CORE_LBA)
    code[DRIVE_CHECK:DRIVE_CHECK + 2] = b"\x90\x90"
    placed = bytearray(core.ljust(sectors * SECTOR, b"\0"))
    struct.pack_into("<Q", placed, BLOCK_LIST, CORE_LBA + 1)
    return bytes(code), bytes(placed)

"""Partition-table bytes against vectors written by hand from the specs."""

from __future__ import annotations

import io
import struct

import pytest

from dfsbuild.tables.embr import records as embr
from dfsbuild.tables.mbr.ebr import Logical, ebr_chain
from dfsbuild.tables.mbr.records import MbrEntry, chs, pack_sector, unpack_sector
from tests.conftest import read_disk


@pytest.mark.parametrize(("lba", "expected"), [
    (0, "000100"),          # C0 H0 S1
    (2048, "202100"),       # formats.md §4.2
    (16383, "050401"),
    (22527, "662501"),
    (16450558, "fefeff"),   # C1023 H254 S62: still representable
    (16450559, "feffff"),   # C1023 H254 S63: the last representable sector
    (16450560, "feffff"),   # past it: clamped to the same bytes
    (0xFFFFFFFF, "feffff"),
])
def test_chs_as_sfdisk_writes_it(lba: int, expected: str) -> None:
    assert chs(lba).hex() == expected


# formats.md §4.3: the 64 MiB disk sfdisk wrote, transcribed from its hex dump.
DOC_MBR_1BE = "80202100 0c662501 00080000 00500000"
DOC_MBR_1CE = "00662601 057f3906 00580000 00400100"
DOC_EBR1 = ("00870701 832a2802 00080000 00280000", "002a2902 05cd0b02 00300000 00280000")
DOC_EBR2 = ("004b0a02 82cd0b02 00080000 00200000",)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_primary_and_extended_entries_match_the_documented_bytes() -> None:
    assert MbrEntry.classic(0x80, 0x0C, 2048, 20480).pack() == h(DOC_MBR_1BE)
    assert MbrEntry.classic(0, 0x05, 22528, 81920).pack() == h(DOC_MBR_1CE)


def test_ebr_chain_matches_the_documented_bytes() -> None:
    chain = ebr_chain(22528, [Logical(22528, 24576, 10240, 0x83),
                              Logical(34816, 36864, 8192, 0x82)])
    assert [lba for lba, _ in chain] == [22528, 34816]
    first, second = (sector for _, sector in chain)
    assert first[0x1BE:0x1DE] == h("".join(DOC_EBR1))
    assert first[0x1DE:0x1FE] == bytes(32)
    assert second[0x1BE:0x1CE] == h(DOC_EBR2[0])
    assert second[0x1CE:0x1FE] == bytes(48)   # the last EBR has no link
    assert first[0x1FE:] == second[0x1FE:] == b"\x55\xaa"


def test_48_bit_entries_follow_the_seed_layout() -> None:
    # start 0x0001_2345_6780, length 0x0002_0000_0800, bootable, type 0x83:
    # 0x81 | 0x14 | start bits 32-47 (0x0001 LE) | 0x83 | 0xEB | length bits 32-47 (0x0002 LE)
    # | start low 32 (0x23456780 LE) | length low 32 (0x00000800 LE)
    entry = MbrEntry(0x80, 0x83, 0x0001_2345_6780, 0x0002_0000_0800, lba48=True)
    expected = h("81 14 0100 83 eb 0200 80674523 00080000")
    assert entry.pack() == expected
    back = MbrEntry.unpack(expected)
    assert (back.lba48, back.bootable, back.type, back.start_lba, back.size_sectors) == (
        True, True, 0x83, 0x0001_2345_6780, 0x0002_0000_0800)
    not_bootable = MbrEntry(0, 0x07, 1 << 32, 1 << 32, lba48=True).pack()
    assert not_bootable[:4] == h("01 14 0100") and not_bootable[5:8] == h("eb 0100")


def test_a_classic_entry_with_head_0x14_is_not_taken_for_48_bit() -> None:
    classic = h("00 14 0100 83 eb 0200 00080000 00100000")  # status bit 0 clear
    assert MbrEntry.unpack(classic).lba48 is False


def test_disk_signature_and_boot_signature() -> None:
    sector = pack_sector([MbrEntry.classic(0, 0x83, 2048, 2048)], 0xDEADBEEF)
    assert sector[0x1B8:0x1BE] == h("efbeadde 0000")
    assert unpack_sector(sector).disk_id == 0xDEADBEEF


# --- eMBR ----------------------------------------------------------------------------------

def crc32_by_the_spec(data: bytes) -> int:
    """The eMBR document's CRC-32: reflected table from polynomial 0x04C11DB7."""
    def reflect(value: int, bits: int) -> int:
        out = 0
        for i in range(1, bits + 1):
            if value & 1:
                out |= 1 << (bits - i)
            value >>= 1
        return out

    table = []
    for i in range(256):
        v = reflect(i, 8) << 24
        for _ in range(8):
            v = ((v << 1) ^ (0x04C11DB7 if v & (1 << 31) else 0)) & 0xFFFFFFFF
        table.append(reflect(v, 32))
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ table[(crc & 0xFF) ^ byte]
    return crc ^ 0xFFFFFFFF


def test_embr_structures_match_hand_assembled_bytes() -> None:
    geo = embr.geometry(entry_count=2, sector_size=512)   # header at LBA 2, one sector
    assert (geo.header_lba, geo.remaining) == (2, 1)
    entry = embr.EmbrEntry(embr.FLAG_VALID, 2048, 4096, "root", 1000, 0, 0x1122334455667788)
    structures = dict(embr.build_embr(8192, 512, geo, [entry], 7, b"", b""))

    # LBA 0: boot indicator 0x80, CHS 00 02 00, type E0, end CHS of LBA 8191, start 1,
    # count 8191 (the disk is smaller than 2^32 sectors: the real size, as the spec asks).
    lba0 = structures[0]
    assert lba0[0x1BE:0x1CE] == h("80 000200 e0") + chs(8191) + h("01000000 ff1f0000")
    assert lba0[0x1FE:0x200] == b"\x55\xaa"

    # LBA 1 at 0x1F2: 'EmbrrbmE', sect_offset 2, remaining 1, 0xAA55.
    assert structures[1][0x1F0:0x200] == h("0000 456d627272626d45 0200 0100 55aa")

    # Header: "EMBR", CRC, 2 entries, delay 7, version 0x25, total 6144 (2048 + 4096),
    # 8 reserved bytes, "RBME"; then the entry and one unused (all-zero) entry.
    block = structures[2]
    entry_bytes = (h("01000000") + b"eMBR" + struct.pack("<QQ", 2048, 4096)
                   + b"root".ljust(64, b"\0") + struct.pack("<QQQ", 1000, 0, 0x1122334455667788)
                   + bytes(16))
    body = entry_bytes + bytes(128)
    header_zero_crc = b"EMBR" + bytes(4) + h("0200 07 25") + struct.pack("<Q", 6144) \
        + bytes(8) + b"RBME"
    crc = crc32_by_the_spec(header_zero_crc + body)
    assert block[:32] == header_zero_crc[:4] + struct.pack("<I", crc) + header_zero_crc[8:]
    assert block[32:32 + 256] == body
    assert len(block) == 512 and block[288:] == bytes(224)


def test_embr_legacy_entry_for_disks_past_2_32_sectors() -> None:
    geo = embr.geometry(1, 512)
    lba0 = dict(embr.build_embr(1 << 33, 512, geo, [], 0, b"", b""))[0]
    assert lba0[0x1BE:0x1CE] == h("80 000200 e0 fffffe 01000000 ffffffff")


def test_embr_stub_is_the_hand_assembled_program() -> None:
    # push cs / pop ds / call +0 / pop si / add si,0x16 / cld
    assert embr.STUB[:9] == h("0e 1f e80000 5e 83c616")
    # the message starts where "add si" points: 0x05 (after the call) + 0x16 = 0x1b
    assert embr.DEFAULT_BOOT_CODE[0x1B:0x20] == b"eMBR "
    assert embr.STUB[-6:] == h("ebf3 fa f4 ebfd")


def hand_embr_disk(ss: int) -> bytes:
    """An eMBR disk assembled here byte by byte from the spec (not by our writer): one valid
    entry "root" at LBA 2048 for 4096 sectors, hidden, delay 7, header at LBA 2."""
    disk = bytearray(8192 * ss)
    disk[0x1BE:0x1CE] = h("80 000200 e0 feffff 01000000 ff1f0000")
    disk[0x1FE:0x200] = b"\x55\xaa"
    disk[ss + 0x1F2:ss + 0x200] = b"EmbrrbmE" + h("0200 0100 55aa")
    entry = (h("03000000") + b"eMBR" + struct.pack("<QQ", 2048, 4096)
             + b"root".ljust(64, b"\0") + struct.pack("<QQQ", 1000, 0, 0x1122334455667788)
             + bytes(16))
    body = entry + bytes(128)
    header = bytearray(b"EMBR" + bytes(4) + h("0200 07 25") + struct.pack("<Q", 6144)
                       + bytes(8) + b"RBME")
    header[4:8] = struct.pack("<I", crc32_by_the_spec(bytes(header) + body))
    disk[2 * ss:2 * ss + 32 + len(body)] = bytes(header) + body
    return bytes(disk)


@pytest.mark.parametrize("ss", [512, 4096])
def test_embr_reader_reads_a_hand_assembled_disk(ss: int) -> None:
    table = read_disk(io.BytesIO(hand_embr_disk(ss)))
    assert (table.label, table.sector_size, table.problems) == ("embr", ss, [])
    (p,) = table.partitions
    assert (p.number, p.start_lba, p.size_sectors, p.name) == (1, 2048, 4096, "root")
    assert p.extra["hidden"] is True and p.extra["os_signature"] == 0x1122334455667788
    assert table.extra["crc_ok"] is True and table.extra["boot_delay"] == 7
    assert table.extra["total_sectors"] == 6144


def test_embr_reader_names_a_bad_crc() -> None:
    data = bytearray(hand_embr_disk(512))
    data[1024 + 32 + 0x18] ^= 1          # one bit of the entry's name
    table = read_disk(io.BytesIO(bytes(data)))
    assert table.problems == [(1024 + 4, "eMBR header CRC-32 mismatch")]

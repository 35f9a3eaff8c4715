"""Reading a GPT: headers and arrays CRC-checked, a damaged primary replaced by the backup
(found at 512- or 4096-byte sectors), every entry checked against the usable area.

No allocation is larger than the image: an entry array is read only when its declared size
fits both the image and MAX_ARRAY_BYTES.
"""

from __future__ import annotations

import zlib

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.tables.base import DiskPartition, DiskTable
from dfsbuild.tables.gpt.records import ENTRY_SIZE, SIGNATURE, GptEntry, GptHeader
from dfsbuild.tables.mbr.records import (
    BOOT_CODE_BYTES,
    BOOT_SIGNATURE,
    SECTOR,
    SIGNATURE_OFFSET,
    TABLE_OFFSET,
    unpack_sector,
)

PROTECTIVE = 0xEE
SECTOR_SIZES = (512, 4096)
MAX_ARRAY_BYTES = 1 << 20     # 8192 entries of 128 bytes; real tables hold 128


def detect_gpt(src: ByteSource) -> bool:
    head = src.read_upto(0, SECTOR)
    if len(head) < SECTOR or head[SIGNATURE_OFFSET:SECTOR] != BOOT_SIGNATURE:
        return False
    return any(head[TABLE_OFFSET + 16 * i + 4] == PROTECTIVE for i in range(4))


def sector_size_of(src: ByteSource, given: int | None) -> int:
    """Where the bytes tell: a header signature at LBA 1, else at the last LBA."""
    sizes = (given,) if given else SECTOR_SIZES
    for ss in sizes:
        if src.read_upto(ss, 8) == SIGNATURE:
            return ss
    for ss in sizes:
        last = src.size // ss - 1
        if last > 1 and src.read_upto(last * ss, 8) == SIGNATURE:
            return ss
    return sizes[0]


def _load(src: ByteSource, lba: int, ss: int) -> tuple[GptHeader, bytes]:
    header = GptHeader.unpack(src.read(lba * ss, ss), lba * ss)
    at = header.my_lba * ss + 80
    if header.my_lba != lba:
        raise FormatError("gpt", lba * ss + 24, f"MyLBA is {header.my_lba}, but the header "
                          f"sits at LBA {lba}")
    if header.entry_size < ENTRY_SIZE or header.entry_size % ENTRY_SIZE or \
            header.entry_count == 0:
        raise FormatError("gpt", at, f"implausible entry array: {header.entry_count} entries "
                          f"of {header.entry_size} bytes")
    size = header.entry_count * header.entry_size
    if size > MAX_ARRAY_BYTES:
        raise FormatError("gpt", at, f"an entry array of {size} bytes ({header.entry_count} x "
                          f"{header.entry_size}) is larger than any real table "
                          f"({MAX_ARRAY_BYTES} bytes at most)")
    start = header.entries_lba * ss
    if start + size > src.size:
        raise FormatError("gpt", start, f"the entry array ({size} bytes at LBA "
                          f"{header.entries_lba}) passes the end of the image "
                          f"({src.size} bytes)")
    array = src.read(start, size)
    if zlib.crc32(array) != header.entries_crc:
        raise FormatError("gpt", start, "partition entry array CRC32 mismatch: stored "
                          f"{header.entries_crc:#010x}, computed {zlib.crc32(array):#010x}")
    return header, array


def read_gpt(src: ByteSource, sector_size: int | None) -> DiskTable:
    src = src.named("gpt")
    mbr = unpack_sector(src.read(0, SECTOR), 0)
    ss = sector_size_of(src, sector_size)
    total = src.size // ss
    problems: list[tuple[int, str]] = []
    try:
        header, array = _load(src, 1, ss)
    except FormatError as primary:
        backup_lba = total - 1
        try:
            header, array = _load(src, backup_lba, ss)
        except FormatError as backup:
            raise FormatError("gpt", primary.offset, "both GPT headers are damaged: primary: "
                              f"{primary.message}; backup (LBA {backup_lba}): "
                              f"{backup.message}") from None
        problems.append((primary.offset or ss, f"primary GPT: {primary.message}; using the "
                         f"backup at LBA {backup_lba}"))
    else:
        try:
            _load(src, header.alternate_lba, ss)
        except FormatError as exc:
            problems.append((exc.offset or 0, f"backup GPT: {exc.message} (header at LBA "
                             f"{header.alternate_lba})"))
    array_bytes = -(-header.entry_count * header.entry_size // ss) * ss
    # The other copy's array sits next to its header: before the backup, after the primary.
    other_array = (header.alternate_lba - array_bytes // ss if header.alternate_lba > 1
                   else 2)
    structures = [(0, ss), (header.my_lba * ss, ss), (header.entries_lba * ss, array_bytes),
                  (header.alternate_lba * ss, ss), (other_array * ss, array_bytes)]
    parts = []
    for i in range(header.entry_count):
        offset = header.entries_lba * ss + i * header.entry_size
        entry = GptEntry.unpack(array[i * header.entry_size:i * header.entry_size + ENTRY_SIZE])
        if not entry.used:
            continue
        if entry.last_lba < entry.first_lba:
            problems.append((offset + 32, f"entry {i + 1} ends (LBA {entry.last_lba}) before it "
                             f"starts (LBA {entry.first_lba}): left out"))
            continue
        if entry.first_lba < header.first_usable_lba or entry.last_lba > header.last_usable_lba:
            problems.append((offset + 32, f"entry {i + 1} (LBA {entry.first_lba}.."
                             f"{entry.last_lba}) lies outside the usable area "
                             f"{header.first_usable_lba}..{header.last_usable_lba}: it covers "
                             "the GPT's own structures"))
        if (entry.last_lba + 1) * ss > src.size:
            problems.append((offset + 40, f"entry {i + 1} (LBA {entry.first_lba}.."
                             f"{entry.last_lba}) passes the end of the image ({total} "
                             "sectors)"))
        unique = str(entry.unique_guid).upper()
        extra: dict[str, object] = {"uuid": unique}
        dump = [f"uuid={unique}"]
        if entry.name:
            extra["name"] = entry.name
            dump.append(f'name="{entry.name}"')
        if entry.attributes:
            extra["attrs"] = attribute_text(entry.attributes)
            dump.append(f'attrs="{extra["attrs"]}"')
        parts.append(DiskPartition(i + 1, entry.first_lba, entry.last_lba - entry.first_lba + 1,
                                   str(entry.type_guid).upper(), False, entry.name, extra, dump))
    hybrid = [e for e in mbr.entries if not e.empty and e.type != PROTECTIVE]
    facts: dict[str, object] = {"firstlba": header.first_usable_lba,
                                "lastlba": header.last_usable_lba}
    trailer = []
    if hybrid:
        facts["hybrid_mbr"] = [{"start": e.start_lba, "size": e.size_sectors,
                                "type": f"{e.type:x}", "bootable": e.bootable} for e in hybrid]
        trailer = ["", f"hybrid MBR: {facts['hybrid_mbr']}"]
    return DiskTable("gpt", str(header.disk_guid).upper(), ss, parts, problems, facts,
                     [f"first-lba: {header.first_usable_lba}",
                      f"last-lba: {header.last_usable_lba}"], trailer, structures,
                     BOOT_CODE_BYTES)


def attribute_text(bits: int) -> str:
    """sfdisk's spelling of GPT attribute bits."""
    names = {0: "RequiredPartition", 1: "NoBlockIOProtocol", 2: "LegacyBIOSBootable"}
    words = [names[b] for b in sorted(names) if bits & (1 << b)]
    rest = [b for b in range(3, 64) if bits & (1 << b)]
    if rest:
        words.append("GUID:" + ",".join(str(b) for b in rest))
    return " ".join(words)

"""Partition tables → text in the shape of ``sfdisk --dump`` and JSON in the shape of
``sfdisk --json``, plus what sfdisk does not show (eMBR, 48-bit entries, problems)."""

from __future__ import annotations

from typing import BinaryIO

from dfsbuild.errors import FormatError
from dfsbuild.formats.romfs_read import RomfsReader
from dfsbuild.partitions import DiskTable
from dfsbuild.probe import filesystem_name


def table_json(table: DiskTable, device: str) -> dict[str, object]:
    parts = []
    for p in table.partitions:
        item: dict[str, object] = {"node": f"{device}{p.number}", "start": p.start_lba,
                                   "size": p.size_sectors, "type": p.type}
        if p.bootable and table.label == "dos":
            item["bootable"] = True
        if p.name:
            item["name"] = p.name
        if table.label == "gpt":
            item["uuid"] = p.extra["uuid"]
            attrs = p.extra["attributes"]
            if attrs:
                item["attrs"] = attribute_text(int(str(attrs)))
        item.update({k: v for k, v in p.extra.items() if k not in ("uuid", "attributes")})
        parts.append(item)
    data: dict[str, object] = {"label": table.label, "id": table.id, "device": device,
                               "unit": "sectors", "sectorsize": table.sector_size}
    data.update(table.extra)
    data["partitions"] = parts
    if table.problems:
        data["problems"] = [{"offset": o, "message": m} for o, m in table.problems]
    return {"partitiontable": data}


def attribute_text(bits: int) -> str:
    """sfdisk's spelling of GPT attribute bits."""
    names = {0: "RequiredPartition", 1: "NoBlockIOProtocol", 2: "LegacyBIOSBootable"}
    words = [names[b] for b in sorted(names) if bits & (1 << b)]
    rest = [b for b in range(3, 64) if bits & (1 << b)]
    if rest:
        words.append("GUID:" + ",".join(str(b) for b in rest))
    return " ".join(words)


def table_text(table: DiskTable, device: str) -> str:
    lines = [f"label: {table.label}", f"label-id: {table.id}", f"device: {device}",
             "unit: sectors"]
    if table.label == "gpt":
        lines += [f"first-lba: {table.extra['firstlba']}", f"last-lba: {table.extra['lastlba']}"]
    lines += [f"sector-size: {table.sector_size}", ""]
    for p in table.partitions:
        fields = [f"start={p.start_lba:>12}", f"size={p.size_sectors:>12}", f"type={p.type}"]
        if table.label == "gpt":
            fields.append(f"uuid={p.extra['uuid']}")
        if p.name:
            fields.append(f'name="{p.name}"')
        if table.label == "gpt" and p.extra["attributes"]:
            fields.append(f'attrs="{attribute_text(int(str(p.extra["attributes"])))}"')
        if p.bootable and table.label == "dos":
            fields.append("bootable")
        if p.extra.get("lba48"):
            fields.append("lba48")
        if p.extra.get("hidden"):
            fields.append("hidden")
        signature = p.extra.get("os_signature")
        if isinstance(signature, int) and signature:
            fields.append(f"os-signature=0x{signature:016x}")
        lines.append(f"{device}{p.number} : " + ", ".join(fields))
    if table.label == "embr":
        e = table.extra
        lines += ["", f"embr: header at LBA {e['header_lba']}, remaining {e['remaining']}, "
                  f"{e['entry_count']} entries, boot delay {e['boot_delay']}s, version "
                  f"{e['version']}, total sectors {e['total_sectors']}, CRC "
                  f"{'ok' if e['crc_ok'] else 'BAD'}"]
    if "hybrid_mbr" in table.extra:
        lines += ["", f"hybrid MBR: {table.extra['hybrid_mbr']}"]
    for offset, message in table.problems:
        lines.append(f"problem at byte {offset}: {message}")
    return "\n".join(lines)


def partition_rows(table: DiskTable, f: BinaryIO) -> list[dict[str, object]]:
    """Each partition with the filesystem found at its start."""
    rows = []
    for p in table.partitions:
        base = p.start_lba * table.sector_size
        fs = filesystem_name(f, base)
        row: dict[str, object] = {"number": p.number, "name": p.name, "start": p.start_lba,
                                  "size": p.size_sectors, "type": p.type, "filesystem": fs}
        if fs == "romfs":
            try:
                row["volume"] = RomfsReader(f, base, p.size_sectors * table.sector_size).volume
            except FormatError as exc:
                row["problem"] = str(exc)
        rows.append(row)
    return rows

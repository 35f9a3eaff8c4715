"""Presentation only. Partition tables → text in the shape of ``sfdisk --dump`` and JSON in
the shape of ``sfdisk --json`` (plus what sfdisk does not show: eMBR, 48-bit entries,
problems); filesystems → one report for every format; names → printable text."""

from __future__ import annotations

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.images.base import FsEntry, FsReader
from dfsbuild.inspect.detect import describe_filesystem, filesystem_type
from dfsbuild.shown import shown
from dfsbuild.tables.base import DiskTable


def printable(text: str) -> str:
    """A name as a terminal can show it: bytes that are not UTF-8 as ``\\xNN``, control
    characters escaped."""
    raw = text.encode("utf-8", "surrogateescape")
    shown = raw.decode("utf-8", "backslashreplace")
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in shown)


def entry_json(e: FsEntry) -> dict[str, object]:
    item: dict[str, object] = {"path": e.path, "type": e.kind, "mode": f"{e.mode:04o}",
                               "size": e.size_bytes}
    item.update(dict(e.extra))
    if e.kind == "hardlink":
        item["link_to"] = e.link_ident
    elif e.kind == "symlink":
        item["target"] = e.target
    elif e.kind in ("char", "block"):
        item["major"], item["minor"] = e.major, e.minor
    return item


def fs_report(reader: FsReader) -> dict[str, object]:
    problems = reader.problems()
    return {
        "format": reader.format,
        **reader.summary(),
        "ok": not problems,
        "problems": [{"offset": p.offset, "message": p.message} for p in problems],
        "entries": [{**entry_json(e), **reader.detail(e)} for e in reader.walk()],
    }


def fs_text(report: dict[str, object]) -> str:
    head = {k: v for k, v in report.items() if k not in ("format", "ok", "problems",
                                                          "entries")}
    problems = report["problems"]
    assert isinstance(problems, list)
    lines = [f"{report['format']} filesystem: " + ", ".join(
        f"{k.replace('_', ' ')} {printable(v) if isinstance(v, str) else shown(v)}"
        for k, v in head.items()),
        f"problems: {len(problems)}"]
    for p in problems:
        lines.append(f"  at byte {p['offset']}: {p['message']}")
    lines.append(f"{'offset':>10}  {'type':<8} {'mode':>4} {'size':>10}  path")
    entries = report["entries"]
    assert isinstance(entries, list)
    for e in entries:
        lines.append(f"{_offset(e):>10}  {e['type']:<8} {e['mode']:>4} {e['size']:>10}  "
                     f"{printable(str(e['path']))}{_detail(e)}")
    return "\n".join(lines)


def _offset(e: dict[str, object]) -> str:
    offset = e.get("offset")
    return f"0x{offset:08x}" if isinstance(offset, int) else "-"


def _detail(e: dict[str, object]) -> str:
    if "target" in e:
        return f" -> {printable(str(e['target']))}"
    if isinstance(e.get("link_to"), int):
        return f" => header 0x{e['link_to']:x}"
    if "major" in e:
        return f" ({e['major']}, {e['minor']})"
    return ""


def ls_text(e: dict[str, object]) -> str:
    return (f"{e['type']:<8} {e['mode']:>4} {e['size']:>10}  {printable(str(e['path']))}"
            f"{_detail(e) if 'target' in e else ''}")


def table_json(table: DiskTable, device: str) -> dict[str, object]:
    parts = []
    for p in table.partitions:
        item: dict[str, object] = {"node": f"{device}{p.number}", "start": p.start_lba,
                                   "size": p.size_sectors, "type": p.type}
        if p.bootable:
            item["bootable"] = True
        item.update(p.extra)
        parts.append(item)
    data: dict[str, object] = {"label": table.label, "id": table.id, "device": device,
                               "unit": "sectors", "sectorsize": table.sector_size}
    data.update(table.extra)
    data["partitions"] = parts
    if table.problems:
        data["problems"] = [{"offset": o, "message": m} for o, m in table.problems]
    return {"partitiontable": data}


def table_text(table: DiskTable, device: str) -> str:
    lines = [f"label: {table.label}", f"label-id: {table.id}", f"device: {device}",
             "unit: sectors", *table.dump_header, f"sector-size: {table.sector_size}", ""]
    for p in table.partitions:
        fields = [f"start={p.start_lba:>12}", f"size={p.size_sectors:>12}", f"type={p.type}",
                  *p.dump]
        lines.append(f"{device}{p.number} : " + printable(", ".join(fields)))
    lines += table.dump_trailer
    for offset, message in table.problems:
        lines.append(f"problem at byte {offset}: {printable(message)}")
    return "\n".join(lines)


def partition_rows(table: DiskTable, disk: ByteSource) -> list[dict[str, object]]:
    """Each partition with the filesystem found at its start (and its volume name)."""
    rows = []
    ss = table.sector_size
    for p in table.partitions:
        row: dict[str, object] = {"number": p.number, "name": p.name, "start": p.start_lba,
                                  "size": p.size_sectors, "type": p.type, "filesystem": None}
        try:
            src = disk.sub(p.start_lba * ss, p.size_sectors * ss)
        except FormatError as exc:
            row["problem"] = str(exc)
            rows.append(row)
            continue
        row["filesystem"] = describe_filesystem(src)
        t = filesystem_type(src)
        if t is not None:
            try:
                facts = t.reader(src).summary()
                volume = facts.get("volume", facts.get("label"))
                if volume is not None:
                    row["volume"] = volume
            except FormatError as exc:
                row["problem"] = str(exc)
        rows.append(row)
    return rows

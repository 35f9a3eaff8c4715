"""Parsed images → text and JSON (presentation only)."""

from __future__ import annotations

from dfsbuild.formats.romfs import CHECKSUM_SPAN
from dfsbuild.formats.romfs_read import RomfsEntry, RomfsReader


def _entry_json(reader: RomfsReader, path: str, e: RomfsEntry) -> dict[str, object]:
    h = e.header
    item: dict[str, object] = {
        "path": path,
        "type": e.type_name,
        "mode": f"{e.mode:04o}",
        "size": h.size_bytes,
        "offset": e.offset,
        "spec": h.spec,
        "executable": h.executable,
    }
    if e.type_name == "hardlink":
        item["link_to"] = h.spec
    elif e.type_name == "symlink":
        item["target"] = reader.read(e).decode("utf-8", "surrogateescape")
    elif e.type_name in ("char", "block"):
        item["major"], item["minor"] = h.spec >> 16, h.spec & 0xFFFF
    elif e.type_name == "file":
        item["data_offset"] = e.data_offset
    return item


def romfs_report(reader: RomfsReader) -> dict[str, object]:
    problems = reader.verify()
    return {
        "format": "romfs",
        "volume": reader.volume,
        "full_size": reader.full_size,
        "image_size": reader.available,
        "checksum": f"0x{reader.stored_checksum:08x}",
        "checksum_span": min(CHECKSUM_SPAN, reader.full_size),
        "checksums_ok": not problems,
        "problems": [{"offset": p.offset, "message": p.message} for p in problems],
        "entries": [_entry_json(reader, path, e) for path, e in reader.walk()],
    }


def romfs_text(report: dict[str, object]) -> str:
    lines = [
        f"romfs volume {report['volume']!r}: {report['full_size']} bytes used, "
        f"{report['image_size']} in the image",
        f"superblock checksum {report['checksum']} over the first {report['checksum_span']} "
        f"bytes; checksums {'ok' if report['checksums_ok'] else 'BAD'}",
    ]
    problems = report["problems"]
    assert isinstance(problems, list)
    for p in problems:
        lines.append(f"  problem at byte {p['offset']}: {p['message']}")
    lines.append(f"{'offset':>10}  {'type':<8} {'mode':>4} {'size':>10}  path")
    entries = report["entries"]
    assert isinstance(entries, list)
    for e in entries:
        extra = ""
        if "target" in e:
            extra = f" -> {e['target']}"
        elif "link_to" in e:
            extra = f" => header 0x{e['link_to']:x}"
        elif "major" in e:
            extra = f" ({e['major']}, {e['minor']})"
        lines.append(f"0x{e['offset']:08x}  {e['type']:<8} {e['mode']:>4} {e['size']:>10}  "
                     f"{e['path']}{extra}")
    return "\n".join(lines)


def ls_lines(reader: RomfsReader, path: str) -> list[dict[str, object]]:
    """Entries directly under ``path`` (or the entry itself if it is not a directory)."""
    e = reader.lookup(path)
    target = reader.resolve(e)
    prefix = path.strip("/")
    if target.type_name != "dir":
        return [_entry_json(reader, prefix, e)]
    return [_entry_json(reader, f"{prefix}/{c.name}" if prefix else c.name, c)
            for c in reader.children(target)]

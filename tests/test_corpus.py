"""Our readers on real images from public projects (../shared/corpus): partition tables read as
sfdisk reads them, filesystem boot sectors never taken for partition tables, romfs images read
with the label blkid reports, damaged images reported with the problems they have.

The corpus is test data beside the project; it is never copied into it.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import re
from pathlib import Path
from typing import Any

import pytest

from dfsbuild.errors import FormatError
from dfsbuild.fileio.source import ByteSource
from dfsbuild.inspect.detect import foreign_filesystem, open_filesystem, table_kind
from dfsbuild.inspect.render import table_json
from dfsbuild.tables import read_table
from tests.conftest import IN_CI, ROOT, run_cli

CORPUS = Path(os.environ.get("DFSBUILD_CORPUS", ROOT.parent / "shared" / "corpus"))


def _manifest() -> list[dict[str, Any]]:
    path = CORPUS / "manifest.json"
    if not path.exists():
        return []
    images: list[dict[str, Any]] = json.loads(path.read_text())["images"]
    return images


IMAGES = _manifest()


def images(*kinds: str) -> list[Any]:
    found = [pytest.param(i, id=i["name"]) for i in IMAGES if i["kind"] in kinds]
    if not found:
        reason = f"the corpus is not at {CORPUS} (put ../shared beside the project)"
        marks = [pytest.mark.skip(reason=reason)] if not IN_CI else []
        found = [pytest.param(None, id="no-corpus", marks=marks)]
    return found


def load(item: dict[str, Any] | None) -> bytes:
    if item is None:
        pytest.fail(f"CI=true and the corpus is missing at {CORPUS}")
    data = lzma.decompress((CORPUS / item["file"]).read_bytes())
    assert len(data) == item["size"]
    return data


def reference(item: dict[str, Any], key: str) -> dict[str, Any]:
    table: dict[str, Any] = json.loads((CORPUS / item[key]).read_text())["partitiontable"]
    return table


def comparable(table: dict[str, Any]) -> dict[str, Any]:
    """What sfdisk --json and ours must agree on (device names aside)."""
    parts = [{"number": p["node"].rsplit(table["device"], 1)[-1], "start": p["start"],
              "size": p["size"], "type": p["type"].lower(), "bootable": p.get("bootable", False),
              **{k: p[k] for k in ("uuid", "name") if k in p}} for p in table["partitions"]]
    return {"label": table["label"], "id": table["id"].lower(),
            "sectorsize": table["sectorsize"],
            **{k: table[k] for k in ("firstlba", "lastlba") if k in table}, "partitions": parts}


def ours(path: Path, sector_size: int | None = None) -> dict[str, Any]:
    with open(path, "rb") as f:
        table = read_table(ByteSource(f), sector_size)
    data = table_json(table, path.name)["partitiontable"]
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("item", images("table"))
def test_tables_read_as_sfdisk_reads_them(item: dict[str, Any] | None, tmp_path: Path) -> None:
    data = load(item)
    assert item is not None
    path = tmp_path / Path(item["name"]).name
    path.write_bytes(data)
    if "pad_to" in item:
        # The image is the first sectors of a larger disk: as is, the backup GPT is missing
        # (a problem we must name); padded to the size its header names, sfdisk's reading.
        as_is = ours(path)
        assert as_is.get("problems"), "the missing backup GPT went unreported"
        os.truncate(path, item["pad_to"])
    got = ours(path)
    expected = reference(item, "sfdisk")
    assert comparable({**got, "device": path.name}) == comparable(expected)
    if "pad_to" in item:
        # Padding adds room, not the backup: that is the only problem left.
        assert [p["message"].split(":")[0] for p in got["problems"]] == ["backup GPT"]
    else:
        assert "problems" not in got, got.get("problems")


@pytest.mark.parametrize("item", images("damaged"))
def test_damaged_tables_name_every_problem(item: dict[str, Any] | None) -> None:
    data = load(item)
    assert item is not None
    try:
        table = read_table(ByteSource(io.BytesIO(data)))
        text = " ".join(m for _, m in table.problems)
    except FormatError as exc:
        text = str(exc)
    for word in item["mentions"]:
        assert word in text
    # The entry array CRC is wrong and there is no backup: both are named.
    assert "primary" in text and "backup" in text


@pytest.mark.parametrize("item", images("foreign"))
def test_foreign_labels_are_not_taken_for_mbr_or_gpt(item: dict[str, Any] | None) -> None:
    data = load(item)
    assert item is not None
    src = ByteSource(io.BytesIO(data))
    sfdisk = json.loads((CORPUS / item["sfdisk_asis"]).read_text())
    label = sfdisk.get("partitiontable", {}).get("label")
    kind = table_kind(src)
    if label in ("dos", "gpt"):
        assert kind is not None
        assert comparable({**table_json(kind.read(src, None), "x")["partitiontable"],
                           "device": "x"})["partitions"] == \
            comparable({**sfdisk["partitiontable"], "device": sfdisk["partitiontable"]
                        ["device"]})["partitions"]
    else:
        assert kind is None, f"{item['name']}: read as {kind.name if kind else ''}"


def _blkid(item: dict[str, Any]) -> dict[str, str]:
    """util-linux's expected ``blkid --probe --output udev`` lines, decoded."""
    values = {}
    for line in (CORPUS / item["expected"]).read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def _unescape(text: str) -> bytes:
    """blkid's ``_ENC`` form: bytes it will not print as \\xNN, the rest as UTF-8."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  text.encode("utf-8"))


@pytest.mark.parametrize("item", images("fat"))
def test_fat_images_read_as_blkid_reads_them(item: dict[str, Any] | None,
                                             tmp_path: Path) -> None:
    """Every FAT image of util-linux's blkid tests: type, version, label, boot label and
    serial as blkid reports them; exFAT recognised and refused, never a partition table."""
    data = load(item)
    assert item is not None
    src = ByteSource(io.BytesIO(data))
    assert table_kind(src) is None
    path = tmp_path / "fs.img"
    path.write_bytes(data)
    expected = _blkid(item)
    if item["fs"] == "exfat":
        assert foreign_filesystem(src) == "exfat"
        proc = run_cli("inspect", str(path), check=False)
        assert proc.returncode == 1 and "holds a EXFAT filesystem" in proc.stderr
        return
    proc = run_cli("inspect", "--json", str(path), check=False)
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["format"] == "fat"
    assert f"FAT{report['fat']}" == expected["ID_FS_VERSION"]
    assert report["serial"] == expected["ID_FS_UUID"]
    for ours, theirs in (("label", "ID_FS_LABEL_ENC"), ("boot_label", "ID_FS_LABEL_FATBOOT_ENC")):
        found = report[ours]
        if theirs not in expected:
            assert found is None, f"{ours}: {found!r}, blkid reports none"
        else:
            assert found.encode("cp850") == _unescape(expected[theirs])
    # Every file listed can be read to its end.
    for entry in report["entries"]:
        if entry["type"] == "file":
            out = run_cli("cat", str(path), entry["path"], check=False)
            assert out.returncode == 0, out.stderr


def _blkid(item: dict[str, Any]) -> dict[str, str]:
    lines = (CORPUS / item["expected"]["file"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.mark.parametrize("item", images("romfs"))
def test_romfs_images_read_cleanly(item: dict[str, Any] | None) -> None:
    data = load(item)
    assert item is not None
    reader = open_filesystem(ByteSource(io.BytesIO(data)), item["name"], False)
    assert reader.problems() == []
    entries = list(reader.walk())
    for e in entries:
        if e.kind == "file":
            assert len(b"".join(reader.data(e))) == e.size_bytes
    if "expected" in item:
        blkid = _blkid(item)
        assert reader.summary()["volume"] == blkid["ID_FS_LABEL"]
        assert reader.summary()["full_size"] == int(blkid["ID_FS_FSSIZE"])


@pytest.mark.parametrize("item", images("romfs-damaged"))
def test_a_truncated_romfs_is_a_format_error(item: dict[str, Any] | None) -> None:
    data = load(item)
    with pytest.raises(FormatError, match="truncated"):
        open_filesystem(ByteSource(io.BytesIO(data)), "x", False)

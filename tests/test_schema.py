"""The layout JSON Schema: generated from the Setting tables, committed as
schema/layout.schema.json and kept current; the jsonschema package (not ours) validates every
bundled layout with it and rejects the mistakes the loader rejects."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

jsonschema = pytest.importorskip("jsonschema", reason="the test extra installs jsonschema")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COMMITTED = ROOT / "schema" / "layout.schema.json"


def _validator() -> object:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current() -> None:
    assert run_cli("schema").stdout == COMMITTED.read_text(), \
        "regenerate it: dfsbuild schema > schema/layout.schema.json"


@pytest.mark.parametrize("layout", sorted((ROOT / "layouts").rglob("*.toml")),
                         ids=lambda p: p.name)
def test_bundled_layouts_validate(layout: Path) -> None:
    errors = list(_validator().iter_errors(  # type: ignore[attr-defined]
        tomllib.loads(layout.read_text())))
    assert errors == []


def test_the_keys_every_image_takes_validate() -> None:
    """``verity`` (and its settings) on an image of any type, as the loader takes them."""
    for verity in ("true", '"append"'):
        text = (f'schema = 1\n[image.a]\ntype = "erofs"\ntree = "t"\nverity = {verity}\n'
                'verity-salt = "00"\nverity-block-size = 512\n')
        errors = list(_validator().iter_errors(tomllib.loads(text)))  # type: ignore[attr-defined]
        assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("text,where", [
    ('schema = 1\n[image.a]\ntpye = "romfs"\n', "tpye"),
    ('schema = 1\n[image.a]\ntype = "romfs"\nfat = 32\n', "fat"),          # FAT's key
    ('schema = 1\n[disk]\ntable = "gpt"\nlba48 = true\n', "lba48"),         # MBR's key
    ('schema = 1\n[disks]\ntable = "mbr"\n', "disks"),
    ('schema = 1\n[disk]\ntable = "mbr"\n[[disk.partition]]\nsize = "1MiB"\n', "name"),
    ('schema = 1\n[image.a]\ntype = "cpio"\ncompress = true\n', "compress"),
    ('schema = 1\n[disk]\ntable = "gpt"\nguid = "not-a-guid"\n', "guid"),
    ('schema = 1\n[image.a]\ntype = "raw"\nfile = "x.toml"\nverity = "yes"\n', "verity"),
])
def test_schema_rejects_what_the_loader_rejects(text: str, where: str, tmp_path: Path) -> None:
    errors = list(_validator().iter_errors(tomllib.loads(text)))  # type: ignore[attr-defined]
    assert any(where in str(e.message) or where in list(e.path) for e in errors), \
        [e.message for e in errors]
    layout = tmp_path / "x.toml"
    layout.write_text(text)
    assert run_cli("check", str(layout), check=False).returncode == 1

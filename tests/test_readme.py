"""The README's generated tables (layout keys, environment variables) are the code's own."""

from __future__ import annotations

from dfsbuild.layout.reference import BEGIN, END, key_table
from tests.conftest import ROOT, run_cli


def test_the_readme_key_table_matches_the_settings() -> None:
    text = (ROOT / "README.md").read_text()
    assert BEGIN in text and END in text, "the README lost its generated key table markers"
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert table == key_table(), "regenerate it: python -m dfsbuild.layout.reference"


def test_every_setting_appears_in_the_table() -> None:
    from dfsbuild.images import IMAGE_TYPES
    from dfsbuild.layout.load import image_settings
    from dfsbuild.tables import TABLE_KINDS

    table = key_table()
    for t in IMAGE_TYPES.values():
        for s in image_settings(t):
            assert f"`image.NAME.{s.name}`" in table
    for k in TABLE_KINDS.values():
        for s in k.disk_settings:
            assert f"`disk.{s.name}`" in table
        for s in k.partition_settings:
            assert f"`disk.partition[N].{s.name}`" in table


def test_the_readme_environment_table_is_the_one_table() -> None:
    """The variables are described once (engine/environment.py): the README's table and
    --help come from it, and every DFSBUILD_* name settings.py reads is in it."""
    from dfsbuild.engine import environment, settings

    text = (ROOT / "README.md").read_text()
    start, end = text.index(environment.BEGIN), text.index(environment.END)
    assert text[start:end + len(environment.END)] == environment.table(), \
        "regenerate it: python -m dfsbuild.engine.environment"
    named = {getattr(settings, n) for n in dir(settings) if n.endswith("_ENV")}
    listed = {v.name.removesuffix("NAME") for v in environment.ENVIRONMENT}
    assert named <= listed, named - listed
    helped = run_cli("--help").stdout
    assert all(v.name in helped for v in environment.ENVIRONMENT)

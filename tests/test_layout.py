"""Layout loading: every mistake is a LayoutError naming file, key, value and rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pyfakefs.fake_filesystem import FakeFilesystem

from dfsbuild.errors import LayoutError
from dfsbuild.layout.load import load_layout, load_layouts

GOOD = """
schema = 1

[disk]
table = "none"
image = "root"

[image.root]
type = "romfs"
volume = "root"
tree = "tree"
exclude = ["*.swp"]
align = "4KiB"
files."etc/conf" = { file = "conf.txt", mode = "0640" }
files."boot/env.img" = { image = "env" }
devices."dev/console" = { type = "char", major = 5, minor = 1, mode = "0600" }
devices."run/fifo" = { type = "fifo" }

[image.env]
type = "raw"
file = "conf.txt"
"""


def write(fs: FakeFilesystem, text: str, name: str = "/p/layouts/l.toml") -> str:
    fs.create_file(name, contents=textwrap.dedent(text))
    return name


@pytest.fixture
def project(fs: FakeFilesystem) -> FakeFilesystem:
    fs.create_dir("/p/layouts/tree/etc")
    fs.create_file("/p/layouts/conf.txt", contents="x=1\n")
    return fs


def test_a_good_layout_loads_into_the_model(project: FakeFilesystem) -> None:
    layout = load_layout(write(project, GOOD))
    root = layout.images["root"]
    assert layout.name == "l"
    assert (root.type, root.options.volume, root.options.align, root.contents.exclude) == (
        "romfs", "root", 4096, ("*.swp",))
    assert root.contents.tree == "/p/layouts/tree"
    assert [(f.dest, f.file, f.image, f.mode) for f in root.contents.files] == [
        ("etc/conf", "/p/layouts/conf.txt", None, 0o640), ("boot/env.img", None, "env", None)]
    assert [(d.dest, d.kind, d.major, d.minor, d.mode) for d in root.contents.devices] == [
        ("dev/console", "char", 5, 1, 0o600), ("run/fifo", "fifo", 0, 0, 0o600)]
    assert root.nested() == ("env",)
    assert layout.disk is not None and layout.disk.options.image == "root"


def change(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


BAD = [
    # (old text, new text, expected key path, words the message must contain)
    ('volume = "root"', 'volume = "root"\ncolour = "red"', "image.root.colour", "unknown key"),
    ('type = "romfs"', 'type = "ext4"', "image.root.type", "'ext4'"),
    ('align = "4KiB"', 'align = "4KB"', "image.root.align", "KiB"),
    ('align = "4KiB"', 'align = "24"', "image.root.align", "power of two"),
    ('align = "4KiB"', 'align = 1.5', "image.root.align", "float"),
    ('volume = "root"', "volume = 7", "image.root.volume", "integer 7"),
    ('tree = "tree"', 'tree = "missing"', "image.root.tree", "not a directory"),
    ('file = "conf.txt", mode', 'file = "nope.txt", mode', 'image.root.files."etc/conf".file',
     "nope.txt"),
    ('mode = "0640"', 'mode = "rw-r"', 'image.root.files."etc/conf".mode', "'rw-r'"),
    ('{ image = "env" }', '{ image = "envv" }', 'image.root.files."boot/env.img".image',
     "no image named 'envv'"),
    ('{ image = "env" }', '{ image = "env", file = "conf.txt" }',
     'image.root.files."boot/env.img"', "exactly one"),
    ('files."etc/conf"', 'files."../etc/conf"', 'image.root.files."../etc/conf"', "'..'"),
    ('major = 5, minor = 1', 'major = 5', 'image.root.devices."dev/console"', "minor"),
    ('major = 5, minor = 1', 'major = 70000, minor = 1',
     'image.root.devices."dev/console".major', "70000"),
    ('{ type = "fifo" }', '{ type = "pipe" }', 'image.root.devices."run/fifo".type', "'pipe'"),
    ('table = "none"', 'table = "zfs"', "disk.table", "'zfs'"),
    ('image = "root"\n', 'image = "rooot"\n', "disk.image", "rooot"),
    ("schema = 1", "schema = 2", "schema", "schema 2"),
    ("schema = 1", "", "schema", "required"),
    ('exclude = ["*.swp"]', 'exclude = ["*.swp", ""]', "image.root.exclude[1]", "empty"),
    ('exclude = ["*.swp"]', 'exclude = [3]', "image.root.exclude[0]", "integer 3"),
]


@pytest.mark.parametrize(("old", "new", "key", "words"), BAD)
def test_mistakes_name_the_file_the_key_and_the_value(
    project: FakeFilesystem, old: str, new: str, key: str, words: str
) -> None:
    path = write(project, change(GOOD, old, new))
    with pytest.raises(LayoutError) as info:
        load_layout(path)
    err = info.value
    assert err.file == path
    assert err.where == key
    assert words in err.message
    assert str(err).startswith(f"{path}: {key}: ")


def test_an_unclosed_bracket_is_a_literal_pattern(project: FakeFilesystem) -> None:
    """As in fnmatch(3): "[a" matches the name "[a" and nothing else."""
    from dfsbuild.trees.patterns import matches

    layout = load_layout(write(project, change(GOOD, 'exclude = ["*.swp"]', 'exclude = ["[a"]')))
    patterns = layout.images["root"].contents.exclude
    assert patterns == ("[a",)
    assert matches(patterns, "[a", "[a") and not matches(patterns, "a", "a")


def test_cycles_between_nested_images_are_refused(project: FakeFilesystem) -> None:
    text = GOOD.replace('[image.env]\ntype = "raw"\nfile = "conf.txt"',
                        '[image.env]\ntype = "romfs"\nfiles."r" = { image = "root" }')
    with pytest.raises(LayoutError, match=r"root -> env -> root|env -> root -> env"):
        load_layout(write(project, text))


def test_an_image_containing_itself_is_refused(project: FakeFilesystem) -> None:
    text = GOOD.replace('{ image = "env" }', '{ image = "root" }')
    with pytest.raises(LayoutError, match=r"root -> root"):
        load_layout(write(project, text))


def test_toml_syntax_errors_name_the_file(project: FakeFilesystem) -> None:
    path = write(project, "schema = 1\n[image.x\n")
    with pytest.raises(LayoutError, match=r"l\.toml: not valid TOML.*line 2"):
        load_layout(path)


def test_missing_layout_file(project: FakeFilesystem) -> None:
    with pytest.raises(LayoutError, match="no such layout file"):
        load_layout("/p/layouts/absent.toml")


def test_duplicate_outputs_and_destinations(project: FakeFilesystem) -> None:
    text = GOOD.replace('file = "conf.txt"\n"""', 'file = "conf.txt"\noutput = "root.img"\n"""')
    text = text.replace('[image.env]\ntype = "raw"\nfile = "conf.txt"',
                        '[image.env]\ntype = "raw"\nfile = "conf.txt"\noutput = "root.img"')
    with pytest.raises(LayoutError, match=r"also the output of image\.root"):
        load_layout(write(project, text))


def test_layouts_with_the_same_name_cannot_be_built_together(project: FakeFilesystem) -> None:
    a = write(project, GOOD, "/p/layouts/l.toml")
    project.create_dir("/p/other/tree/etc")
    project.create_file("/p/other/conf.txt", contents="")
    b = write(project, GOOD, "/p/other/l.toml")
    with pytest.raises(LayoutError, match="also the name of"):
        load_layouts([a, b])


def test_images_and_layouts_are_named_safely(project: FakeFilesystem) -> None:
    with pytest.raises(LayoutError, match="not a valid image name"):
        load_layout(write(project, 'schema = 1\n[image."a b"]\ntype = "romfs"\n'))
    project.create_file("/p/layouts/bad name.toml", contents="schema = 1\n")
    with pytest.raises(LayoutError, match="layout name"):
        load_layout("/p/layouts/bad name.toml")


def test_sizes_parse_exactly() -> None:
    from dfsbuild.units import SizeError, parse_size

    assert parse_size("512") == 512
    assert parse_size(4096) == 4096
    assert parse_size("4KiB") == 4096
    assert parse_size("64MiB") == 64 << 20
    assert parse_size("2048s", sector_size=512) == 1 << 20
    for bad in ("1.5MiB", "4KB", "-1", "", "2048s", True, 1.0):
        with pytest.raises(SizeError):
            parse_size(bad)


def test_real_files_too(tmp_path: Path) -> None:
    """One load outside pyfakefs, so the fake cannot hide a real-filesystem difference."""
    (tmp_path / "tree" / "etc").mkdir(parents=True)
    (tmp_path / "conf.txt").write_text("x\n")
    path = tmp_path / "l.toml"
    path.write_text(GOOD)
    assert load_layout(str(path)).images["env"].options.file == str(tmp_path / "conf.txt")

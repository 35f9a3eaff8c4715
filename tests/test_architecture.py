"""The module boundaries CONVENTIONS.md draws, held by reading imports and calls."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dfsbuild"
# Format modules take a plan and a stream: no host paths, no TOML, no doit, no argparse.
HOST_MODULES = {"os", "pathlib", "glob", "shutil", "tempfile", "io", "tomllib", "tomli",
                "argparse", "subprocess", "sys"}
STDLIB_OK = set(sys.stdlib_module_names) - HOST_MODULES


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name)}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_format_modules_use_only_the_standard_library_and_small_helpers() -> None:
    for path in (PACKAGE / "formats").glob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if top == "dfsbuild":
                assert name in {"dfsbuild.errors", "dfsbuild.fstree", "dfsbuild.units"} or \
                    name.startswith("dfsbuild.formats"), f"{path.name} imports {name}"
            else:
                assert top in STDLIB_OK, f"{path.name} imports {name}"


def test_only_tasks_imports_doit() -> None:
    users = {p.name for p in modules() if any(n.split(".")[0] == "doit" for n in imports(p))}
    assert users == {"tasks.py"}


def test_only_tree_walks_host_directories() -> None:
    walkers = {p.name for p in modules()
               if calls(p) & {"os.scandir", "os.walk", "os.listdir", "Path.iterdir"}}
    assert walkers == {"tree.py"}


def test_only_cli_exits() -> None:
    for path in modules():
        text = path.read_text()
        if path.name in ("cli.py", "__main__.py", "tasks.py"):
            continue
        assert "sys.exit" not in text and "SystemExit" not in text, path.name

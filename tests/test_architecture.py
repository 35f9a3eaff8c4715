"""The boundaries ARCHITECTURE.md draws, held by reading imports, calls and literals."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from dfsbuild.images import IMAGE_TYPES
from dfsbuild.tables import TABLE_KINDS

PACKAGE = Path(__file__).resolve().parent.parent / "dfsbuild"
# Format code takes a plan and a Sink, or a ByteSource: no host access, no TOML, doit, argparse.
HOST_MODULES = {"os", "pathlib", "glob", "shutil", "tempfile", "io", "tomllib", "tomli",
                "argparse", "subprocess", "sys", "doit"}
STDLIB_OK = set(sys.stdlib_module_names) - HOST_MODULES
FORMAT_FILES = ("records.py", "write.py", "read.py", "ebr.py")
FORMAT_HELPERS = {"dfsbuild.errors", "dfsbuild.units", "dfsbuild.ids", "dfsbuild.fileio.sink",
                  "dfsbuild.fileio.scratch",
                  "dfsbuild.fileio.source", "dfsbuild.trees.fstree", "dfsbuild.images.base",
                  "dfsbuild.tables.base", "dfsbuild.tables.parttypes"}


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


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


def strings(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def modules(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def format_packages() -> list[Path]:
    return [p for p in (*(PACKAGE / "images").iterdir(), *(PACKAGE / "tables").iterdir())
            if p.is_dir() and (p / "__init__.py").exists()]


def test_the_folders_show_the_architecture() -> None:
    for name in ("vocab", "layout", "trees", "fileio", "images", "tables", "engine", "inspect",
                 "boot", "cli"):
        assert (PACKAGE / name / "__init__.py").exists(), name
    assert {p.name for p in format_packages()} >= {"romfs", "mbr", "gpt", "embr"}


def test_format_code_uses_only_the_standard_library_and_small_helpers() -> None:
    checked = 0
    for package in format_packages():
        own = "dfsbuild." + rel(package).replace("/", ".")
        for path in package.glob("*.py"):
            if path.name not in FORMAT_FILES:
                continue
            checked += 1
            for name in imports(path):
                top = name.split(".")[0]
                if top == "dfsbuild":
                    assert name in FORMAT_HELPERS or name.startswith(own) or \
                        name.startswith("dfsbuild.tables.mbr.records"), f"{rel(path)}: {name}"
                else:
                    assert top in STDLIB_OK, f"{rel(path)} imports {name}"
    assert checked >= 10


def test_format_packages_know_nothing_of_toml_doit_or_argparse() -> None:
    for package in format_packages():
        for path in package.rglob("*.py"):
            for name in imports(path):
                assert name.split(".")[0] not in {"doit", "argparse", "tomllib", "tomli"}, \
                    f"{rel(path)} imports {name}"
                assert not name.startswith(("dfsbuild.engine", "dfsbuild.cli",
                                            "dfsbuild.inspect", "dfsbuild.layout.load")), \
                    f"{rel(path)} imports {name}"


def test_image_packages_do_not_import_each_other() -> None:
    packages = [p for p in (PACKAGE / "images").iterdir() if (p / "__init__.py").exists()]
    for package in packages:
        others = {f"dfsbuild.images.{q.name}" for q in packages if q != package}
        for path in package.rglob("*.py"):
            for name in imports(path):
                assert not any(name == o or name.startswith(o + ".") for o in others), \
                    f"{rel(path)} imports {name}"


def test_the_vocabulary_is_a_floor_below_the_formats_and_the_loader() -> None:
    """images/ and tables/ speak vocab/ and never import the loader (layout/), which imports
    their registries; vocab/ imports no format, registry, loader or engine."""
    for under in ("images", "tables"):
        for path in modules(under):
            bad = {n for n in imports(path) if n == "dfsbuild.layout" or
                   n.startswith("dfsbuild.layout.")}
            assert not bad, f"{rel(path)} imports {bad}"
    upper = ("dfsbuild.layout", "dfsbuild.images", "dfsbuild.tables", "dfsbuild.engine",
             "dfsbuild.cli", "dfsbuild.plan", "dfsbuild.inspect")
    for path in modules("vocab"):
        bad = {n for n in imports(path) if any(n == u or n.startswith(u + ".") for u in upper)}
        assert not bad, f"{rel(path)} imports {bad}"


def test_no_two_modules_import_each_other_even_lazily() -> None:
    """No import circle, through any number of modules, counting imports inside functions:
    each module can be read knowing only what it imports."""
    def name_of(path: Path) -> str:
        dotted = "dfsbuild." + rel(path)[:-3].replace("/", ".")
        return dotted.removesuffix(".__init__")
    names = {name_of(p): p for p in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in names:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in names else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in names}
        graph[name] = deps - {name}
    # Depth-first search for a back edge (a circle), without recursion.
    state: dict[str, int] = {}               # 1: on the current path, 2: done
    for start in graph:
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state.setdefault(start, 1)
        if state[start] == 2:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            assert state.get(child) != 1, "import circle: " + " -> ".join(
                [*path[path.index(child):], child])
            if child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)


def test_only_engine_tasks_imports_doit() -> None:
    users = {rel(p) for p in modules() if any(n.split(".")[0] == "doit" for n in imports(p))}
    assert users == {"engine/tasks.py"}


def test_only_the_tree_walker_walks_host_directories() -> None:
    walkers = {rel(p) for p in modules()
               if calls(p) & {"os.scandir", "os.walk", "os.listdir", "Path.iterdir"}}
    # Besides host input trees, only dfsbuild's own directories are listed: the cache's
    # entries, a layout's build directory when it is cleaned, the files dfsbuild ships
    # (builtins); and /sys/block, where `trivialfs volume` looks for block devices.
    assert walkers == {"trees/walk.py", "engine/cache.py", "engine/jobs.py",
                       "cli/housekeeping.py", "layout/contents.py",
                       "images/trivialfs/tools.py"}


def test_only_cli_exits() -> None:
    # engine/tasks.py serves a dodo.py, where doit's loader runs: a layout error there ends
    # the doit process the way doit's own command line would.
    for path in modules():
        if rel(path).startswith("cli/") or rel(path) in ("__main__.py", "engine/tasks.py"):
            continue
        text = path.read_text()
        assert "sys.exit" not in text and "SystemExit" not in text, rel(path)


def test_shared_code_names_no_image_type_or_table_kind() -> None:
    """The engine, the layout loader, planning and inspection dispatch through registries."""
    names = set(IMAGE_TYPES) | set(TABLE_KINDS)
    shared = [*modules("layout"), *modules("engine"), *modules("inspect"), PACKAGE / "plan.py",
              PACKAGE / "cli" / "read.py"]
    for path in shared:
        found = strings(path) & names
        assert not found, f"{rel(path)} names {sorted(found)}"


def test_every_type_and_kind_is_one_registry_entry() -> None:
    for name, t in IMAGE_TYPES.items():
        assert t.name == name and t.revision >= 1 and t.help
        for s in t.settings:
            assert s.help, f"{name}.{s.name} has no help"
    for name, k in TABLE_KINDS.items():
        assert k.name == name and k.revision >= 1 and k.help
        for s in (*k.disk_settings, *k.partition_settings):
            assert s.help, f"{name}.{s.name} has no help"

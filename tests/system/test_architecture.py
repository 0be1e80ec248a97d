"""The rooms of the code and the direction of their imports (docs/architecture.md).

Read from the source, every import of every module (function-level ones included):

    core  <-  stream  <-  daemon          core  <-  training  <-  export
                                          export -> daemon.engines (the device's engine code)

and no import circle between modules. The checker itself is tried on a small tree it must refuse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("core", "stream", "daemon", "training", "export")
# room -> the stylecast packages its modules may import (a package covers what is inside it)
ALLOWED = {
    "core": ("stylecast.core",),
    "stream": ("stylecast.core", "stylecast.stream"),
    "daemon": ("stylecast.core", "stylecast.stream", "stylecast.daemon"),
    "training": ("stylecast.core", "stylecast.training"),
    "export": ("stylecast.core", "stylecast.training", "stylecast.export",
               "stylecast.daemon.engines"),
}
# Third-party packages a room must never import: the device install has no torch.
FORBIDDEN_LIBRARIES = {
    "core": ("torch", "numpy", "zmq", "onnxruntime"),
    "stream": ("torch", "onnxruntime"),
    "daemon": ("torch",),
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["stylecast", *parts])


def read_modules(root: Path, rooms=ROOMS) -> dict[str, Path]:
    return {module_name(root, path): path
            for room in rooms for path in sorted((root / room).rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `path` imports: `from a.b import c` is a.b.c when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return found


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def direction_violations(root: Path) -> list[str]:
    modules = read_modules(root)
    wrong = []
    for name, path in modules.items():
        room = name.split(".")[1]
        for target in sorted(imports_of(path, modules)):
            if target.startswith("stylecast.") and not within(target, ALLOWED[room]):
                wrong.append(f"{path.relative_to(root)} imports {target}")
            library = target.split(".")[0]
            if library in FORBIDDEN_LIBRARIES.get(room, ()):
                wrong.append(f"{path.relative_to(root)} imports {library}")
    return wrong


def import_circles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    modules = read_modules(root)
    graph = {name: sorted(t for t in imports_of(path, modules) if t in modules and t != name)
             for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return circles


def test_every_import_points_down_the_rooms():
    assert direction_violations(ROOT) == []


def test_no_import_circles():
    assert import_circles(ROOT) == []


def test_every_room_is_a_package_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    for room in ROOMS:
        assert f'"stylecast.{room}" = "{room}"' in text


@pytest.fixture
def bad_tree(tmp_path):
    """core imports the daemon, the daemon imports torch, and two stream modules import each
    other: everything the checks must catch."""
    for room in ROOMS:
        (tmp_path / room).mkdir()
        (tmp_path / room / "__init__.py").write_text("")
    (tmp_path / "daemon" / "engine.py").write_text("import torch\n")
    (tmp_path / "core" / "errors.py").write_text("from stylecast.daemon import engine\n")
    (tmp_path / "stream" / "a.py").write_text("from stylecast.stream import b\n")
    (tmp_path / "stream" / "b.py").write_text("def f():\n    from stylecast.stream.a import x\n")
    return tmp_path


def test_the_checks_catch_a_wrong_direction_a_forbidden_library_and_a_circle(bad_tree):
    assert direction_violations(bad_tree) == ["core/errors.py imports stylecast.daemon.engine",
                                              "daemon/engine.py imports torch"]
    assert import_circles(bad_tree) == [["stylecast.stream.a", "stylecast.stream.b"]]

"""The floors of docs/architecture.md, checked on the source (AST scan of every module under src/).

1. ``core/`` imports no GUI (qtpy, PyQt, PySide, napari, magicgui, superqt, vispy) and no ML framework
   (tensorflow, keras, torch, jax), at module level or inside functions.
2. ``models/`` and ``pipeline/`` import no GUI.
3. Only ``models/_keras.py`` imports keras or tensorflow; everyone else goes through its ``keras()``.
4. Imports only go down: core < models < pipeline < widgets, cli and the npe2 entry points (``_reader``...).
5. ``pipeline/`` imports ``models`` inside functions only (TensorFlow loads when a DL step runs).
6. The package ``__init__`` imports nothing of the package; no import circle at module level.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "napari_bcdi_dl"

GUI = {"qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt", "vispy", "npe2"}
ML = {"tensorflow", "keras", "torch", "jax", "jaxlib", "tf_keras"}
KERAS_DOOR = f"{PKG}.models._keras"


@dataclass(frozen=True)
class Imp:
    module: str  # importing module
    target: str  # absolute name imported (for ``from a import b``: ``a.b`` when b is a module, else ``a``)
    line: int
    top_level: bool  # executed when the module is imported (not inside a function)

    def __str__(self) -> str:
        where = "module level" if self.top_level else "inside a function"
        return f"{self.module}:{self.line} imports {self.target} ({where})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PKG).rglob("*.py"))}


MODULES = _modules()
#: compiled extension modules (a C source in the tree: no imports of their own)
COMPILED = {_module_name(p) for p in (SRC / PKG).rglob("*.c")}


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path) -> list[Imp]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[Imp] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend(Imp(module, a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, is_pkg, child.level, child.module)
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    out.append(Imp(module, sub if sub in MODULES or sub in COMPILED else base, child.lineno, top))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                visit_list(child.body, False)  # typing-only imports never run
                visit_list(child.orelse, top)
                continue
            visit(child, inner)

    def visit_list(nodes: list[ast.stmt], top: bool) -> None:
        holder = ast.Module(body=nodes, type_ignores=[])
        visit(holder, top)

    visit(tree, True)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


ALL_IMPORTS: list[Imp] = []


@pytest.fixture(autouse=True, scope="module")
def _scan() -> None:
    """Parse every module once (in a fixture: a syntax error fails the tests, not the collection)."""
    if not ALL_IMPORTS:
        ALL_IMPORTS.extend(imp for m, p in MODULES.items() for imp in _imports(m, p))


def _root(name: str) -> str:
    return name.split(".")[0]


def _floor(module: str) -> int:
    """1 core, 2 models, 3 pipeline, 4 widgets / cli / npe2 entry points, 0 the package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    return {"core": 1, "models": 2, "pipeline": 3}.get(parts[1], 4)


def _in(module: str, sub: str) -> bool:
    return module == f"{PKG}.{sub}" or module.startswith(f"{PKG}.{sub}.")


def test_scan_found_the_package():
    assert f"{PKG}.core.errors" in MODULES and KERAS_DOOR in MODULES
    assert any(i.module == KERAS_DOOR and _root(i.target) == "tensorflow" for i in ALL_IMPORTS), \
        "the scan must see the guarded tensorflow import of models/_keras.py"


def test_core_imports_no_gui_and_no_ml_framework():
    bad = [str(i) for i in ALL_IMPORTS if _in(i.module, "core") and _root(i.target) in GUI | ML]
    assert not bad, "core/ is numpy/scipy only:\n" + "\n".join(bad)


def test_models_and_pipeline_import_no_gui():
    bad = [str(i) for i in ALL_IMPORTS
           if (_in(i.module, "models") or _in(i.module, "pipeline")) and _root(i.target) in GUI]
    assert not bad, "models/ and pipeline/ import no Qt/napari/magicgui:\n" + "\n".join(bad)


def test_pipeline_imports_models_inside_functions_only():
    assert any(_in(m, "pipeline") for m in MODULES), "the scan must see the pipeline package"
    bad = [str(i) for i in ALL_IMPORTS
           if _in(i.module, "pipeline") and i.top_level and _in(i.target, "models")]
    assert not bad, "pipeline/ imports models lazily (inside functions):\n" + "\n".join(bad)


def test_only_the_keras_door_imports_keras_or_tensorflow():
    ml = {"tensorflow", "keras", "tf_keras"}
    bad = [str(i) for i in ALL_IMPORTS if i.module != KERAS_DOOR and _root(i.target) in ml]
    assert not bad, ("import keras only through napari_bcdi_dl.models._keras.keras() inside functions:\n"
                     + "\n".join(bad))


def _top_level_door_calls(module: str, path: Path) -> list[str]:
    """Calls of ``keras()`` / ``ops()`` of the door that run when the module is imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"keras", "ops"}
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for d in getattr(child, "decorator_list", []) + child.args.defaults + child.args.kw_defaults:
                    if d is not None:
                        visit(ast.Expression(body=d))
                continue
            if isinstance(child, ast.Call):
                f = child.func
                if (isinstance(f, ast.Name) and f.id in names) or (
                        isinstance(f, ast.Attribute) and f.attr in names and isinstance(f.value, ast.Name)
                        and f.value.id == "_keras"):
                    found.append(f"{module}:{child.lineno} calls {ast.unparse(f)}() at import time")
            visit(child)

    visit(tree)
    return found


def test_keras_is_not_loaded_at_import_time():
    bad = [c for m, p in MODULES.items() if m != KERAS_DOOR for c in _top_level_door_calls(m, p)]
    assert not bad, "call keras() inside functions only (importing a module must not load TensorFlow):\n" + \
        "\n".join(bad)


def test_imports_only_go_down():
    bad = []
    for i in ALL_IMPORTS:
        if _root(i.target) != PKG or i.target == PKG:
            continue
        src, dst = _floor(i.module), _floor(i.target)
        if src and dst > src:
            bad.append(f"{i}: floor {src} -> floor {dst}")
    assert not bad, "imports only go down (core < models < pipeline < widgets/cli):\n" + "\n".join(bad)


def test_package_init_stays_light():
    bad = [str(i) for i in ALL_IMPORTS if i.module == PKG and i.top_level
           and (_root(i.target) == PKG or _root(i.target) in GUI | ML | {"numpy", "scipy", "h5py"})]
    assert not bad, "napari_bcdi_dl/__init__.py imports nothing heavy:\n" + "\n".join(bad)


def _module_level_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in (*MODULES, *COMPILED)}
    for i in ALL_IMPORTS:
        if not i.top_level or _root(i.target) != PKG:
            continue
        target = i.target
        while target not in MODULES and target not in COMPILED and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != i.module:
            graph[i.module].add(target)
    return graph


def test_no_import_circles_at_module_level():
    graph = _module_level_graph()
    # strongly connected components of the module-level import graph (Tarjan); a package __init__ that
    # re-exports its submodules is fine as long as no submodule imports that package back at module level
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    assert not cycles, "import circles at module level:\n" + "\n".join(" <-> ".join(c) for c in cycles)

"""Light engine modules load without torch or transformers; the package's own names load on first use."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nait_core

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
# Reading records, stores and features, scoring a captured store and exporting a selection need no model.
LIGHT = (
    "data",
    "sources",
    "datasets",
    "store",
    "selection",
    "features",
    "scoring",
    "sketch",
    "atomic",
    "progress",
    "explore",
    "activation_map",
    "explain",
    "neuron_ids",
)
HEAVY = ("torch", "transformers")


def _heavy_after_import(module: str) -> list[str]:
    """The heavy packages loaded by `import nait_core.<module>` in a fresh interpreter."""
    code = f"import sys, nait_core.{module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_do_not_import_torch(module):
    assert _heavy_after_import(module) == []


def test_package_names_load_on_first_use():
    for name in nait_core.__all__:
        assert getattr(nait_core, name) is not None
    from nait_core import Cut, load_model, score_store  # noqa: F401 (the names users import)
    from nait_core.selection import Cut as selection_cut

    assert Cut is selection_cut and set(nait_core.__all__) <= set(dir(nait_core))
    with pytest.raises(AttributeError):
        nait_core.no_such_name  # noqa: B018


@pytest.mark.parametrize("module", ["nait_core", "nait_core.cli"])
def test_python_dash_m_runs_the_cli(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nait")


PACKAGE = ROOT / "nait_core"
MAX_LINES = 400  # an engine module past this does more than one job: split it (docs/design.md)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its body (function-local imports included),
    from the AST of every module under `root`. Importing a package's own parent is not an edge (Python
    runs it first anyway), nor is an import only for type checkers (`if TYPE_CHECKING:`)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        edges = set()
        for target in targets:
            while target and target not in modules:  # `from .store import Store` -> nait_core.store
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle (a path back to its start), one per strongly connected group of modules."""
    found, done = [], set()
    for start in sorted(graph):
        if start in done:
            continue
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                done.add(node)
            elif child in path:
                found.append(path[path.index(child) :] + [child])
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return found


def test_the_cycle_finder_finds_a_hidden_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import g  # hidden in a function\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.c"] == set()
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_no_import_cycles_among_engine_modules():
    assert cycles(import_graph()) == []


def test_no_engine_module_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these by job (at most {MAX_LINES} lines each): {long}"

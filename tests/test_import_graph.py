"""The package's shape, read from its source with ast (nothing is imported or run).

- Dependencies point one way along the pipeline (``LAYERS``): a module imports only from
  its own package or from packages to its left. Every import counts: module level,
  function level and ``if TYPE_CHECKING:`` alike.
- No import circle among lme2sm's modules, inside a package either.
- No module over 500 lines, no function over 80.
- patsy is called from one module of the model frame (``PATSY_MODULES``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lme2sm"

LAYERS = (
    ("lme2sm.errors", "lme2sm.arguments"),
    ("lme2sm.formula",),
    ("lme2sm.datasets",),
    ("lme2sm.frame",),
    ("lme2sm.engine",),
    ("lme2sm.glmm",),
    ("lme2sm.large",),
    ("lme2sm.results",),
    ("lme2sm.inference",),
    ("lme2sm.faces",),
    ("lme2sm.models",),
    ("lme2sm.cli", "lme2sm.__main__", "lme2sm"),
)
"""The pipeline's stages, left to right: formula -> frame -> engine -> results -> faces."""

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

PATSY_MODULES = {"lme2sm.frame.design"}
"""The modules that import patsy: the model frame's design builder, nothing else."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def imported_modules(name: str, tree: ast.Module) -> set[str]:
    """Every lme2sm module ``name`` imports, wherever the import statement stands."""
    is_package = MODULES[name].name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            # ``from pkg import name``: the submodule ``pkg.name`` if there is one, else
            # ``pkg`` itself (a name defined in it)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: imported_modules(name, tree) for name, tree in TREES.items()}


def layer_of(name: str) -> int:
    for i, stage in enumerate(LAYERS):
        for prefix in stage:
            if name == prefix or (prefix != "lme2sm" and name.startswith(prefix + ".")):
                return i
    raise AssertionError(f"{name} is in no layer of LAYERS: add its package there")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (each one is an import circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer_and_a_docstring():
    for name, tree in TREES.items():
        layer_of(name)
        assert ast.get_docstring(tree), f"{name} has no module docstring saying its one job"


def test_dependencies_point_one_way_along_the_pipeline():
    backwards = sorted(
        f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps if layer_of(b) > layer_of(a)
    )
    assert backwards == []


def test_no_import_circle():
    assert strongly_connected(GRAPH) == []


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_module_over_500_lines():
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_over_80_lines():
    long = sorted(
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    )
    assert long == []


def running_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run (those under ``if TYPE_CHECKING:`` only name types)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in skipped
    ]


def test_patsy_is_called_from_one_module():
    users = set()
    for name, tree in TREES.items():
        for node in running_imports(tree):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            if any((m or "").split(".")[0] == "patsy" for m in modules):
                users.add(name)
    assert users <= PATSY_MODULES


def test_the_pls_solver_is_one():
    assert "lme2sm.glmm.pls" not in MODULES

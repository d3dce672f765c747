"""The package layout: no import circles, Streamlit only in ``musicvae.app``, the engine without Streamlit.

The import graph is read from the source with ``ast`` (every ``import``, including the ones inside
functions: a lazy import hides a circle from Python, not from this test). ``python tests/test_layout.py``
prints the graph between subpackages and any circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "musicvae"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path, name: str) -> set[str]:
    """Every module named by an import statement of the file (absolute, relative resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the musicvae modules it imports (a package stands for its ``__init__``)."""
    known = modules()
    return {name: {m for m in imports_of(path, name) if m in known and m != name} for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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


def test_no_import_circles():
    graph = import_graph()
    assert len(graph) > 20  # the walk found the package
    assert cycles(graph) == []


def top_level_names(path: Path) -> set[str]:
    """Names a module defines or imports at its top level (inside top-level ``if``/``try`` too)."""
    names: set[str] = set()
    body = list(ast.parse(path.read_text(), str(path)).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If | ast.Try):
            body += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                     *(n for h in getattr(node, "handlers", []) for n in h.body)]
    return names


def _import_error_guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(h.type is not None and "ImportError" in ast.unparse(h.type)
                                             for h in node.handlers):
            return True
    return False


def test_every_musicvae_import_names_something_that_exists():
    """A moved module leaves no stale path behind, not even in an import inside a function."""
    known = modules()
    sources = [*known.values(), *ROOT.glob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "scripts").glob("*.py")]
    defined = {name: top_level_names(path) for name, path in known.items()}
    stale = set()
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if _import_error_guarded(node, parents):  # a fallback for another layout, by design
                continue
            if isinstance(node, ast.Import):
                stale.update(f"{path.name}: {a.name}" for a in node.names
                             if a.name.startswith("musicvae") and a.name not in known)
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("musicvae"):
                if node.module not in known:
                    stale.add(f"{path.name}: {node.module}")
                    continue
                stale.update(f"{path.name}: {node.module}.{a.name}" for a in node.names
                             if a.name not in defined[node.module] and f"{node.module}.{a.name}" not in known)
    assert sorted(stale) == []


def test_streamlit_is_imported_only_by_the_app():
    outside = [name for name, path in modules().items()
               if not (name == "musicvae.app" or name.startswith("musicvae.app."))
               and any(m == "streamlit" or m.startswith("streamlit.") for m in imports_of(path, name))]
    assert outside == []


def test_no_module_over_the_line_limit():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


BLOCK_STREAMLIT = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "streamlit" or name.startswith("streamlit."):
            raise ImportError("streamlit is blocked")
sys.meta_path.insert(0, Block())
import musicvae
assert "torch" not in sys.modules, "importing musicvae imports torch"
import musicvae.cli
assert "torch" not in sys.modules, "importing the CLI imports torch (musicvae --help must stay fast)"
import musicvae.api
engine = [m.name for m in pkgutil.walk_packages(musicvae.__path__, "musicvae.")
          if not (m.name == "musicvae.app" or m.name.startswith("musicvae.app.") or m.name.endswith(".__main__"))]
for name in engine:
    importlib.import_module(name)
print(len(engine))
"""


def test_the_engine_imports_without_streamlit():
    done = subprocess.run([sys.executable, "-c", BLOCK_STREAMLIT], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 20


if __name__ == "__main__":
    graph = import_graph()
    top = {}
    for name, targets in graph.items():
        group = ".".join(name.split(".")[:2])
        for target in targets:
            other = ".".join(target.split(".")[:2])
            if other != group:
                top.setdefault(group, set()).add(other)
    for group in sorted(top):
        print(f"{group} -> {', '.join(sorted(top[group]))}")
    print("module circles:", cycles(graph) or "none")
    print("subpackage circles:", cycles(top) or "none")

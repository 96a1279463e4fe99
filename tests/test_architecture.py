"""The layout the architecture promises (docs/architecture.md): rooms by phase, at most 12 modules
at the top, none over 400 lines, no import circle between modules (imports inside functions count;
``if TYPE_CHECKING:`` imports do not), room ``__init__`` files that import nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).parents[1] / "gradcheck_cli"
ROOMS = ("spec", "layers", "engine", "plan", "verdict", "functions", "sweep", "report", "safety",
         "commands")  # fmt: skip


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere but under ``if TYPE_CHECKING:``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in known)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                for a in node.names:
                    if f"{base}.{a.name}" in known:
                        found.add(f"{base}.{a.name}")
                    elif base in known:
                        found.add(base)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(path.read_text("utf-8")).body)
    found.discard(name)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return [*stack[stack.index(w) :], w]
            if w not in state and (found := dfs(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := dfs(v)):
            return found
    return None


def test_no_import_circle_between_modules() -> None:
    known = _modules()
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    """The wrong twin: a graph with a circle is reported."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_at_most_twelve_modules_at_the_top() -> None:
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 12, top


@pytest.mark.parametrize("room", ROOMS)
def test_rooms_exist_and_their_init_imports_nothing_heavy(room: str) -> None:
    init = PKG / room / "__init__.py"
    tree = ast.parse(init.read_text("utf-8"))
    assert ast.get_docstring(tree), f"{room}/__init__.py: say what lives here"
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    heavy = [ast.unparse(n) for n in top_level if "__future__" not in ast.unparse(n)
             and "typing" not in ast.unparse(n)]  # fmt: skip
    assert not heavy, f"{room}/__init__.py imports {heavy}"


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text("utf-8").splitlines())) > 400}  # fmt: skip
    assert not long, long

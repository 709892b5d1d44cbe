"""The package's shape, read from its source: no import cycle among yolo_gfl modules, and no module in yolo_gfl/ or
benchmarks/ over MAX_LINES lines unless its docstring says why it is one idea."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "yolo_gfl"
MAX_LINES = 450
ONE_IDEA = "One idea:"  # a module longer than MAX_LINES says, in its docstring after this marker, why it is one idea
# Modules over MAX_LINES today without that marker, each waiting for its split (issue 36, item 5). The test fails when
# an entry is no longer needed, so the list can only shrink.
OVERSIZED: set[str] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom in ``tree`` (top level, in functions and classes), except under
    ``if TYPE_CHECKING:``, which never runs."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The yolo_gfl modules that module ``name`` (its file ``path``) imports. ``from pkg import x`` counts as
    importing ``pkg.x`` when that is a module, else ``pkg``; a relative import resolves against the module's
    package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        for target in targets:
            while target and target not in modules:  # `import yolo_gfl.nn.head` names a module; trim to one that is
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_reader_sees_relative_function_level_imports():
    modules = _modules()
    assert "yolo_gfl.export" in imports_of("yolo_gfl.model", modules["yolo_gfl.model"], modules)  # inside export()
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_yolo_gfl_modules():
    """Function-level imports count: they are the ones that hide a cycle until the function runs. A package
    ``__init__`` that re-exports its submodules is an edge parent -> child; ``from . import sibling`` reads as the
    sibling module, so re-exports alone make no cycle, but a child importing a name from its parent does."""
    modules = _modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_over_the_size_limit_unless_one_idea():
    over = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]):
        lines = len(path.read_text().splitlines())
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if ONE_IDEA not in doc:
            over[path.relative_to(ROOT).as_posix()] = lines
    unexpected = {p: n for p, n in over.items() if p not in OVERSIZED}
    assert not unexpected, (f"modules over {MAX_LINES} lines: {unexpected}; split them by job, or say in the "
                            f"docstring, after '{ONE_IDEA}', why one is a single idea")
    assert set(over) == OVERSIZED, f"no longer over the limit, remove from OVERSIZED: {sorted(OVERSIZED - set(over))}"


FIGURE = re.compile(r"\d\s*±\s*\d|\b20\d\d-\d\d-\d\d\b|\b[Mm]easured (on|here|\d)")


def test_no_measured_figure_or_benchmark_history_in_the_package_or_its_configs():
    """Code, docstrings, option help and config comments say what a thing is and cite its source; measured figures,
    their dates and the history of a search live in benchmarks/results and docs/ (issue 36)."""
    hits = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "cfg").rglob("*.yaml")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FIGURE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "measured figures in code or configs (move them to a record or docs/):\n" + "\n".join(hits)

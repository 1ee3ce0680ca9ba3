"""The package's floors: no import cycles, and no module imports from a floor above its own.

    errors, validation, threads, cache     (floor 0: shared by everything)
    zoo, data                              (floor 1: models, their files, task data)
    methods                                (floor 2: the MI methods, by paper)
    training                               (floor 3: recipes that train zoo models, measuring with methods)
    viz, checking, grading, course, cli    (floor 4: what students and instructors touch)

Every import counts, at module level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mi_course"
BLOCKS = ("block1_circuits", "block2_knowledge", "block3_features")  # on the methods path, not packages
FLOORS = {
    "errors": 0, "validation": 0, "threads": 0, "cache": 0, "__init__": 0,
    "zoo": 1, "data": 1,
    "methods": 2,
    "training": 3,
    "viz": 4, "checking": 4, "grading": 4, "course": 4, "cli": 4,
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = [p for p in path.relative_to(PACKAGE.parent).with_suffix("").parts if p not in BLOCKS]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from mi_course.x import y`` counts y when y is a module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("mi_course")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mi_course"):
                deps.add(node.module)
                deps |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def floor(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in FLOORS, f"{module}: add its subpackage to FLOORS in {__file__}"
    return FLOORS[key]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "mi_course.methods.grokking" in graph and "mi_course.zoo.modadd" in graph
    assert "mi_course.zoo.modadd" in graph["mi_course.methods.grokking"]


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_no_upward_imports():
    graph = import_graph()
    upward = [f"{m} (floor {floor(m)}) imports {d} (floor {floor(d)})"
              for m, deps in sorted(graph.items()) for d in sorted(deps) if floor(d) > floor(m)]
    assert upward == [], "\n".join(upward)


def test_the_checker_finds_a_cycle_and_an_upward_import():
    graph = {"mi_course.zoo.a": {"mi_course.methods.b"}, "mi_course.methods.b": {"mi_course.zoo.a"}}
    assert _cycles(graph) == [["mi_course.methods.b", "mi_course.zoo.a"]]
    assert floor("mi_course.methods.b") > floor("mi_course.zoo.a")

"""A checker's general hint is what a student sees on a wrong answer that matches no known mistake, often on the
first try: it must teach, not hand over the solution (the exercise standard: "never the answer itself").

A heuristic guard, not a proof: a hint may name a function to look up (``torch.topk``), a shape or a hook, but
not read as code: no assignments, no calls with arguments, no matrix products or slicing."""

import importlib
import pkgutil
import re

import mi_course.checking as checking
from mi_course.checking.core import Exercise

CODE = [
    (r"(?<![<>=!])=(?!=)\s*\S", "an assignment"),
    (r"\b(?:torch|F|np)\.[\w.]+\([^)]", "a call with its arguments"),
    (r"\w\)?\s@\s*\w", "a matrix product"),
    (r"\[[^\]]*:[^\]]*\]", "slicing"),
    (r"\breturn\s+\S", "a return statement"),
    (r"\.(?:sum|mean|max|min|argmax|argmin|norm|reshape|float)\([^)]*\)", "a tensor method call"),
]


def _exercises():
    seen = {}
    for m in pkgutil.iter_modules(checking.__path__):
        if m.name.startswith("week"):
            mod = importlib.import_module(f"mi_course.checking.{m.name}")
            for v in vars(mod).values():
                if isinstance(v, Exercise):
                    seen[v.id] = v
    return seen


def test_general_hints_do_not_read_as_code():
    exercises = _exercises()
    assert len(exercises) >= 140
    bad = []
    for ex in exercises.values():
        found = [what for pattern, what in CODE if re.search(pattern, ex.hint or "")]
        if len(found) >= 2:
            bad.append(f"{ex.id}: {', '.join(found)}: {ex.hint[:120]!r}")
    assert not bad, "general hints that read as the solution's code:\n" + "\n".join(bad)


def test_the_guard_catches_code():
    code = "u = torch.linalg.solve(C, k_star); return torch.outer(u, L)"
    assert sum(bool(re.search(p, code)) for p, _ in CODE) >= 2
    words = ("solve a linear system with the key covariance rather than inverting it (torch.linalg.solve); check "
             "that the update maps k* to the value you want")
    assert sum(bool(re.search(p, words)) for p, _ in CODE) < 2

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
    (r"(?<![<>=!])\s=\s(?!=)", "an assignment"),
    (r"\b(?:torch|F|np)\.[\w.]+\([^)]", "a call with its arguments"),
    (r"\w\)?\s@\s*\w", "a matrix product"),
    (r"\[[^\]]*:[^\]]*\]", "slicing"),
    (r"\breturn\s+[\w.]+[\[(]", "a return statement"),
    (r"\.(?:sum|mean|max|min|argmax|argmin|norm|reshape|float)\([^)]+\)", "a tensor method call"),
]


def _code_like(text: str) -> list[str]:
    """What in ``text`` reads as code (LaTeX math such as ``$w_k = 2\\pi k / p$`` is left out)."""
    text = re.sub(r"\$[^$]*\$", "", text)
    return [what for pattern, what in CODE if re.search(pattern, text)]


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
        found = _code_like(ex.hint or "")
        if len(found) >= 2:
            bad.append(f"{ex.id}: {', '.join(found)}: {ex.hint[:120]!r}")
    assert not bad, "general hints that read as the solution's code:\n" + "\n".join(bad)


def test_the_guard_catches_code():
    code = "u = torch.linalg.solve(C, k_star); return torch.outer(u, L)"
    assert len(_code_like(code)) >= 2
    words = ("solve a linear system with the key covariance rather than inverting it (torch.linalg.solve); check "
             "that the update maps k* to the value you want")
    assert len(_code_like(words)) < 2
    assert len(_code_like("return the edited tensor; self-check: `factor=1` gives the clean logits")) == 0


def _notebook_hints():
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for path in sorted((repo / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            m = re.search(r"^### Exercise (\d+)", src, re.M) if cell["cell_type"] == "markdown" else None
            if m:
                for summary, body in re.findall(r"<details><summary>([^<]*)</summary>(.*?)</details>", src, re.S):
                    yield f"{path.parent.name} exercise {m.group(1)} ({summary})", body


def test_notebook_hints_do_not_read_as_code():
    """The notebooks' layered hints: a nudge, then steps in words; the code is the student's to write."""
    hints = list(_notebook_hints())
    assert len(hints) >= 250
    bad = [f"{where}: {body.strip()[:120]!r}" for where, body in hints
           if len(_code_like(body)) >= 2]
    assert not bad, "notebook hints that read as the solution's code:\n" + "\n".join(bad)

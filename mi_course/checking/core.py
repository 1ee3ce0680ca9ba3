"""The exercise checker: runs a student's function and the reference on the same cases.

Two modes (the "Run All reaches the end" contract):

- the visible check a student runs, ``check(ex, fn)`` (``seed=None``), never raises for a
  wrong or unfinished answer: it shows one short status block (✔ passed / ✗ not implemented
  yet / ✗ what is wrong and a hint) and returns ``True`` or ``False``, so Run All on an
  untouched notebook reaches the end. Later cells that need the exercise's result call
  :func:`yours_or_reference`, which hands back the course's reference until the student's
  function has passed.
- the hidden test, ``check(ex, fn, seed=N)``, records the outputs for the trusted grader and
  raises ``AssertionError`` on failure; the error shows the verdict only, never the checker's
  own stack frames. Under the trusted grader (``MI_COURSE_RECORD_DIR`` set) a failing visible
  check raises too, as it always did, so grading is unchanged by the contract above.

A failure message says which case failed, what was expected (type, shape, dtype), by how much
the values differ and where, and, when the answer matches a known mistake, a hint for it.

The comparison uses functions captured when this module is imported, so rebinding
``torch.allclose`` or ``torch.testing`` in the notebook cannot change a verdict; rebinding
them is also reported. (Grading does not rely on this alone: see ``mi_course.grading``.)
"""

from __future__ import annotations

import html
import os
import random
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.testing

from mi_course.checking.pilot import kernel_started as _pilot_kernel_started
from mi_course.checking.pilot import record as _pilot_record

# --- originals, captured at import --------------------------------------------------------
_ORIGINALS: dict[str, Any] = {
    "torch.allclose": torch.allclose,
    "torch.isclose": torch.isclose,
    "torch.equal": torch.equal,
    "torch.testing.assert_close": torch.testing.assert_close,
    "torch.Tensor.__sub__": torch.Tensor.__sub__,
    "torch.Tensor.abs": torch.Tensor.abs,
    "torch.Tensor.max": torch.Tensor.max,
}
_abs = torch.abs
_sub = torch.sub
_isfinite = torch.isfinite
_isnan = torch.isnan
_as_tensor = torch.as_tensor
_nonzero = torch.nonzero
_where = torch.where
_float64 = torch.float64


def _lookup(dotted: str) -> Any:
    obj: Any = __import__(dotted.split(".")[0])
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def tampered_names() -> list[str]:
    """Names of comparison functions that were rebound since the checker was imported."""
    return [n for n, f in _ORIGINALS.items() if _lookup(n) is not f]


# --- exercise description -----------------------------------------------------------------
@dataclass
class Case:
    """One call of the function under test: keyword arguments and a readable name."""

    name: str
    kwargs: dict


@dataclass
class Mistake:
    """A plausible wrong answer and the hint to give when a student's output matches it."""

    name: str
    fn: Callable
    hint: str


@dataclass
class Exercise:
    id: str
    title: str
    reference: Callable
    cases: Callable[[int], list[Case]]  # seed -> cases
    mistakes: list[Mistake] = field(default_factory=list)
    hint: str = ""  # general hint when no known mistake matches
    atol: float = 1e-5
    rtol: float = 1e-4
    normalize: Callable[[Any], Any] | None = None  # e.g. FactoredMatrix -> dense
    # The visible check adds a fresh random seed's cases to seed 0's, so an answer right only on
    # the default input fails. An exercise whose cases are expensive (a full causal trace) may
    # skip that: its seed-0 cases must then vary every argument, and hidden tests use other seeds.
    visible_random_seed: bool = True


class _Skip(Exception):
    pass


def _clone(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().clone()
    return v


def _describe_inputs(kwargs: dict) -> str:
    parts = []
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            parts.append(f"{k}: {list(v.shape)} {str(v.dtype).replace('torch.', '')}")
        elif isinstance(v, (int, float, str, bool)):
            parts.append(f"{k}={v!r}")
        else:
            parts.append(f"{k}: {type(v).__name__}")
    return ", ".join(parts)


def _to_comparable(x: Any, normalize: Callable | None) -> Any:
    if normalize is not None:
        x = normalize(x)
    if type(x).__name__ == "FactoredMatrix":
        x = x.AB
    return x


def compare(got: Any, expected: Any, atol: float, rtol: float) -> str | None:
    """``None`` when ``got`` matches ``expected``; otherwise a message that says how it differs."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a {type(expected).__name__} of {len(expected)} items, got {_kind(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare(g, e, atol, rtol)
            if msg:
                return f"item {i}: {msg}"
        return None
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"expected a number, got {_kind(got)}"
        diff = abs(float(got) - float(expected))
        if diff != diff or diff > atol + rtol * abs(float(expected)):
            return f"expected {expected:.6g}, got {float(got):.6g} (off by {diff:.3g})"
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor of shape {list(expected.shape)}, got {_kind(got)}"
        if tuple(got.shape) != tuple(expected.shape):
            return (f"shape is {list(got.shape)}, expected {list(expected.shape)}"
                    + _shape_hint(got.shape, expected.shape))
        if expected.is_floating_point() and not got.is_floating_point():
            return f"dtype is {got.dtype}, expected a floating-point tensor ({expected.dtype})"
        g = got.detach().to("cpu", _float64)
        e = expected.detach().to("cpu", _float64)
        if bool(_isnan(g).any()) and not bool(_isnan(e).any()):
            idx = tuple(int(i) for i in _nonzero(_isnan(g))[0])
            return f"contains NaN (first at index {idx}); check for division by zero or -inf - -inf"
        diff = _abs(_sub(g, e))
        bad = diff > (atol + rtol * _abs(e))
        bad = bad | (_isfinite(g) != _isfinite(e))
        n_bad = int(bad.sum())
        if n_bad == 0:
            return None
        idx = tuple(int(i) for i in _nonzero(bad)[0])
        finite = diff[_isfinite(diff)]
        max_diff = float(finite.max()) if finite.numel() else float("inf")
        return (f"{n_bad} of {bad.numel()} entries differ; max |got - expected| = {max_diff:.3g}; "
                f"first mismatch at index {idx}: got {float(g[idx]):.4g}, expected {float(e[idx]):.4g}")
    if got != expected:
        return f"expected {expected!r}, got {got!r}"
    return None


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {list(x.shape)}"
    if x is None:
        return "None (did you forget to `return` the result?)"
    return f"a {type(x).__name__}"


def _shape_hint(got: torch.Size, expected: torch.Size) -> str:
    if sorted(got) == sorted(expected):
        return " (same sizes in a different order: check the order of the dimensions)"
    if got.numel() == expected.numel():
        return " (same number of entries: a reshape or a missing/extra dimension?)"
    if len(got) == len(expected) + 1:
        return " (one dimension too many: did you forget to average or sum over one?)"
    if len(got) + 1 == len(expected):
        return " (one dimension missing: did you average over one too many?)"
    return ""


def _run(fn: Callable, case: Case) -> Any:
    kwargs = {k: _clone(v) for k, v in case.kwargs.items()}
    return fn(**kwargs)


def _matches(got: Any, wrong: Any, ex: Exercise) -> bool:
    try:
        return compare(got, wrong, ex.atol, ex.rtol) is None
    except Exception:
        return False


@dataclass
class Verdict:
    passed: bool
    message: str
    n_cases: int = 0


def evaluate(ex: Exercise, fn: Callable, seed: int | None = None) -> Verdict:
    """Run ``fn`` on the exercise's cases; return a :class:`Verdict` (never raises)."""
    tampered = tampered_names()
    if tampered:
        return Verdict(False, f"{', '.join(tampered)} was replaced in this kernel, so results cannot be "
                              "trusted. Restart the kernel (Kernel > Restart) and run the notebook again.")
    if not callable(fn):
        return Verdict(False, f"expected a function, got {type(fn).__name__}. Pass the function itself, "
                              "without calling it (no parentheses).")
    seeds = [0] if seed is None else [seed]
    if seed is None and ex.visible_random_seed:
        seeds.append(random.SystemRandom().randrange(1, 2**31))
    cases = [c for s in seeds for c in ex.cases(s)]
    for case in cases:
        try:
            got = _run(fn, case)
        except NotImplementedError:
            return Verdict(False, "not implemented yet: replace `raise NotImplementedError()` with your code.")
        except Exception as err:  # student code may raise anything
            return Verdict(False, f"case '{case.name}' ({_describe_inputs(case.kwargs)}): your function "
                                  f"raised {type(err).__name__}: {err}{_where_in_student_code(err)}")
        expected = _run(ex.reference, case)
        got_c = _to_comparable(got, ex.normalize)
        exp_c = _to_comparable(expected, ex.normalize)
        msg = compare(got_c, exp_c, ex.atol, ex.rtol)
        if msg is None:
            continue
        hint = ""
        for m in ex.mistakes:
            try:
                wrong = _to_comparable(_run(m.fn, case), ex.normalize)
            except Exception:
                continue
            if _matches(got_c, wrong, ex):
                hint = f"\nHint: {m.hint}"
                break
        if not hint and ex.hint:
            hint = f"\nHint: {ex.hint}"
        return Verdict(False, f"case '{case.name}' ({_describe_inputs(case.kwargs)}): {msg}{hint}", len(cases))
    return Verdict(True, f"{ex.title}: all {len(cases)} cases pass.", len(cases))


# --- recording for trusted grading ----------------------------------------------------------
RECORD_ENV = "MI_COURSE_RECORD_DIR"
RECORD_NONCE_ENV = "MI_COURSE_RECORD_NONCE"  # per grading run: records from elsewhere are ignored


def record_outputs(ex: Exercise, fn: Callable, seed: int) -> None:
    """In grading mode, save ``fn``'s outputs on the fixed cases for the trusted grader.

    The grader recomputes the reference outside the student's kernel and compares there,
    so nothing the student's code does inside the kernel can forge the verdict.
    """
    out_dir = os.environ.get(RECORD_ENV)
    if not out_dir:
        return
    results = []
    for case in ex.cases(seed):
        try:
            got = _to_comparable(_run(fn, case), ex.normalize)
            results.append(("ok", _serializable(got)))
        except NotImplementedError:
            results.append(("not_implemented", None))
        except Exception as err:  # noqa: BLE001
            results.append(("error", f"{type(err).__name__}: {str(err)[:300]}"))
    os.makedirs(out_dir, exist_ok=True)
    nonce = os.environ.get(RECORD_NONCE_ENV, "")
    path = os.path.join(out_dir, f"{ex.id}.{seed}.{nonce}.pt")
    torch.save({"exercise": ex.id, "seed": seed, "nonce": nonce, "results": results}, path + ".part")
    os.replace(path + ".part", path)  # the grader never sees a half-written record


def _serializable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu").clone()
    if isinstance(x, (tuple, list)):
        return [_serializable(v) for v in x]
    if isinstance(x, (int, float, str, bool)) or x is None:
        return x
    return repr(x)[:200]


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where_in_student_code(err: BaseException) -> str:
    """`` (your line N: `code`)`` for the innermost frame outside the course and the libraries."""
    frames = traceback.extract_tb(err.__traceback__)
    libs = tuple(p for p in {os.path.dirname(os.__file__), sys.prefix, sys.base_prefix, _PACKAGE_DIR} if p)
    mine = [f for f in frames if f.filename and not os.path.abspath(f.filename).startswith(libs)
            and "site-packages" not in f.filename]
    if not mine:
        return ""
    f = mine[-1]
    code = f" `{f.line.strip()[:120]}`" if f.line else ""
    return f" (in your code, line {f.lineno}:{code})"


# --- the visible check: a status block, never a traceback -----------------------------------
_LAST_VISIBLE: dict[str, tuple[Callable, bool]] = {}  # exercise id -> (function checked, passed?)

_STYLE = {
    "pass": ("\u2714", "#1a7f37", "#e6f4ea"),
    "todo": ("\u2717", "#6e5b00", "#fff8c5"),
    "fail": ("\u2717", "#b42318", "#fdecea"),
}


def _split_hint(message: str) -> tuple[str, str]:
    text, sep, hint = message.partition("\nHint: ")
    return text, (hint if sep else "")


def status_text(ex: Exercise, verdict: Verdict) -> str:
    """The plain-text status block of a visible check (one or two lines, no traceback)."""
    kind = _kind_of(verdict)
    what, hint = _split_hint(verdict.message)
    if kind == "pass":
        return f"\u2714 {what}"
    lines = [f"\u2717 {ex.title}: {what}"]
    if hint:
        lines.append(f"  Hint: {hint}")
    return "\n".join(lines)


def status_html(ex: Exercise, verdict: Verdict) -> str:
    """The same status block as HTML, for a notebook."""
    kind = _kind_of(verdict)
    mark, fg, bg = _STYLE[kind]
    what, hint = _split_hint(verdict.message)
    title = html.escape(ex.title)
    body = html.escape(what if kind != "pass" else what.removeprefix(f"{ex.title}: "))
    out = (f'<div class="mi-course-check mi-course-check-{kind}" style="border-left:4px solid {fg};'
           f'background:{bg};padding:6px 10px;margin:4px 0;font-family:var(--jp-content-font-family,sans-serif)">'
           f'<b style="color:{fg}">{mark} {title}</b>: {body}')
    if hint:
        out += f'<div style="margin-top:4px"><b>Hint:</b> {html.escape(hint)}</div>'
    return out + "</div>"


def _kind_of(verdict: Verdict) -> str:
    if verdict.passed:
        return "pass"
    return "todo" if verdict.message.startswith("not implemented yet") else "fail"


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def show_status(ex: Exercise, verdict: Verdict) -> None:
    """Show the status block: HTML (with a plain-text fallback) in a notebook, text elsewhere."""
    text = status_text(ex, verdict)
    if _in_notebook():
        from IPython.display import display

        display({"text/html": status_html(ex, verdict), "text/plain": text}, raw=True)
    else:
        print(text)


def _failure(message: str) -> AssertionError:
    """An ``AssertionError`` that IPython shows as its message only, without the checker's frames."""
    err = AssertionError(message)
    err._render_traceback_ = lambda: [f"\x1b[0;31mAssertionError\x1b[0m: {message}"]  # IPython's hook
    return err


class CheckResult:
    """What a check returns: truthy when the answer passed, ``== True``/``== False`` like a bool.

    As the last line of a notebook cell it shows nothing (the status block already said it
    all), where a plain ``True``/``False`` would be echoed below the status.
    """

    __slots__ = ("passed",)

    def __init__(self, passed: bool) -> None:
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CheckResult):
            return self.passed == other.passed
        if isinstance(other, bool):
            return self.passed == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.passed)

    def __repr__(self) -> str:
        return repr(self.passed)

    def _ipython_display_(self) -> None:  # IPython: display nothing
        return None


def check(ex: Exercise, fn: Callable, seed: int | None = None) -> bool:
    """Check ``fn`` against the exercise's reference.

    ``seed=None`` (the visible check in a notebook): show one status block and return
    ``True``/``False``; it never raises for a wrong or unfinished answer.
    With a seed (a hidden test): record the outputs for the grader, print the verdict and
    return ``True``, or raise ``AssertionError`` with the feedback (no checker frames shown).

    Under the trusted grader (``$MI_COURSE_RECORD_DIR`` set) a failing visible check raises as
    a hidden test does, so grading does not depend on this notebook-side contract.
    """
    __tracebackhide__ = True  # noqa: F841  (pytest/IPython: hide this frame)
    if seed is None:
        verdict = evaluate(ex, fn, None)
        _LAST_VISIBLE[ex.id] = (fn, verdict.passed)
        if not os.environ.get(RECORD_ENV):  # grading never records; a pilot student's timing is off by default
            _pilot_record(ex.id, ex.title, _kind_of(verdict))
        if not verdict.passed and os.environ.get(RECORD_ENV):
            raise _failure(f"{ex.title}: {verdict.message}")
        show_status(ex, verdict)
        return CheckResult(verdict.passed)
    from mi_course.validation import integer

    seed = integer("seed", seed)  # a hidden test's seed: an int (not "3", 1.5 or a tensor of floats)
    record_outputs(ex, fn, seed)
    verdict = evaluate(ex, fn, seed)
    if not verdict.passed:
        raise _failure(f"{ex.title}: {verdict.message}")
    print(f"\u2714 {verdict.message}")
    return CheckResult(True)


def yours_or_reference(fn: Callable, exercise: Exercise) -> Callable:
    """``fn`` if the last visible check of ``exercise`` passed with this very function, else the reference.

    Cells after an exercise that need its result call, e.g.,
    ``score_fn = checks.yours_or_reference(induction_scores, checks.INDUCTION)`` so that Run All
    on an unsolved notebook still reaches the end (with the course's reference, said in one line).
    """
    if not isinstance(exercise, Exercise):
        raise TypeError(f"yours_or_reference(fn, exercise): exercise must be a checker's Exercise "
                        f"(e.g. checks.INDUCTION), got {type(exercise).__name__}")
    last = _LAST_VISIBLE.get(exercise.id)
    if last is not None and last[0] is fn and last[1]:
        return fn
    print(f"using the course's reference for {exercise.title} until yours passes its check")
    return exercise.reference


if not os.environ.get(RECORD_ENV):  # a pilot student's kernel (timing is off unless switched on); never the grader
    _pilot_kernel_started()

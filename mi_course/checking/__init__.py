"""Exercise checkers. Each week has a module (``checking.week02``) of ``check_<exercise>`` functions."""

from mi_course.checking.core import (Case, Exercise, Mistake, Verdict, check, compare, evaluate,
                                     yours_or_reference)

__all__ = ["Case", "Exercise", "Mistake", "Verdict", "check", "compare", "evaluate", "yours_or_reference"]

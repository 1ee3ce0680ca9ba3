"""mi-course: a Jupyter-native course and toolkit for mechanistic interpretability.

Submodules are imported lazily so that ``import mi_course`` stays fast:

- :mod:`mi_course.zoo`       the course's model zoo (``zoo.load("attn-only-2l")``)
- :mod:`mi_course.data`      task data (repeated random tokens, ...)
- :mod:`mi_course.methods`   reference implementations of MI methods, by paper
- :mod:`mi_course.checking`  exercise checkers
- :mod:`mi_course.viz`       ipywidgets visualizers
- :mod:`mi_course.course`    nbgrader release/validate, slides
- :mod:`mi_course.threads`   torch's thread count for small models (``mi_course.set_threads(n)``)
"""

__version__ = "0.1.0"


def set_threads(n: int | None) -> int:
    """Choose torch's CPU thread count for the course's small models (``None``: automatic).

    See :mod:`mi_course.threads`; the environment variable ``MI_COURSE_THREADS`` does the same.
    """
    from mi_course.threads import set_threads as _set

    return _set(n)

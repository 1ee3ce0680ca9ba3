"""How many CPU threads torch uses for the course's small models.

The zoo's models are tiny (50k-2M parameters). On a small machine torch's default, one thread
per core, makes them crawl as soon as anything else runs: on 2 cores with one other busy
process, 100 training steps of ``attn-only-2l`` took 72 s with 2 threads and 9.7 s with 1 (the
worker threads spin while they wait for a core). On a quiet machine the second thread gains
little for models this size. So when the zoo builds or loads one of its small models, the
package sets torch's thread count to :data:`SMALL_MODEL_THREADS` (1), unless you chose:

- ``mi_course.set_threads(n)`` in Python (``n=None`` goes back to the automatic choice), or
- the environment variable ``MI_COURSE_THREADS=n`` (an integer >= 1), or
  ``MI_COURSE_THREADS=torch`` to leave torch's own choice alone.

A call to :func:`set_threads` wins over the environment variable.
"""

from __future__ import annotations

import os

from mi_course.errors import InputError

ENV = "MI_COURSE_THREADS"
SMALL_MODEL_THREADS = 1
SMALL_MODEL_MAX_PARAMS = 20_000_000  # the zoo's models are far below this; GPT-2 small is above

_chosen: int | None = None  # set by set_threads()


def _parse(value: object, source: str) -> int | None:
    """An int >= 1, or None for "leave torch alone" (``torch``/``auto`` from the environment)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("torch", "default"):
            return None
        if text in ("", "auto"):
            return SMALL_MODEL_THREADS
        try:
            value = int(text)
        except ValueError:
            raise InputError(f"{source} must be a whole number of threads >= 1, or 'torch' to leave "
                             f"torch's choice alone; got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{source} must be a whole number of threads >= 1, got {value!r}.")
    return value


def set_threads(n: int | None) -> int:
    """Choose torch's thread count for the course's models (and set it now).

    ``n``: a whole number >= 1, or ``None`` to go back to the automatic choice
    (``$MI_COURSE_THREADS``, else 1 thread for small models). Returns torch's thread count now.
    """
    global _chosen
    import torch

    if n is None:
        _chosen = None
        wanted = threads_for_small_models()
    else:
        _chosen = _parse(n, "set_threads(n)")
        wanted = _chosen
    if wanted is not None and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def threads_for_small_models() -> int | None:
    """The thread count to use for a small model; ``None`` means leave torch's setting alone."""
    if _chosen is not None:
        return _chosen
    env = os.environ.get(ENV)
    if env is not None:
        return _parse(env, f"${ENV}")
    return SMALL_MODEL_THREADS


def apply_for_model(model) -> int:
    """Called by the zoo when it builds or loads ``model``: set torch's threads if it is small.

    Returns torch's thread count afterwards. Large models (e.g. GPT-2 from the hub) and
    ``MI_COURSE_THREADS=torch`` leave torch's setting alone.
    """
    import torch

    try:
        n_params = sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001  (not a torch module: nothing to decide)
        return torch.get_num_threads()
    wanted = threads_for_small_models()
    if wanted is not None and n_params <= SMALL_MODEL_MAX_PARAMS and torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()

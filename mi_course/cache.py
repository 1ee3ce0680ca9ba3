"""Where the course keeps what it computes on a user's machine: ``$MI_COURSE_CACHE`` or ``~/.cache/mi-course``.

One folder for everything regenerated or recorded locally (tokenized corpora, training runs, pilot
timings), so that deleting it loses nothing shipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from mi_course.errors import InputError

ENV = "MI_COURSE_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$MI_COURSE_CACHE`` (or ``~/.cache/mi-course``), joined with ``parts``; not created here.

    ``~`` is expanded (a kernel spec does not go through a shell); a relative path is an error, since it
    would put the cache, and a pilot's log, in whatever folder a notebook runs in (a submission's, say).
    """
    value = os.environ.get(ENV)
    if not value:
        return (Path.home() / ".cache" / "mi-course").joinpath(*parts)
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise InputError(f"${ENV}={value!r} is a relative path: give an absolute one (or ~/...)")
    return path.joinpath(*parts)

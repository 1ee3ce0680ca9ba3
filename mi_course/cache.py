"""Where the course keeps what it computes on a user's machine: ``$MI_COURSE_CACHE`` or ``~/.cache/mi-course``.

One folder for everything regenerated or recorded locally (tokenized corpora, training runs, pilot
timings), so that deleting it loses nothing shipped.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "MI_COURSE_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$MI_COURSE_CACHE`` (or ``~/.cache/mi-course``), joined with ``parts``; not created here."""
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "mi-course").joinpath(*parts)

"""The model and knowledge base block 2's checkers (weeks 07-11) share: ``kb-lm`` and its KB, loaded once."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["model", "knowledge_base"]


@lru_cache(maxsize=1)
def model():
    """The zoo's ``kb-lm`` (checkers never change its weights: editors return copies or use hooks)."""
    from mi_course import zoo

    return zoo.load("kb-lm")


@lru_cache(maxsize=1)
def knowledge_base():
    """``load_kb()``: the knowledge base ``kb-lm`` was trained on."""
    from mi_course.data.knowledge_base import load_kb

    return load_kb()

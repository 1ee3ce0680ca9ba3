"""Errors raised by mi_course. Every one says what went wrong and what to do next."""

from __future__ import annotations


class MiCourseError(Exception):
    """Base class for the course's own errors (never a bare torch traceback)."""


class UnknownModelError(MiCourseError, KeyError):
    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(MiCourseError):
    """A zoo checkpoint is missing or does not match its recorded sha256."""


class OfflineError(MiCourseError):
    """A hub model was requested but the hub cannot be reached."""


class InputError(MiCourseError, ValueError):
    """A function got an argument of the wrong shape, type or value."""


def expect_shape(name: str, tensor, shape: tuple, hint: str = "") -> None:
    """Raise InputError unless ``tensor.shape`` matches ``shape`` (None = any size).

    >>> expect_shape("tokens", torch.zeros(2, 5), (None, None))
    """
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}. {hint}".strip())
    got = tuple(tensor.shape)
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise InputError(f"{name} has shape {list(got)}, expected {want}. {hint}".strip())

"""The package picks torch's thread count for its small models; users can override it."""

from __future__ import annotations

import pytest
import torch

import mi_course
from mi_course import threads
from mi_course.errors import InputError


@pytest.fixture(autouse=True)
def _restore(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "_chosen", None)
    yield
    threads._chosen = None
    torch.set_num_threads(before)


class _Params(torch.nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.empty(n), requires_grad=False)


def test_small_model_gets_one_thread_by_default():
    torch.set_num_threads(2)
    assert threads.apply_for_model(_Params(1000)) == 1


def test_large_model_is_left_alone():
    torch.set_num_threads(2)
    with torch.device("meta"):
        big = _Params(threads.SMALL_MODEL_MAX_PARAMS + 1)
    assert threads.apply_for_model(big) == 2


def test_env_var_overrides(monkeypatch):
    monkeypatch.setenv(threads.ENV, "2")
    torch.set_num_threads(1)
    assert threads.apply_for_model(_Params(10)) == 2
    monkeypatch.setenv(threads.ENV, "torch")  # leave torch's choice alone
    torch.set_num_threads(2)
    assert threads.apply_for_model(_Params(10)) == 2
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(InputError, match="MI_COURSE_THREADS"):
        threads.apply_for_model(_Params(10))
    monkeypatch.setenv(threads.ENV, "0")
    with pytest.raises(InputError, match=">= 1"):
        threads.threads_for_small_models()


def test_set_threads_wins_over_env_and_can_be_undone(monkeypatch):
    monkeypatch.setenv(threads.ENV, "1")
    assert mi_course.set_threads(2) == 2
    assert threads.apply_for_model(_Params(10)) == 2
    assert mi_course.set_threads(None) == 1  # back to the automatic choice (the env var here)
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(InputError):
            mi_course.set_threads(bad)


def test_zoo_build_and_load_apply_it():
    from mi_course import zoo

    torch.set_num_threads(2)
    zoo.build(zoo.card("attn-only-2l").config)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    zoo.load("attn-only-2l")
    assert torch.get_num_threads() == 1

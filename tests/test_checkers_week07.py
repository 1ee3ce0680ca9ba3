"""Week 07 checkers are honest: the reference passes, the stub and the known mistakes fail with their hints."""

import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week07
from mi_course.checking.core import check
from mi_course.methods import knowledge_crawl as kc
from mi_course.methods import probing

MODEL_FREE = [ex for ex in sorted(week07.EXERCISES) if ex != "w07_subject_last_token_acts"]


@pytest.mark.parametrize("ex_id", MODEL_FREE)
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week07.EXERCISES[ex_id])


def test_activation_checker_is_honest():
    assert_checker_is_honest(week07.SUBJECT_ACTS)


def test_crawler_that_revisits_is_stopped_with_a_message():
    def revisiting(query_fn, seeds, relations_of, max_subjects):
        graph, queue = {}, list(seeds)
        while queue:
            s = queue.pop(0)
            for r in relations_of(s):
                o = query_fn(s, r)
                if o is not None:
                    graph[(s, r)] = o
                    queue.append(o)
        return graph

    with pytest.raises(AssertionError, match="visit a subject more than once"):
        week07.check_crawl_graph(revisiting, seed=0)


def test_crawler_ignoring_max_subjects_fails():
    def unlimited(query_fn, seeds, relations_of, max_subjects):
        return kc.crawl_graph(query_fn, seeds, relations_of, None)

    with pytest.raises(AssertionError, match="max_subjects=4"):
        week07.check_crawl_graph(unlimited, seed=0)


def test_a_different_but_sound_probe_passes():
    """A student probe with other choices (SGD, no standardisation but a bias, more steps) is within tolerance."""
    def other_probe(train_x, train_y, test_x, test_y, n_classes):
        torch.manual_seed(1)
        lin = torch.nn.Linear(train_x.shape[1], n_classes)
        mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
        opt = torch.optim.SGD(lin.parameters(), lr=0.5)
        with torch.enable_grad():
            for _ in range(300):
                loss = torch.nn.functional.cross_entropy(lin((train_x - mu) / sd), train_y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return (lin((test_x - mu) / sd).argmax(-1) == test_y).float().mean().item()

    for seed in (0, 5, 9):
        week07.check_probe_accuracy(other_probe, seed=seed)

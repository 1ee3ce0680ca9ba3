import pytest
import torch

from mi_course.data.induction import repeated_random_tokens
from mi_course.errors import InputError
from mi_course.viz.attention import AttentionExplorer, attention_html


@pytest.fixture(scope="module")
def explorer(attn_model):
    return AttentionExplorer(attn_model, repeated_random_tokens(3, 8, 128, seed=0))


def test_explorer_starts_with_a_grid(explorer):
    assert explorer.view.value == "grid" and "<table" in explorer.out.value
    assert "&rarr;" in explorer.out.value  # value on hover
    assert "&lt;bos&gt;" in explorer.out.value  # names from the zoo card, escaped


def test_controls_change_the_view(explorer):
    explorer.layer.value, explorer.head.value = 1, 1
    grid = explorer.out.value
    explorer.view.value = "tokens"
    assert "mic-tok" in explorer.out.value and explorer.query.layout.display == ""
    explorer.query.value = 12
    q12 = explorer.out.value
    # query 12 (second copy) of the induction head 1.1 attends most to key 12 - 8 + 1 = 5
    p = explorer.patterns[1, 0, 1, 12]
    assert int(p.argmax()) == 5
    explorer.example.value = 2
    assert explorer.out.value != q12
    explorer.view.value = "grid"
    assert explorer.query.layout.display == "none" and explorer.out.value != grid


def test_widget_is_small_and_offline(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert len(explorer.out.value) < 60_000 and "<script" not in explorer.out.value


def test_bad_arguments(attn_model):
    with pytest.raises(InputError, match="token ids must be in 0..127"):
        AttentionExplorer(attn_model, torch.full((1, 5), 500))
    with pytest.raises(InputError, match="too many to draw"):
        AttentionExplorer(attn_model, torch.zeros(1, 100, dtype=torch.long))
    with pytest.raises(InputError, match="view must be"):
        attention_html(torch.eye(3), ["a", "b", "c"], view="3d")
    with pytest.raises(InputError, match=r"shape \[3, 3\], expected \[2, 2\]"):
        attention_html(torch.eye(3), ["a", "b"])

import pytest
import torch

from mi_course.errors import InputError
from mi_course.viz.patching import PatchingHeatmap, patching_html, plot_patching

LABELS = ["<bos>", "When", "Mary (IO)", "and", "John (S1)", ",", "John (S2)", "to (END)"]


def test_layer_by_position_has_tokens_and_values_on_hover():
    v = torch.arange(3 * 8, dtype=torch.float).reshape(3, 8) - 5
    w = PatchingHeatmap(v, LABELS, title="resid_pre")
    html = w.out.value
    assert "Mary (IO)" in html and "to (END)" in html
    assert "title='L2, to (END): 18'" in html  # value on hover
    assert html.count("<tr>") == 4  # header + 3 layers
    assert "rgba(220,38,38" in html and "rgba(37,99,235" in html  # negative red, positive blue


def test_several_results_and_head_selector():
    by_head = torch.randn(3, 4)
    by_pos_head = torch.randn(3, 8, 4)
    w = PatchingHeatmap({"z by head": by_head, "z by pos": by_pos_head}, LABELS)
    assert "H3" in w.out.value and "Mary" not in w.out.value
    assert w.head.layout.display == "none"
    w.result.value = "z by pos"
    assert w.head.layout.display == "" and len(w.head.options) == 5
    summed = w.out.value
    assert "sum of heads" in summed
    w.head.value = 2
    values, rows, cols = w.current()
    assert torch.equal(values, by_pos_head[:, :, 2]) and cols == LABELS
    assert "head 2" in w.out.value and w.out.value != summed
    w.show_values.value = True
    assert f"{float(by_pos_head[0, 0, 2]):.2f}" in w.out.value


def test_escapes_html_in_tokens():
    v = torch.zeros(1, 2)
    assert "&lt;bos&gt;" in patching_html(v, ["L0"], ["<bos>", "x"])


def test_bad_arguments():
    with pytest.raises(InputError, match="labels"):
        PatchingHeatmap(torch.zeros(3, 8, 4), LABELS[:5])
    with pytest.raises(InputError, match="expected a tensor"):
        PatchingHeatmap({"a": [1, 2]})
    with pytest.raises(InputError, match="non-empty"):
        PatchingHeatmap({})
    with pytest.raises(InputError, match="2-D"):
        patching_html(torch.zeros(2, 2, 2), ["a", "b"], ["c", "d"])
    with pytest.raises(InputError, match="do not fit"):
        patching_html(torch.zeros(2, 3), ["a", "b"], ["c", "d"])
    with pytest.raises(InputError, match="layer"):
        PatchingHeatmap(torch.zeros(2, 2, 2, 2))


def test_static_plot():
    ax = plot_patching(torch.randn(3, 8), LABELS, title="resid")
    assert ax.get_title() == "resid" and len(ax.get_xticklabels()) == 8


def _alphas(html: str) -> list[float]:
    import re

    return [float(a) for a in re.findall(r"<td style='background:rgba\(\d+,\d+,\d+,([\d.]+)\)'", html)]


def test_fixed_symmetric_scale_with_a_colour_bar():
    tiny = torch.full((2, 3), 0.01)
    big = torch.full((2, 3), 0.12)
    w = PatchingHeatmap({"tiny": tiny, "big": big})
    assert "data-vmax='1'" in w.out.value and "-1" in w.out.value and "+1" in w.out.value  # colour bar
    assert max(_alphas(w.out.value)) == 0.01  # faint: a tiny effect looks tiny
    w.result.value = "big"
    assert max(_alphas(w.out.value)) == 0.12
    w.rescale.value = True  # opt in: fit the colours to the view, and the bar says so
    assert set(_alphas(w.out.value)) == {1.0} and "data-vmax='0.12'" in w.out.value
    assert "fitted to this view" in w.out.value
    w.result.value = "tiny"
    assert set(_alphas(w.out.value)) == {1.0} and "data-vmax='0.01'" in w.out.value


def test_one_fitted_scale_for_all_results_and_negative_values():
    w = PatchingHeatmap({"a": torch.tensor([[0.05, -0.2]]), "b": torch.tensor([[0.4, 0.0]])}, vmax=None)
    assert "data-vmax='0.4'" in w.out.value and "one scale fitted to all results" in w.out.value
    assert "rgba(220,38,38,0.50)" in w.out.value  # -0.2 of 0.4: half red
    w.result.value = "b"
    assert "data-vmax='0.4'" in w.out.value
    over = PatchingHeatmap(torch.tensor([[1.5, 0.2]]))
    assert "1 value(s) beyond the scale" in over.out.value
    with pytest.raises(InputError, match="vmax"):
        PatchingHeatmap(torch.zeros(2, 2), vmax=0)


def test_static_plot_scale_and_integer_layer_ticks():
    ax = plot_patching(torch.full((3, 4), 0.01))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"] and ax.get_ylabel() == "layer"
    im = ax.get_images()[0]
    assert im.get_clim() == (-1.0, 1.0)
    ax = plot_patching(torch.full((3, 4), 0.01), vmax=None)
    assert ax.get_images()[0].get_clim() == pytest.approx((-0.01, 0.01))

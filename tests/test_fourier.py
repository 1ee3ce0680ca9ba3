"""Fourier and grokking methods on synthetic inputs whose answers are known exactly."""

import math

import pytest
import torch

from mi_course.data import modadd
from mi_course.errors import InputError
from mi_course.methods import fourier, grokking


def test_basis_is_orthonormal_and_named():
    B, names = fourier.fourier_basis(113)
    assert B.shape == (113, 113)
    torch.testing.assert_close(B @ B.T, torch.eye(113), atol=1e-5, rtol=0)
    assert names[:3] == ["const", "cos 1", "sin 1"] and names[-1] == "sin 56"


@pytest.mark.parametrize("bad", [4, 1, "7", 7.0])
def test_basis_rejects_bad_p(bad):
    with pytest.raises(InputError, match="odd integer"):
        fourier.fourier_basis(bad)


def test_1d_transform_finds_a_single_wave():
    p = 13
    x = torch.arange(p, dtype=torch.float32)
    W = torch.stack([torch.cos(2 * math.pi * 3 * x / p), 2 * torch.sin(2 * math.pi * 5 * x / p)], dim=1)  # [p, 2]
    norms = fourier.frequency_norms(fourier.fourier_transform_1d(W))
    assert norms.shape == (7,)
    assert norms[3] == pytest.approx(p / 2, rel=1e-4) and norms[5] == pytest.approx(4 * p / 2, rel=1e-4)
    assert fourier.key_frequencies_from_norms(norms) == [3, 5]
    assert fourier.fraction_in_frequencies(norms, [5]) == pytest.approx(0.8, rel=1e-4)


def test_2d_transform_matches_two_1d_transforms():
    x = torch.randn(11, 11, 3)
    two = fourier.fourier_transform_2d(x)
    manual = fourier.fourier_transform_1d(fourier.fourier_transform_1d(x, dim=0), dim=1)
    torch.testing.assert_close(two, manual, atol=1e-4, rtol=1e-4)
    with pytest.raises(InputError, match=r"\[p, p, \.\.\.\]"):
        fourier.fourier_transform_2d(torch.randn(11, 13))


def test_neuron_fractions_of_pure_quadratic_neurons():
    p = 17
    a = torch.arange(p, dtype=torch.float32)
    c, s = torch.cos(2 * math.pi * 4 * a / p), torch.sin(2 * math.pi * 4 * a / p)
    acts = torch.stack([c[:, None] * c[None, :] + 3.0, s[:, None] + s[None, :], torch.randn(p, p)], dim=-1)
    fr = fourier.neuron_frequency_fractions(acts)
    assert fr.shape == (3, 8)
    assert fr[0, 3] == pytest.approx(1.0, abs=1e-4) and fr[1, 3] == pytest.approx(1.0, abs=1e-4)
    assert fr[2].max() < 0.5
    assert fourier.key_frequencies_from_neurons(acts[:, :, :2].repeat(1, 1, 10), min_neurons=10) == {4: 20}


def test_logits_made_of_cosines_are_fully_explained():
    p = 13
    logits = 2 * fourier.cos_a_plus_b_minus_c(p, 2) + fourier.cos_a_plus_b_minus_c(p, 5)
    fr = fourier.logit_cosine_fractions(logits, [2, 5])
    assert fr.sum() == pytest.approx(1.0, abs=1e-5)
    assert fr[0] == pytest.approx(0.8, abs=1e-5)
    with pytest.raises(InputError, match="freqs"):
        fourier.logit_cosine_fractions(logits, [0])
    with pytest.raises(InputError, match="reshape"):
        fourier.logit_cosine_fractions(logits.reshape(p * p, p), [2])


def test_restricted_plus_excluded_is_the_whole():
    p = 11
    L = torch.randn(p * p, p)
    r = grokking.restricted_logits(L, [1, 4])
    e = grokking.excluded_logits(L, [1, 4])
    torch.testing.assert_close(r + e, L + L.mean(0, keepdim=True), atol=1e-4, rtol=1e-4)
    # a pure key-frequency logit grid: restricted keeps all of it, excluded keeps only the mean
    pure = fourier.cos_a_plus_b_minus_c(p, 4).reshape(p * p, p) * 100
    torch.testing.assert_close(grokking.restricted_logits(pure, [4]), pure, atol=1e-4, rtol=1e-4)
    assert grokking.restricted_loss(pure, [4]) < 1e-3
    mask = modadd.train_mask(p, 0.3)
    assert grokking.excluded_loss(pure, [4], mask) == pytest.approx(math.log(p), abs=1e-3)
    with pytest.raises(InputError, match="logits must be"):
        grokking.restricted_logits(torch.randn(5, 7), [1])


def test_sum_squared_weights():
    assert grokking.sum_squared_weights({"a": torch.ones(3), "b": 2 * torch.ones(2)}) == 11.0
    with pytest.raises(InputError):
        grokking.sum_squared_weights(3)


def test_dataset_split_and_labels():
    d = modadd.dataset()
    assert d.tokens.shape == (113 * 113, 3) and (d.tokens[:, 2] == 113).all()
    assert int(d.is_train.sum()) == 3830
    assert d.tokens[5 * 113 + 7].tolist() == [5, 7, 113] and int(d.labels[5 * 113 + 7]) == 12
    assert int(d.labels[100 * 113 + 50]) == 37
    assert torch.equal(modadd.train_mask(), modadd.train_mask())  # seeded
    assert not torch.equal(modadd.train_mask(seed=1), modadd.train_mask())
    with pytest.raises(InputError):
        modadd.labels(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(InputError):
        modadd.train_mask(frac_train=1.5)


def test_plots_return_figures_and_reject_bad_input():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mi_course.viz import fourier as fplot

    e = torch.arange(5.0)
    fig = fplot.training_curves(e, torch.rand(5) + 0.1, torch.rand(5) + 0.1, torch.rand(5), phases=[1, None])
    assert len(fig.axes) == 2
    assert fplot.frequency_spectrum(torch.rand(8), [2, 5]).axes
    assert fplot.fourier_heatmap(torch.rand(7, 7), [str(i) for i in range(7)]).axes
    pm = {k: [1.0, 0.5] for k in ("train_loss", "test_loss", "restricted_loss", "excluded_loss", "sum_sq_weights")}
    pm["epoch"] = [0, 10]
    assert len(fplot.progress_measures(pm, phases=[5]).axes) == 2
    plt.close("all")
    with pytest.raises(InputError, match="same length"):
        fplot.training_curves(e, torch.rand(4), torch.rand(5))
    with pytest.raises(InputError, match="missing"):
        fplot.progress_measures({"epoch": [0]})


def test_fourier_heatmap_labels_every_row_and_keeps_the_title_off_the_colour_bar():
    from mi_course.viz import fourier as fplot

    names = [f"c{i}" for i in range(25)]
    fig = fplot.fourier_heatmap(torch.rand(25, 25), names, title="MLP neurons: 2-D Fourier norm (first 25 components)")
    ax, cax = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert cax.get_ylabel() == "norm over neurons"
    assert fig._suptitle is not None and ax.get_title() == ""
    fig.canvas.draw()
    title_box = fig._suptitle.get_window_extent()
    assert title_box.y0 >= cax.get_window_extent().y1 - 1  # above the colour bar, not over it
    with pytest.raises(Exception):
        fplot.fourier_heatmap(torch.rand(25, 25), names[:10])

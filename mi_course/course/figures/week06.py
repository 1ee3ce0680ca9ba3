"""Week 06 figures, computed from the shipped ``modadd-p113`` and its checkpoints."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt

from mi_course import zoo
from mi_course.data.modadd import P, dataset
from mi_course.methods import fourier, grokking
from mi_course.viz import fourier as fplot

NAME = "modadd-p113"


@lru_cache(maxsize=1)
def _model():
    return zoo.load(NAME)


@lru_cache(maxsize=1)
def _ckpts():
    from mi_course.zoo.modadd import load_checkpoints

    return load_checkpoints()


def _phases():
    f = zoo.card(NAME).figures
    return [f["test_loss_peak"]["epoch"], f["grok_epoch"]["value"]]


def training_curves():
    ck = _ckpts()
    return fplot.training_curves(ck.column("epoch"), ck.column("train_loss"), ck.column("test_loss"),
                                 ck.column("test_acc"), phases=_phases(),
                                 title="train and test loss (dotted: test-loss peak, grokked)")


def embedding_spectrum():
    W_E = _model().state_dict()["embed.weight"][:P]
    norms = fourier.frequency_norms(fourier.fourier_transform_1d(W_E))
    return fplot.frequency_spectrum(norms, zoo.card(NAME).figures["key_frequencies"]["value"],
                                    title="W_E: squared norm per frequency (red: key frequencies)")


def neuron_fractions():
    best = grokking.neuron_fractions_explained(_model())
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.hist(best.numpy(), bins=40)
    ax.set_xlabel("share of a neuron's variance explained by its best frequency")
    ax.set_ylabel("neurons")
    return fig


def progress_measures():
    freqs = zoo.card(NAME).figures["key_frequencies"]["value"]
    pm = grokking.progress_measures(_ckpts(), freqs, dataset().is_train, progress=False)
    return fplot.progress_measures(pm, phases=_phases(), title="progress measures (dotted: test-loss peak, grokked)")

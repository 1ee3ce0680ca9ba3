"""The numbers week 10's notebook prose and deck quote, recomputed from the shipped sweep
(``course/figures/week10.py``; the sweep itself is re-measured on three facts by
``tests/test_localization_vs_editing.py``)."""

from pathlib import Path

import nbformat
import pytest

from mi_course import zoo

pytestmark = pytest.mark.skipif("kb-lm" not in zoo.names(), reason="kb-lm is not in the zoo")
REPO = Path(__file__).resolve().parents[1]
WEEK = "10_localization_vs_editing"


def _f2(x):
    return "n/a" if x != x else f"{x:.2f}"


@pytest.fixture(scope="module")
def n():
    from mi_course.course.figures import week10

    return week10.numbers()


def _quoted(n) -> list[str]:
    r2, sh, lc = n["r2"], n["r2_shuffled"], n["layer_choice"]
    return [
        f"Layer alone explains R² {r2['layer']:.2f}", f"the tracing effect alone {r2['tracing']:.2f}",
        f"both {r2['both']:.2f}", f"adds {r2['both'] - r2['layer']:.3f}",
        f"an increment of {sh['both'] - sh['layer']:.3f}",
        f"{n['r2_paraphrase']['layer']:.2f} /\n{n['r2_paraphrase']['tracing']:.2f} / {n['r2_paraphrase']['both']:.2f}",
        ", ".join(_f2(x) for x in n["per_layer_correlation"]) + " at layers 0-5",
        f"coincide for {n['peak_agreement']:.0%} of facts",
        f"tracing peak gives a mean rewrite score of {lc['tracing']:.2f}",
        f"(layer {lc['fixed_layer']}) gives {lc['fixed']:.2f}; the oracle {lc['oracle']:.2f}",
        ", ".join(f"{x:.2f}" for x in n["mean_tracing"][:3]) + " at layers 0-2",
        ", ".join(f"{x:.2f}" for x in n["mean_rewrite"][3:]) + " at layers 3-5",
        f"run them on {n['n_facts']} facts",
        f"the correlation of the two peak layers is {_f2(n['peak_correlation'])}",
    ]


def _markdown() -> str:
    nb = nbformat.read(REPO / "solutions" / WEEK / f"{WEEK}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_the_notebook_quotes_the_measured_numbers(n):
    import torch

    from mi_course.course.figures import week10
    from mi_course.methods import localization_vs_editing as lve

    m = week10.sweep()
    counts = [torch.bincount(lve.peak_layers(m[k]), minlength=m[k].shape[1]).tolist() for k in ("tracing", "rewrite")]
    text = " ".join(_markdown().split())  # line breaks in the prose are spaces
    quoted = _quoted(n) + [f"Tracing peaks at layers {counts[0]}", f"ROME edits best at layers {counts[1]}",
                           f"about {m['seconds'] // 60} minutes on a busy 2-core machine"]
    missing = [q for q in quoted if " ".join(q.split()) not in text]
    assert not missing, f"the notebook's prose does not quote the measured {missing}"


def test_the_deck_quotes_the_measured_numbers(n):
    deck = (REPO / "slides" / WEEK / "slides.md").read_text()
    r2, lc = n["r2"], n["layer_choice"]
    for q in (f"| `kb-lm` | {r2['layer']:.2f} | {r2['tracing']:.2f} | {r2['both']:.2f} |",
              f"{r2['layer']:.2f} / {r2['tracing']:.2f} / {r2['both']:.2f}",
              f"each fact's tracing peak {lc['tracing']:.2f}", f"tracing peak for {n['peak_agreement']:.0%} of facts",
              ", ".join(_f2(x) for x in n["per_layer_correlation"][:3]),
              "tracing effect at layers 0-2: " + ", ".join(f"{x:.2f}" for x in n["mean_tracing"][:3]),
              "rewrite score at layers 0-2: " + ", ".join(f"{x:.2f}" for x in n["mean_rewrite"][:3])
              + "; layers 3-5: " + ", ".join(f"{x:.2f}" for x in n["mean_rewrite"][3:]),
              f"one fixed layer (layer {lc['fixed_layer']}) {lc['fixed']:.2f}; each fact's tracing peak "
              f"{lc['tracing']:.2f}; oracle {lc['oracle']:.2f}",
              f"{r2['both'] - r2['layer']:.3f} (shuffled: {n['r2_shuffled']['both'] - n['r2_shuffled']['layer']:.3f})",
              f"{n['n_facts']} known facts x 6 layers"):
        assert q in deck, q
    assert n["mean_tracing"][-1] == 0  # "0 at the last layer"


def test_the_paper_figures_match_the_guide():
    from mi_course.course.figures import week10

    assert week10.PAPER == {"layer": 0.947, "tracing": 0.016, "both": 0.948, "rho_layer6": -0.13}
    text = _markdown()
    assert "0.947" in text and "0.016" in text and "0.948" in text and "-0.13" in text


def test_the_deck_figures_draw():
    import matplotlib

    matplotlib.use("Agg")
    from mi_course.course.figures import week10

    for name in ("by_layer", "scatter", "r2_table"):
        fig = getattr(week10, name)()
        assert fig.axes
        matplotlib.pyplot.close(fig)


def test_the_bias_section_quotes_the_bias_sweep():
    """Section 6's numbers, from ``measured_week10_bias.json`` (re-measured in tests/test_kb_bias_figures.py)."""
    fig = zoo.card("kb-lm").measured("week10_bias")
    text = " ".join(_markdown().split())
    by = {}
    for r in fig["rows"]:
        by.setdefault(r["name"], []).append(r)

    def summ(name):
        rs = by[name]
        return sum(r["bias_removed"] for r in rs) / len(rs), sum(r["recall_heldout"] for r in rs) / len(rs)
    top = fig["components"][:2]
    loc2, rnd2, loc4, rnd4 = summ("located top-2"), summ("random like top-2"), summ("located top-4"), summ("random like top-4")
    quoted = [f"On names it never read, B = {fig['bias_before']:.2f} nats", f"more than the data's own {fig['kb_bias']:.2f}",
              f"The strongest components are {top[0]['component']} and {top[1]['component']}",
              f"(indirect effects {top[0]['effect']:.2f} and {top[1]['effect']:.2f} nats",
              f"those two (learning rate {by['located top-2'][0]['lr']:.0e}) removes {loc2[0]:.0%} of the bias (held-out recall {loc2[1]:.2f}, from "
              f"{fig['damage_before']['recall_heldout']:.2f})",
              f"as many random components remove {rnd2[0]:.0%} on average",
              f"recall {rnd2[1]:.2f}). The top-4: {loc4[0]:.0%} (recall {loc4[1]:.2f}) vs random {rnd4[0]:.0%} (recall {rnd4[1]:.2f})"]
    if "bias_before_se" in fig:
        quoted.append(f"(standard error over the {fig['settings']['n_pairs']} name pairs {fig['bias_before_se']:.2f})")
    for name in by:
        if name.startswith("located top-2, lr"):
            lr = name.split("lr ")[1]
            l_s, r_s = summ(name), summ(f"random like top-2, lr {lr}")
            quoted.append(f"At learning rate {lr} the located top-2 remove {l_s[0]:.0%} (recall {l_s[1]:.2f}) and "
                          f"random pairs {r_s[0]:.0%} (recall {r_s[1]:.2f})")
    quoted += [f"lr {r['lr']:.0e}: {r['bias_removed']:.0%} removed, recall {r['recall_heldout']:.2f}"
               for r in fig["rows"] if r["name"].startswith("whole model")]
    assert fig["bias_before"] > fig["kb_bias"]  # "more than the data's own"
    deck = " ".join((REPO / "slides" / WEEK / "slides.md").read_text().split())
    for q in (f"{fig['bias_before']:.2f} nats on unseen names (data: {fig['kb_bias']:.2f})",
              f"strongest {top[0]['component']} ({top[0]['effect']:.2f}), {top[1]['component']} ({top[1]['effect']:.2f})",
              f"located top-2 remove {loc2[0]:.0%} (recall {loc2[1]:.2f}); random top-2 {rnd2[0]:.0%} (recall {rnd2[1]:.2f})"):
        assert q in deck, q
    verdict = ("removes more of the bias than random ones" if loc2[0] > rnd2[0] else "does not beat random components")
    quoted.append(verdict)
    missing = [q for q in quoted if " ".join(q.split()) not in text]
    assert not missing, f"section 6 does not quote the measured {missing}"

import pytest
import torch

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import TraceResult, named_positions
from mi_course.viz.causal_tracing import CausalTracingWidget, plot_aie, plot_trace, trace_html

TOKENS = ["<|endoftext|>", "Kalo", "Durmer", "was", "born", "in"]
FACTS = [{"prompt": "{} was born in", "subject": "Kalo Durmer", "target": "Lima"},
         {"prompt": "{} works for", "subject": "Ada Bo", "target": "Acme"}]


def fake(kind: str, scale: float) -> TraceResult:
    scores = torch.arange(4 * 6, dtype=torch.float).reshape(4, 6) / 24 * scale
    return TraceResult(scores=scores, low=0.05, high=0.9, kind=kind, window=1, tokens=TOKENS, subject=(1, 3),
                       target=7, positions=named_positions(1, 3, 6))


RESULTS = {(i, k): fake(k, s) for i in range(2) for k, s in (("hidden", 1.0), ("mlp", 0.5), ("attn", 0.25))}


def test_widget_switches_kind_and_fact():
    w = CausalTracingWidget.from_results(FACTS, RESULTS)
    assert "hidden state" in w.out.value and "Durmer*" in w.out.value and "Kalo*" in w.out.value
    assert "was*" not in w.out.value
    assert w.out.value.count("<tr>") == 1 + len(TOKENS)  # header + one row per token (layers across)
    w.kind.value = "mlp"
    assert "MLP output" in w.out.value and w.current() is RESULTS[(0, "mlp")]
    w.fact.value = 1
    assert w.current() is RESULTS[(1, "mlp")]
    assert [o[0] for o in w.fact.options][1] == "Ada Bo works for -> Acme"
    w.show_values.value = True
    assert f"{float(RESULTS[(1, 'mlp')].scores[3, 5]):.2f}" in w.out.value
    assert "clean 0.90, corrupted 0.05" in w.out.value


def test_widget_errors():
    with pytest.raises(InputError, match="kinds"):
        CausalTracingWidget.from_results(FACTS, RESULTS, kinds=("resid",))
    with pytest.raises(InputError, match="facts is empty"):
        CausalTracingWidget.from_results([], RESULTS)
    with pytest.raises(InputError, match="'target'"):
        CausalTracingWidget.from_results([{"prompt": "{} x", "subject": "a"}], RESULTS)
    w = CausalTracingWidget.from_results(FACTS, {(0, "hidden"): RESULTS[(0, "hidden")]})
    with pytest.raises(InputError, match="no precomputed trace"):
        w.kind.value = "mlp"


def test_widget_traces_lazily_with_a_model(kb_tiny_model):
    from mi_course.data.knowledge_base import load_kb

    kb = load_kb()
    f = kb.facts_of("birth_city")[0]
    facts = [{"prompt": kb.split_templates(f.subject, "birth_city", "train")[0], "subject": f.subject, "target": f.object}]
    w = CausalTracingWidget(kb_tiny_model, facts, n_samples=2)
    assert len(w._cache) == 1 and w.current().scores.shape[0] == kb_tiny_model.cfg.n_layers
    w.kind.value = "attn"
    assert len(w._cache) == 2 and w.current().kind == "attn"


def test_static_plots():
    import matplotlib.pyplot as plt

    ax = plot_trace(RESULTS[(0, "mlp")])
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "Kalo*"
    ax2 = plot_aie(RESULTS[(0, "hidden")].by_name(), "hidden")
    assert len(ax2.get_yticklabels()) == 6
    with pytest.raises(InputError):
        plot_aie(torch.zeros(3, 4))
    plt.close("all")
    assert "&lt;|endoftext|&gt;" in trace_html(RESULTS[(0, "hidden")])

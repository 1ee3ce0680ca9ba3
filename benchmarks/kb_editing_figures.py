"""Measure week 08's figures on the shipped ``kb-lm`` and record them on its card.

    python benchmarks/kb_editing_figures.py            # print
    python benchmarks/kb_editing_figures.py --write    # also write them into zoo/models/kb-lm/card.json

Causal-tracing peaks (hidden state / MLP / attention, 40 facts, 10 noise samples), the severed
variants, and ROME / FT / FT-L efficacy, paraphrase and neighbourhood at every layer (20 requests).
Adds the figure keys ``tracing_*``, ``rome_*``, ``ft_*`` and ``extra["week08"]`` (rows by layer); everything else on
the card is left as it is. ``tests/test_kb_editing_figures.py`` re-measures a subset.
"""

from __future__ import annotations

import json
import sys
import time

import torch


def card_entries(fig: dict, layer: int) -> dict:
    """The card's scalar figures for ``fig`` (from ``edit_evaluation.editing_figures``)."""
    out = {}
    for kind, label in (("hidden", "hidden state"), ("mlp", "MLP output"), ("attn", "attention output")):
        t = fig["tracing"][kind]
        out[f"tracing_{kind}_peak_aie"] = {
            "value": t["peak_aie"],
            "description": f"causal tracing, {label} restored (window 1): largest average indirect effect, at layer "
                           f"{t['peak_layer']}, {t['peak_position']} ({fig['n_trace']} facts, {fig['n_samples']} noise "
                           f"samples of 3x the subjects' embedding std; clean P {fig['clean_p']}, corrupted {fig['corrupted_p']})"}
    e = fig["editing"]
    L = str(layer)
    for name in ("ROME", "FT", "FT-L"):
        s = e[name][L]
        out[f"{name.lower().replace('-', '_')}_layer{layer}_score"] = {
            "value": s["S"],
            "description": f"{name} at layer {layer} (the default), {fig['n_edits']} counterfactual edits: "
                           f"ES {s['ES']}, PS {s['PS']}, NS {s['NS']} (harmonic mean S; ROME/MEMIT summarize.py)"}
    return out


def compact(fig: dict) -> dict:
    """The card's ``extra["week08"]``: per-layer rows as short strings (the card stays small)."""
    row = lambda xs: " ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    out = {"settings": f"{fig['n_trace']} facts, {fig['n_samples']} noise samples (std {fig['noise']}), clean P "
                       f"{fig['clean_p']}, corrupted {fig['corrupted_p']}; {fig['n_edits']} edits; FT-L eps {fig['ft_l_eps']}",
           "tracing": {}, "editing": {}}
    for kind, t in fig["tracing"].items():
        out["tracing"][kind] = {"peak": [t["peak_layer"], t["peak_position"], t["peak_aie"]],
                                "last_subject_token": row(t["last_subject_token"]), "last_token": row(t["last_token"])}
    for what, xs in fig["severed"].items():
        out["tracing"][f"hidden, {what} severed"] = {"last_subject_token": row(xs)}
    for name, by_layer in fig["editing"].items():
        layers = sorted(by_layer, key=int)
        out["editing"][name] = {k: row([by_layer[L][k] for L in layers]) for k in ("ES", "PS", "NS", "S")}
    return out


def main(write: bool = False) -> dict:
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import edit_evaluation as ev
    from mi_course.methods import rome
    from mi_course.zoo.cards import MODELS_DIR, ModelCard

    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    model = zoo.load("kb-lm")
    t0 = time.time()
    fig = ev.editing_figures(model, load_kb(), n_trace=40, n_edits=20, progress=True)
    fig["seconds"] = round(time.time() - t0)
    layer = rome.default_layer(model)
    print(json.dumps(fig, indent=1), flush=True)
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(fig, f, indent=1)
    if write:
        path = MODELS_DIR / "kb-lm" / "card.json"
        card = ModelCard.load(path)
        card.figures.update(card_entries(fig, layer))
        card.extra["week08"] = compact(fig)
        card.save(path.parent)
        print("written to", path)
    return fig


if __name__ == "__main__":
    main("--write" in sys.argv)

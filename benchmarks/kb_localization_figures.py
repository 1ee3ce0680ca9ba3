"""Measure week 10's localization-vs-editing sweep (Hase et al. 2023) on the shipped ``kb-lm``.

    python benchmarks/kb_localization_figures.py            # print
    python benchmarks/kb_localization_figures.py --write    # also write measured_week10_localization.json

40 seeded known facts (``edit_evaluation.known_facts``, seed 0); for each, the hidden-state tracing
effect at the last subject token at every layer (10 noise samples) and ROME's rewrite score at every
layer (a seeded counterfactual object), then the R² table (edit success on layer / tracing / both).
``tests/test_localization_vs_editing.py`` re-measures three facts and recomputes the table.
"""

from __future__ import annotations

import json
import sys
import time

import torch

N_FACTS = 40
SEED = 0


def main(write: bool = False, n_facts: int = N_FACTS) -> dict:
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import localization_vs_editing as lve

    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    model = zoo.load("kb-lm")
    t0 = time.time()
    fig = lve.measure(model, load_kb(), n_facts=n_facts, seed=SEED, progress=True)
    fig["seconds"] = round(time.time() - t0)
    summary = {k: fig[k] for k in ("r2", "r2_paraphrase", "r2_shuffled_tracing", "peak_correlation", "peak_agreement",
                                   "tracing_peak_counts", "edit_peak_counts",
                                   "per_layer_correlation", "mean_tracing", "mean_rewrite", "layer_choice", "seconds")}
    print(json.dumps(summary, indent=1), flush=True)
    if write:
        path = zoo.card("kb-lm").write_measured("week10_localization", fig)
        print(f"wrote {path}")
    return fig


if __name__ == "__main__":
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else N_FACTS
    main(write="--write" in sys.argv, n_facts=n)

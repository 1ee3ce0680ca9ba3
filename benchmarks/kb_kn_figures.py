"""Measure week 11's figures (knowledge neurons, Dai et al. 2022; the checks of Niu et al. 2024) on the
shipped ``kb-lm`` and record them beside its card.

    nice -n 10 python benchmarks/kb_kn_figures.py            # print
    nice -n 10 python benchmarks/kb_kn_figures.py --write    # also write zoo/models/kb-lm/measured_week11_kn.json

For 30 seeded edit cases (``edit_evaluation.kb_cases(model, kb, 30, seed=0)``): the knowledge neurons
of each fact (integrated gradients, m = 20, over every layer's MLP neurons at the last token of all
templates of its relation; t = 0.2, p = 0.5), suppress / amplify effects beside random neurons, the
flips, the neurons' activation on unknown people and on other relations, the knowledge-neuron edit at
several scales and ROME at layers 0 and 2 (ES, PS, NS). ``knowledge_neurons.kn_figures`` does the work;
``tests/test_kb_kn_figures.py`` re-measures a few facts against the file. About 10 minutes on one
busy CPU core.
"""

from __future__ import annotations

import json
import sys
import time

import torch

N_FACTS = 30
SEED = 0
ROME_LAYERS = (0, 2)


def main(write: bool = False, n_facts: int = N_FACTS) -> dict:
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import knowledge_neurons as kn

    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    model = zoo.load("kb-lm")
    t0 = time.time()
    fig = kn.kn_figures(model, load_kb(), n_facts=n_facts, seed=SEED, rome_layers=ROME_LAYERS, progress=True)
    fig["settings"]["seconds"] = round(time.time() - t0)
    fig["settings"]["command"] = "nice -n 10 python benchmarks/kb_kn_figures.py --write"
    print(json.dumps(fig["summary"], indent=1), flush=True)
    if write:
        path = zoo.card("kb-lm").write_measured("week11_kn", fig)
        print("written to", path)
    return fig


if __name__ == "__main__":
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else N_FACTS
    main("--write" in sys.argv, n)

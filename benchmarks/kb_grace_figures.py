"""Measure week 09's sequential-editing figures (GRACE vs sequential ROME and fine-tuning) on ``kb-lm``.

    python benchmarks/kb_grace_figures.py            # print
    python benchmarks/kb_grace_figures.py --write    # also write zoo/models/kb-lm/measured_week09_grace.json

One seeded stream of counterfactual edits of base facts (``grace.sequential_stream``, seed 0: 60 test
people's 300 facts are never edited, the TRR set), edited one after another:

- the distances between GRACE's keys (:func:`grace.key_distances`, quantiles 0/5/50/95/100%);
- GRACE (layer 4, ε_init 1.0, the defaults) at 1, 10, 100, 1,000 edits: TRR, ERR, paraphrase accuracy
  on the edited facts' other wordings, number of keys;
- the same with ε_init 5.0 (a radius that spans paraphrases: what happens to retention over 1,000 edits);
- GRACE at 100 edits for several ε_init: the paraphrase / retention trade-off of the deferral radius;
- sequential ROME, FT and FT-L (layer 1) at 1, 10, 100 edits (1,000 would take about an hour of this
  machine; the MEMIT comparison in week 09 measures ROME's scaling separately).

``tests/test_kb_grace_figures.py`` re-measures the 10-edit rows.
"""

from __future__ import annotations

import json
import sys
import time

import torch

WEIGHT_LAYER = 1  # week 08: ROME at layer 1 has ES 0.95, NS 0.98; the default layer 2 only ES 0.55
EPS_WIDE = 5.0  # wider than every paraphrase distance, narrower than other people's (key_distances)
EPS_SWEEP = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0)


def distances(model, kb) -> dict:
    """Quantiles (0, 0.05, 0.5, 0.95, 1) of :func:`grace.key_distances` (40 people, birth_city, layer 4)."""
    from mi_course.methods import grace

    q = torch.tensor([0.0, 0.05, 0.5, 0.95, 1.0])
    return {k: [round(float(x), 3) for x in v.quantile(q)] for k, v in grace.key_distances(model, kb).items()}


def measure(n_grace: int = 1000, n_weights: int = 100, n_sweep: int = 100, progress: bool = True) -> dict:
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import grace

    torch.set_num_threads(1)
    model = zoo.load("kb-lm")
    kb = load_kb()
    stream = grace.sequential_stream(model, kb, max(n_grace, n_weights, n_sweep), seed=0)
    base = grace.top1(model, stream["test_prompts"]) == torch.tensor(stream["test_targets"])
    out: dict = {"settings": {"stream_seed": 0, "test_facts": len(stream["test_prompts"]),
                              "grace_layer": grace.default_layer(model), "eps_init": grace.GraceHparams().eps_init,
                              "weight_layer": WEIGHT_LAYER, "metric": "top-1 next token (TRR: true object of "
                              "never-edited facts; ERR and paraphrase: target_new of the edits so far)"},
                 "unedited_TRR": round(float(base.float().mean()), 4), "rows": {}, "seconds": {}}
    out["key_distances"] = distances(model, kb)
    t = time.time()
    out["rows"]["GRACE"] = grace.sequential_editing(model, kb, "grace", n_grace, (1, 10, 100, 1000),
                                                    stream=stream, progress=progress)
    out["seconds"]["GRACE"] = round(time.time() - t)
    print(json.dumps(out["rows"]["GRACE"]), flush=True)
    t = time.time()
    out["rows"][f"GRACE eps {EPS_WIDE}"] = grace.sequential_editing(
        model, kb, "grace", n_grace, (1, 10, 100, 1000), eps_init=EPS_WIDE, stream=stream, progress=progress)
    out["seconds"][f"GRACE eps {EPS_WIDE}"] = round(time.time() - t)
    out["eps_sweep"] = {}
    for eps in EPS_SWEEP:
        t = time.time()
        rows = grace.sequential_editing(model, kb, "grace", n_sweep, (10, n_sweep), eps_init=eps, stream=stream,
                                        progress=False)
        out["eps_sweep"][str(eps)] = rows
        out["seconds"][f"GRACE eps {eps}"] = round(time.time() - t)
        print(eps, json.dumps(rows), flush=True)
    for name, method in (("FT-L", "ft-l"), ("FT", "ft"), ("ROME", "rome")):
        t = time.time()
        out["rows"][name] = grace.sequential_editing(model, kb, method, n_weights, (1, 10, 100), layer=WEIGHT_LAYER,
                                                     stream=stream, progress=progress)
        out["seconds"][name] = round(time.time() - t)
        print(name, json.dumps(out["rows"][name]), flush=True)
    return out


def main(write: bool = False) -> dict:
    out = measure()
    print(json.dumps(out, indent=1))
    if write:
        from mi_course import zoo

        print("written to", zoo.card("kb-lm").write_measured("week09_grace", out))
    return out


if __name__ == "__main__":
    main("--write" in sys.argv)

"""Measure week 10's bias study on the shipped ``kb-lm`` (Chintam et al. 2023 on the planted job-gender skew).

    python benchmarks/kb_bias_figures.py            # print
    python benchmarks/kb_bias_figures.py --write    # also write zoo/models/kb-lm/measured_week10_bias.json

The bias B on held-out names (40 name pairs x 6 job templates) before and after fine-tuning on
gender-swapped training text: only the top-2 located components (by causal mediation) and as many
random heads and MLPs (3 seeds), at two learning rates; the top-4 and a random set like it; every
head's and MLP's output weights; the whole model at three learning rates; with the damage (held-out
recall, loss on training documents) and seconds. ``tests/test_kb_bias_figures.py`` re-measures a
subset (B before, the top components' effects).
"""

from __future__ import annotations

import json
import sys

import torch

def _round(x):
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def main(write: bool = False) -> dict:
    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.methods import bias_components as bc

    torch.set_num_threads(1)
    model, kb = zoo.load("kb-lm"), load_kb()
    fig = bc.bias_study(model, kb)
    fig = _round(fig)
    print(json.dumps({k: v for k, v in fig.items() if k not in ("components",)}, indent=1), flush=True)
    print("top components:", [(e["component"], e["effect"]) for e in fig["components"][:8]])
    if write:
        path = zoo.card("kb-lm").write_measured("week10_bias", fig)
        print("wrote", path)
    return fig


if __name__ == "__main__":
    main(write="--write" in sys.argv)

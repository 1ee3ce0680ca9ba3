"""Precompute ``text-lm``'s top-activating trigger prefixes over its whole held-out split.

Searching ~128k tokens for the top 20 activations of all 2,048 neurons takes minutes on a
small CPU, too slow for a notebook; the result is shipped beside the checkpoint
(``zoo/models/text-lm/top_activations.safetensors`` + ``.json`` with its sha256 and the
checkpoint's). Rebuild after retraining ``text-lm``::

    python -m mi_course.training.textlm_triggers
"""

from __future__ import annotations

import torch

from mi_course import zoo
from mi_course.methods import ffn_memories
from mi_course.training import textlm_recipe
from mi_course.zoo.cards import MODELS_DIR

N_WINDOWS = 1000  # every non-overlapping 128-token window of the held-out split (~127k tokens searched)
K = 20


@torch.no_grad()
def build(name: str = "text-lm") -> dict:
    model = zoo.load(name)
    tokens = textlm_recipe.heldout_batch(n=N_WINDOWS)
    return ffn_memories.save_top_activations(model, tokens, MODELS_DIR / name / ffn_memories.TOP_ACTIVATIONS_FILE,
                                             zoo.card(name).sha256, k=K)


if __name__ == "__main__":
    print(build())

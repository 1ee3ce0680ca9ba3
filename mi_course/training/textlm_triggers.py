"""Precompute a text model's top-activating trigger prefixes over held-out text (week 03).

Searching ~130k tokens for the top 20 activations of every MLP neuron takes a minute or more on a
small CPU, too slow for a notebook; the result is shipped beside the checkpoint
(``zoo/models/<name>/top_activations.safetensors`` + ``.json`` with its sha256, the checkpoint's and
the settings below). Rebuild after retraining the model::

    python -m mi_course.training.textlm_triggers            # text-lm-v2 (week 03's model)
    python -m mi_course.training.textlm_triggers text-lm    # the old text-lm

``text-lm-v2`` is searched over the 512 held-out windows of 256 tokens shipped beside it
(``zoo.text.windows(name, "heldout", 512)``: the same on every machine), 130,560 positions; the file is
about 1.5 MB. ``text-lm`` (v1) was searched over every non-overlapping 128-token window of its held-out
split (1,000 windows, 127,000 positions).
"""

from __future__ import annotations

import sys

import torch

from mi_course import zoo
from mi_course.methods import ffn_memories
from mi_course.zoo.cards import MODELS_DIR

K = 20
# windows and their length searched for each model (week 03 reads every one of them)
SETTINGS = {
    "text-lm-v2": {"windows": 512, "length": 256,
                   "source": "zoo.text.windows('text-lm-v2', 'heldout', 512, length=256): the held-out windows "
                             "shipped beside the checkpoint (heldout_windows.safetensors), all of them"},
    "text-lm": {"windows": 1000, "length": 128,
                "source": "textlm_recipe.heldout_batch(n=1000): every non-overlapping 128-token window of the "
                          "held-out split"},
}


def search_windows(name: str) -> torch.Tensor:
    """The ``[windows, length]`` held-out tokens searched for ``name``."""
    s = SETTINGS[name]
    if name == "text-lm":
        from mi_course.training import textlm_recipe

        return textlm_recipe.heldout_batch(n=s["windows"], length=s["length"])
    from mi_course.zoo import text

    return text.windows(name, "heldout", s["windows"], length=s["length"])


@torch.no_grad()
def build(name: str = "text-lm-v2") -> dict:
    model = zoo.load(name)
    tokens = search_windows(name)
    return ffn_memories.save_top_activations(model, tokens, MODELS_DIR / name / ffn_memories.TOP_ACTIVATIONS_FILE,
                                             zoo.card(name).sha256, k=K, source=SETTINGS[name]["source"])


if __name__ == "__main__":
    print(build(*sys.argv[1:2]))

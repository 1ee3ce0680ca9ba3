"""Causal scrubbing of IOI hypotheses (Chan et al. 2022), at the level of head outputs.

A hypothesis says, for each head, **which feature of the prompt its output depends on**. If it
is right, the head's output may be replaced by its output on *another* prompt that agrees on
that feature, and the model's behaviour must survive. Scrubbing does exactly that for every
head at once: each head's output ``z`` comes from its own freshly drawn prompt, drawn to agree
with the real prompt on the hypothesis' feature for that head; a head the hypothesis leaves out
gets a prompt that agrees on nothing (a random prompt of the same template). MLPs, embeddings
and the unembedding run on the real prompt, fed with the scrubbed heads.

Features (:data:`FEATURES`), for a prompt with names IO and S in order ABBA or BABA:

==========  ===================================================================
``all``     the head is not scrubbed (its output on the real prompt)
``names``   same IO, S and order; new place and object
``io``      same IO name; new S, order, place and object
``s``       same S name *and* its position (the order); new IO, place and object
``order``   same order (ABBA/BABA); new names, place and object
``nothing`` a random prompt of the same template
==========  ===================================================================

The score is the share of the logit difference the scrubbed model keeps, on the scale from
"every head scrubbed to ``nothing``" (0) to the real model (1), as in the paper's "loss
recovered". This is a depth-one scrub: each head's inputs are resampled together (the paper
recurses through the hypothesis graph, resampling each input of each node separately).
"""

from __future__ import annotations

import random
from typing import Mapping

import torch

from mi_course.data import ioi
from mi_course.errors import InputError
from mi_course.methods.components import Component, all_heads, as_components
from mi_course.zoo import hooks as hk

FEATURES = ("all", "names", "io", "s", "order", "nothing")


def resample(ds, feature: str, seed: int = 0):
    """A dataset like ``ds`` (same templates, prompt by prompt) whose prompt i agrees with
    ``ds``'s prompt i on ``feature`` only (see the module docstring)."""
    if feature not in FEATURES:
        raise InputError(f"feature must be one of {FEATURES}, got {feature!r}")
    if not ds.aligned or getattr(ds, "encoder", "ioi-lm") != "ioi-lm":
        raise InputError("causal scrubbing needs an aligned ioi-lm dataset (one template, no prefixes)")
    if feature == "all":
        return ds
    rng = random.Random(seed)
    orders, names, fills = [], [], []
    for order, (a, b, s), (place, obj, prefix) in zip(ds.orders, ds.names, ds.fills):
        io = a if s == b else b
        new_place, new_obj = rng.choice(ioi.PLACES), rng.choice(ioi.OBJECTS)
        if feature == "names":
            o, i2, s2 = order, io, s
        elif feature == "io":
            o, i2 = rng.choice(("ABBA", "BABA")), io
            s2 = rng.choice([n for n in ioi.NAMES if n != io])
        elif feature == "s":
            o, s2 = order, s
            i2 = rng.choice([n for n in ioi.NAMES if n != s])
        else:  # order / nothing
            o = order if feature == "order" else rng.choice(("ABBA", "BABA"))
            i2, s2 = rng.sample(ioi.NAMES, 2)
        orders.append(o)
        names.append((i2, s2, s2) if o == "ABBA" else (s2, i2, s2))
        fills.append((new_place, new_obj, prefix))
    return ioi._build(ds.template_ids, orders, names, fills, "ioi-lm")


@torch.no_grad()
def scrubbed_logits(model, ds, hypothesis: Mapping, seed: int = 0) -> torch.Tensor:
    """Logits ``[batch, pos, vocab]`` of the model on ``ds`` with every head scrubbed according to
    ``hypothesis`` (head -> feature; heads not named get ``"nothing"``). A head is
    ``components.head(L, H)``, ``(L, H)`` or ``"L.H"``."""
    hyp: dict[Component, str] = {}
    for c, f in dict(hypothesis).items():
        if isinstance(c, str):  # "L.H", as circuit_discovery names heads
            try:
                c = tuple(int(x) for x in c.split("."))
            except ValueError:
                raise InputError(f"a head is named 'layer.head' (e.g. '1.0'), got {c!r}") from None
        (c,) = as_components(model, [c])
        if c.kind != "head":
            raise InputError(f"hypotheses name heads, got {c}")
        if f not in FEATURES:
            raise InputError(f"feature of {c} must be one of {FEATURES}, got {f!r}")
        hyp[(c.layer, c.index)] = f
    source: dict[tuple[int, int], torch.Tensor] = {}
    for n, c in enumerate(all_heads(model)):
        f = hyp.get((c.layer, c.index), "nothing")
        if f == "all":
            continue
        other = resample(ds, f, seed=seed * 1000 + n)
        name = hk.z(c.layer)
        _, cache = model.run_with_cache(other.tokens, names_filter=lambda x, name=name: x == name)
        source[(c.layer, c.index)] = cache[name][:, :, c.index]
    hooks = []
    for layer in range(model.cfg.n_layers):
        heads = [h for (lay, h) in source if lay == layer]
        if not heads:
            continue

        def hook(z, hook, layer=layer, heads=heads):
            z = z.clone()
            for h in heads:
                z[:, :, h] = source[(layer, h)]
            return z

        hooks.append((hk.z(layer), hook))
    return model.run_with_hooks(ds.tokens, fwd_hooks=hooks)


def scrub_score(model, ds, hypothesis: Mapping, metric, n_seeds: int = 3,
                all_scrubbed: float | None = None) -> dict[str, float]:
    """``{"model", "scrubbed", "all_scrubbed", "score", "score_min", "score_max"}``: the metric of the
    real model, of the scrubbed one and of the one with every head scrubbed to ``nothing`` (means
    over ``n_seeds`` draws), ``score = (scrubbed - all_scrubbed) / (model - all_scrubbed)`` and the
    smallest and largest score of a single draw. ``all_scrubbed``: reuse that baseline (it does not
    depend on the hypothesis) instead of measuring it again."""
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise InputError(f"n_seeds must be a positive int, got {n_seeds!r}")
    with torch.no_grad():
        full = float(metric(model(ds.tokens)))
    draws = [float(metric(scrubbed_logits(model, ds, hypothesis, s))) for s in range(n_seeds)]
    if all_scrubbed is None:
        all_scrubbed = sum(float(metric(scrubbed_logits(model, ds, {}, s))) for s in range(n_seeds)) / n_seeds
    span = full - all_scrubbed
    scores = [(d - all_scrubbed) / span for d in draws]
    return {"model": full, "scrubbed": sum(draws) / n_seeds, "all_scrubbed": all_scrubbed,
            "score": sum(scores) / n_seeds, "score_min": min(scores), "score_max": max(scores)}

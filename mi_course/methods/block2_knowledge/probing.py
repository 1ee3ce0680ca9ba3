"""Linear probes for a person's attributes at the subject's last token (week 07).

Does the model "know" a fact about a person *before* the relation is named? Read the residual
stream at the last token of the bare name ("<|endoftext|> Kalo Durmer") at each layer, train
a linear classifier (multinomial logistic regression) for an attribute (birth country, job,
gender, ...) on some people, and test it on *other* people. A probe that generalises to unseen
people means the attribute is written along a shared direction, not just that the name is
recognisable.

Baselines (Hewitt & Liang 2019's "control task" idea): the same probe trained on *shuffled*
labels (what a probe of this size can fit by memorising), and the majority class.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from mi_course.errors import InputError


@torch.no_grad()
def subject_last_token_acts(model, kb, prompts: Sequence[str], subjects: Sequence[str], layer: int) -> torch.Tensor:
    """``[n, d_model]``: the residual stream entering block ``layer`` (``blocks.{layer}.hook_resid_pre``;
    ``layer == n_layers`` gives the final ``blocks.{n_layers-1}.hook_resid_post``) at the last token
    of ``subjects[i]`` in ``prompts[i]``."""
    from mi_course.methods.knowledge_crawl import encode_prompts

    n_layers = model.cfg.n_layers
    if not 0 <= layer <= n_layers:
        raise InputError(f"layer must be in 0..{n_layers} (n_layers = final residual stream), got {layer}.")
    if len(prompts) != len(subjects) or not prompts:
        raise InputError(f"need one subject per prompt, got {len(prompts)} prompts and {len(subjects)} subjects.")
    pos = torch.tensor([kb.subject_token_span(p, s)[1] - 1 for p, s in zip(prompts, subjects)])
    tokens, _ = encode_prompts(kb, list(prompts))
    name = f"blocks.{layer}.hook_resid_pre" if layer < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name][torch.arange(len(pos)), pos].float()


@torch.no_grad()
def all_layer_acts(model, kb, prompts: Sequence[str], subjects: Sequence[str]) -> torch.Tensor:
    """``[n_layers + 1, n, d_model]``: :func:`subject_last_token_acts` at every layer, in one forward pass."""
    from mi_course.methods.knowledge_crawl import encode_prompts

    pos = torch.tensor([kb.subject_token_span(p, s)[1] - 1 for p, s in zip(prompts, subjects)])
    tokens, _ = encode_prompts(kb, list(prompts))
    L = model.cfg.n_layers
    names = [f"blocks.{l}.hook_resid_pre" for l in range(L)] + [f"blocks.{L - 1}.hook_resid_post"]
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    rows = torch.arange(len(pos))
    return torch.stack([cache[n][rows, pos].float() for n in names])


def train_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, steps: int = 200, lr: float = 0.05,
                weight_decay: float = 1e-3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression, full batch, Adam. ``x [n, d]``, ``y [n]`` (ints < ``n_classes``).

    Features are standardised with the *training* mean and std. Returns ``(W [d, n_classes],
    b [n_classes], mean [d], std [d])``; predict with ``((x - mean) / std) @ W + b``.
    """
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise InputError(f"expected x [n, d] and y [n], got {list(x.shape)} and {list(y.shape)}.")
    if int(y.max()) >= n_classes or int(y.min()) < 0:
        raise InputError(f"labels must be in 0..{n_classes - 1}.")
    with torch.enable_grad():
        g = torch.Generator().manual_seed(seed)
        mean, std = x.mean(0), x.std(0) + 1e-6
        z = (x - mean) / std
        W = (torch.randn(x.shape[1], n_classes, generator=g) * 0.01).requires_grad_()
        b = torch.zeros(n_classes, requires_grad=True)
        opt = torch.optim.Adam([W, b], lr=lr)
        for _ in range(steps):
            loss = F.cross_entropy(z @ W + b, y) + weight_decay * (W ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return W.detach(), b.detach(), mean, std


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   n_classes: int, steps: int = 200, seed: int = 0) -> float:
    """Train :func:`train_probe` on ``train_*`` and return its accuracy on ``test_*`` (other people)."""
    W, b, mean, std = train_probe(train_x, train_y, n_classes, steps=steps, seed=seed)
    pred = (((test_x - mean) / std) @ W + b).argmax(-1)
    return (pred == test_y).float().mean().item()


def shuffled_labels(y: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The control task: the same labels in a random order (the label distribution is kept)."""
    g = torch.Generator().manual_seed(seed)
    return y[torch.randperm(len(y), generator=g)]


def attribute_labels(kb, subjects: Sequence[str], attribute: str) -> tuple[torch.Tensor, list[str]]:
    """``(labels [n], class names)`` of ``attribute`` for ``subjects``: a relation of the KB, or
    ``"gender"``, or ``"job_group"`` (the planted skew's two groups)."""
    if attribute == "gender":
        classes = ["female", "male"]
        vals = [kb.gender(s) for s in subjects]
    elif attribute == "job_group":
        classes = ["female", "male"]
        vals = ["female" if kb.object_of(s, "job") in kb.job_groups["female"] else "male" for s in subjects]
    else:
        classes = kb.objects(attribute)
        vals = [kb.object_of(s, attribute) for s in subjects]
    return torch.tensor([classes.index(v) for v in vals]), classes


def split_people(kb, test_share: float = 0.3, seed: int = 0) -> tuple[list[str], list[str]]:
    """A fixed random split of the people into probe-training and probe-test people."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(kb.subjects), generator=g).tolist()
    n_test = int(round(test_share * len(order)))
    return [kb.subjects[i] for i in order[n_test:]], [kb.subjects[i] for i in order[:n_test]]


@torch.no_grad()
def probe_by_layer(model, kb, attribute: str, context: str = "{}", test_share: float = 0.3, seed: int = 0,
                   steps: int = 200, acts: torch.Tensor | None = None) -> dict:
    """Probe ``attribute`` at the subject's last token at every layer, on held-out people.

    ``context`` is the text around the name (``"{}"``: the bare name). Returns ``{"accuracy":
    [n_layers+1], "shuffled": [n_layers+1], "majority": float, "chance": float, "classes": [...]}``.
    Pass ``acts`` (from :func:`all_layer_acts` on ``context`` for every person, in ``kb.subjects``
    order) to reuse activations.
    """
    train, test = split_people(kb, test_share, seed)
    if acts is None:
        prompts = [context.format(s) for s in kb.subjects]
        acts = all_layer_acts(model, kb, prompts, kb.subjects)
    index = {s: i for i, s in enumerate(kb.subjects)}
    tr, te = torch.tensor([index[s] for s in train]), torch.tensor([index[s] for s in test])
    y_tr, classes = attribute_labels(kb, train, attribute)
    y_te, _ = attribute_labels(kb, test, attribute)
    acc, shuf = [], []
    for layer in range(acts.shape[0]):
        acc.append(probe_accuracy(acts[layer][tr], y_tr, acts[layer][te], y_te, len(classes), steps, seed))
        shuf.append(probe_accuracy(acts[layer][tr], shuffled_labels(y_tr, seed), acts[layer][te], y_te,
                                   len(classes), steps, seed))
    majority = (y_te == torch.bincount(y_tr, minlength=len(classes)).argmax()).float().mean().item()
    return {"accuracy": acc, "shuffled": shuf, "majority": majority, "chance": 1 / len(classes), "classes": classes}

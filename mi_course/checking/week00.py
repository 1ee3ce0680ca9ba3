"""Checkers for week 00: a tour of the toolkit (losses from logits, patching with hooks)."""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import toolkit


# -- 1. next-token loss ------------------------------------------------------------------------
def _loss_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, p, v in [(1, 4, 5), (3, 9, 30)]:
        out.append(Case(f"seed {seed}, batch={b} pos={p} d_vocab={v}", {
            "logits": torch.randn(b, p, v, generator=g) * 2, "tokens": torch.randint(0, v, (b, p), generator=g)}))
    return out


def _same_position(logits, tokens):
    logp = logits[:, 1:].log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0]


def _no_log_softmax(logits, tokens):
    return -logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]


def _mean(logits, tokens):
    return toolkit.next_token_loss(logits, tokens).mean()


NEXT_TOKEN_LOSS = Exercise(
    id="w00_next_token_loss",
    title="next_token_loss",
    reference=toolkit.next_token_loss,
    cases=_loss_cases,
    mistakes=[
        Mistake("same position", _same_position,
                "the logits at position i predict token i+1: pair logits[:, :-1] with tokens[:, 1:]."),
        Mistake("raw logits", _no_log_softmax,
                "turn logits into log-probabilities first (log_softmax over the vocabulary)."),
        Mistake("averaged", _mean,
                "return the loss at every position, shape [batch, pos-1]; do not average."),
    ],
    hint="logp = logits[:, :-1].log_softmax(-1); take -logp at the index tokens[:, 1:] (torch.gather).",
    atol=1e-4,
)


def check_next_token_loss(fn, seed: int | None = None) -> bool:
    """Check ``next_token_loss(logits, tokens) -> [batch, pos-1]``."""
    return check(NEXT_TOKEN_LOSS, fn, seed)


# -- 2. activation patching with a hook --------------------------------------------------------
@lru_cache(maxsize=1)
def _model():
    from mi_course import zoo

    return zoo.load("attn-only-2l")


def _patch_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    # layer 0 reads embeddings: patch inside the corrupted first copy (positions 1..10) there
    for layer, pos in [(1, 14), (0, int(torch.randint(1, 11, (1,), generator=g)))]:
        clean = repeated_random_tokens(2, 10, model.cfg.d_vocab, seed=seed)
        corrupt = clean.clone()
        corrupt[:, 1:11] = torch.randint(1, model.cfg.d_vocab, (2, 10), generator=g)  # a different first copy
        out.append(Case(f"seed {seed}, layer {layer}, pos {pos}",
                        {"model": model, "clean_tokens": clean, "corrupt_tokens": corrupt, "layer": layer, "pos": pos}))
    return out


def _patch_all(model, clean_tokens, corrupt_tokens, layer, pos):
    name = f"blocks.{layer}.hook_resid_pre"
    _, cache = model.run_with_cache(clean_tokens, names_filter=lambda n: n == name)
    with torch.no_grad():
        return model.run_with_hooks(corrupt_tokens, fwd_hooks=[(name, lambda r, hook: cache[name])])


def _wrong_direction(model, clean_tokens, corrupt_tokens, layer, pos):
    return toolkit.patch_resid_pre(model, corrupt_tokens, clean_tokens, layer, pos)


def _no_patch(model, clean_tokens, corrupt_tokens, layer, pos):
    with torch.no_grad():
        return model(corrupt_tokens)


PATCH = Exercise(
    id="w00_patch_resid_pre",
    title="patch_resid_pre",
    reference=toolkit.patch_resid_pre,
    cases=_patch_cases,
    mistakes=[
        Mistake("every position", _patch_all,
                "you patched the residual stream at every position; replace only position `pos`."),
        Mistake("wrong direction", _wrong_direction,
                "you ran the clean input and patched in the corrupted activation; run the *corrupted* input and "
                "patch in the *clean* activation."),
        Mistake("no patch", _no_patch,
                "these are the corrupted run's logits unchanged: did your hook return the edited tensor, and "
                "is the hook name 'blocks.{layer}.hook_resid_pre'?"),
    ],
    hint="cache the clean run; in a hook on blocks.{layer}.hook_resid_pre, copy clean[:, pos] into the corrupted resid; "
         "return model.run_with_hooks(corrupt_tokens, fwd_hooks=[(name, hook)]).",
    atol=1e-4,
)


def check_patch_resid_pre(fn, seed: int | None = None) -> bool:
    """Check ``patch_resid_pre(model, clean_tokens, corrupt_tokens, layer, pos) -> logits``."""
    return check(PATCH, fn, seed)


EXERCISES = {ex.id: ex for ex in [NEXT_TOKEN_LOSS, PATCH]}

"""Previous-token and induction heads (Elhage et al. 2021; Olsson et al. 2022)."""

from __future__ import annotations

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.zoo import hooks as hk
from mi_course import validation as check


def prev_token_scores(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from each position to the one before it.

    pattern: ``[batch, head, query_pos, key_pos]``. Returns ``[head]``. Position 0 has no
    previous token and is left out.
    """
    expect_shape("pattern", pattern, (None, None, None, None), "Expected [batch, head, query_pos, key_pos].")
    check.finite("pattern", pattern)
    n = pattern.shape[-1]
    q = torch.arange(1, n)
    return pattern[:, :, q, q - 1].mean(dim=(0, 2))


def induction_scores(pattern: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Mean attention from each token of the second copy to the token *after* its first copy.

    pattern: ``[batch, head, query_pos, key_pos]`` on :func:`repeated_random_tokens`
    (with ``<bos>``: query ``i`` in ``seq_len+1 .. 2*seq_len`` looks at ``i - seq_len + 1``).
    Returns ``[head]``, between 0 and 1.
    """
    expect_shape("pattern", pattern, (None, None, None, None), "Expected [batch, head, query_pos, key_pos].")
    n = pattern.shape[-1]
    if n != 2 * seq_len + 1:
        raise InputError(
            f"pattern covers {n} positions but repeated tokens with seq_len={seq_len} have "
            f"{2 * seq_len + 1} (<bos> + 2 copies)."
        )
    q = torch.arange(seq_len + 1, 2 * seq_len + 1)
    return pattern[:, :, q, q - seq_len + 1].mean(dim=(0, 2))


def duplicate_token_scores(pattern: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Mean attention from each token of the second copy to the *same* token in the first copy."""
    expect_shape("pattern", pattern, (None, None, 2 * seq_len + 1, 2 * seq_len + 1))
    q = torch.arange(seq_len + 1, 2 * seq_len + 1)
    return pattern[:, :, q, q - seq_len].mean(dim=(0, 2))


@torch.no_grad()
def head_scores(model, tokens: torch.Tensor, seq_len: int) -> dict[str, torch.Tensor]:
    """Previous-token, induction and duplicate-token scores of every head, each ``[layer, head]``."""
    check.tokens("tokens", tokens, model)
    expect_shape("tokens", tokens, (None, 2 * check.integer("seq_len", seq_len, 1) + 1),
                 "Expected [batch, 2 * seq_len + 1]: BOS, then a random sequence repeated once.")
    _, cache = model.run_with_cache(tokens, names_filter=hk.only("pattern"))
    out = {"prev_token": [], "induction": [], "duplicate": []}
    for layer in range(model.cfg.n_layers):
        p = cache["pattern", layer]
        out["prev_token"].append(prev_token_scores(p))
        out["induction"].append(induction_scores(p, seq_len))
        out["duplicate"].append(duplicate_token_scores(p, seq_len))
    return {k: torch.stack(v) for k, v in out.items()}


def per_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy at each position: ``[batch, pos-1]`` from logits ``[batch, pos, vocab]``."""
    check.tokens("tokens", tokens)
    expect_shape("logits", logits, (tokens.shape[0], tokens.shape[1], None))
    check.token_ids("tokens", tokens.flatten(), logits.shape[-1])
    logp = logits[:, :-1].log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0]


def repeated_half_losses(loss: torch.Tensor, seq_len: int) -> tuple[float, float]:
    """Mean loss on the first copy and on the second copy, from :func:`per_token_loss` output.

    ``loss[:, i]`` is the loss of predicting token ``i+1``. The first copy's tokens are
    ``1..seq_len``; predicting its first token (from ``<bos>``) and the second copy's first
    token (which follows the first copy's last) are both left out: neither can be induced.
    """
    expect_shape("loss", loss, (None, 2 * seq_len))
    first = loss[:, 1:seq_len].mean().item()
    second = loss[:, seq_len + 1 :].mean().item()
    return first, second

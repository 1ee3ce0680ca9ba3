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


def earlier_occurrences(tokens: torch.Tensor, ngram: int = 2) -> torch.Tensor:
    """For each position, the most recent earlier position that ends the same ``ngram`` tokens.

    ``tokens [batch, pos]`` -> ``[batch, pos]`` (long): ``s`` where ``tokens[s-ngram+1 .. s]`` equals
    ``tokens[t-ngram+1 .. t]`` with ``s + 1 < t`` (so the token after ``s`` is an earlier position than
    ``t`` and not ``t`` itself), else ``-1``. On real text these are the places where an induction head
    can act: at ``t`` it attends to ``s + 1`` and predicts that token again.
    """
    check.tokens("tokens", tokens)
    ngram = check.integer("ngram", ngram, 1)
    b, n = tokens.shape
    same = tokens[:, :, None] == tokens[:, None, :]  # [b, t, s]
    for k in range(1, ngram):  # the k-th token before must match too
        shifted = torch.zeros_like(same)
        shifted[:, k:, k:] = same[:, :-k, :-k]
        same = same & shifted
    t = torch.arange(n)
    allowed = (t[None, :] + 1 < t[:, None]) & (t[None, :] >= ngram - 1)  # s + 1 < t, full n-gram at s
    same = same & allowed
    # the latest matching s: argmax over s of (s+1) * match
    score = same * (t[None, None, :] + 1)
    best = score.max(dim=-1)
    return torch.where(best.values > 0, best.indices, torch.full_like(best.indices, -1))


@torch.no_grad()
def real_text_induction(model, tokens: torch.Tensor, ngram: int = 2, seed: int = 0) -> dict:
    """Induction heads at work on real text (Olsson et al. 2022, section "induction heads in the wild").

    ``tokens [batch, pos]``: windows of ordinary text. At every position ``t`` whose last ``ngram``
    tokens occurred before (ending at ``s``, see :func:`earlier_occurrences`), an induction head
    attends to ``s + 1``. Returns

    - ``induction_attention [layer, head]``: mean attention from such ``t`` to ``s + 1``;
    - ``random_attention [layer, head]``: mean attention from the same ``t`` to a random earlier
      position (the baseline: what attending "somewhere before" gives by chance);
    - ``copy_loss`` / ``other_loss``: the model's mean loss on the next token where it repeats what
      followed the earlier occurrence (``tokens[t+1] == tokens[s+1]``: copying predicts it), and on
      every other next token; ``n_matches``, ``n_copyable`` and ``n_other`` (how many positions).
    """
    check.tokens("tokens", tokens, model)
    if tokens.shape[1] < ngram + 3:
        raise InputError(f"windows of {tokens.shape[1]} tokens are too short for {ngram}-gram repeats")
    prev = earlier_occurrences(tokens, ngram)
    bi, ti = torch.nonzero(prev >= 0, as_tuple=True)
    if bi.numel() == 0:
        raise InputError(f"no {ngram}-gram occurs twice in these windows: nothing for an induction head to do")
    target = prev[bi, ti] + 1
    g = torch.Generator().manual_seed(seed)
    rand = (torch.rand(ti.shape, generator=g) * ti).long()  # uniform over 0 .. t-1
    logits, cache = model.run_with_cache(tokens, names_filter=hk.only("pattern"))
    ind, rnd = [], []
    for layer in range(model.cfg.n_layers):
        p = cache["pattern", layer]  # [b, h, q, k]
        ind.append(p[bi, :, ti, target].mean(0))
        rnd.append(p[bi, :, ti, rand].mean(0))
    copy, other = copy_losses(logits, tokens, ngram)
    return {
        "induction_attention": torch.stack(ind), "random_attention": torch.stack(rnd),
        "copy_loss": copy["loss"], "other_loss": other["loss"],
        "n_matches": int(bi.numel()), "n_copyable": copy["n"], "n_other": other["n"],
    }


def copy_losses(logits: torch.Tensor, tokens: torch.Tensor, ngram: int = 2) -> tuple[dict, dict]:
    """Mean next-token loss where copying predicts the token, and everywhere else.

    ``logits [batch, pos, vocab]`` (e.g. from an ablated run), ``tokens [batch, pos]``. A next token
    ``tokens[t+1]`` is *copyable* when the ``ngram`` ending at ``t`` occurred before (ending at ``s``,
    :func:`earlier_occurrences`) and ``tokens[s+1] == tokens[t+1]``. Position 0 (predicting from
    ``<bos>`` alone) is left out of both. Returns ``({"loss", "n"}, {"loss", "n"})``.
    """
    loss = per_token_loss(logits, tokens)  # [b, pos-1]: loss[:, t] predicts token t+1
    prev = earlier_occurrences(tokens, ngram)[:, :-1]
    b, t = torch.nonzero(prev >= 0, as_tuple=True)
    copyable = torch.zeros_like(loss, dtype=torch.bool)
    hit = tokens[b, t + 1] == tokens[b, prev[b, t] + 1]
    copyable[b[hit], t[hit]] = True
    other = ~copyable
    other[:, 0] = False
    copyable[:, 0] = False

    def mean(mask):
        return {"loss": float(loss[mask].mean()) if mask.any() else float("nan"), "n": int(mask.sum())}

    return mean(copyable), mean(other)

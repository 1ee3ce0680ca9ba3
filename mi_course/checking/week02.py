"""Checkers for week 02: A Mathematical Framework for Transformer Circuits; induction heads.

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import ablation, attention, circuits, induction


# -- 1. attention pattern ----------------------------------------------------------------------
def _qk_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, n, h, d in [(1, 5, 1, 4), (2, 7, 3, 8), (3, 11, 4, 16)]:
        q = torch.randn(b, n, h, d, generator=g) * 2
        k = torch.randn(b, n, h, d, generator=g) * 2
        out.append(Case(f"seed {seed}, batch={b} pos={n} heads={h} d_head={d}", {"q": q, "k": k}))
    return out


def _no_mask(q, k):
    return (torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])).softmax(-1)


def _no_scale(q, k):
    return attention.attention_pattern(q * math.sqrt(q.shape[-1]), k)


def _softmax_queries(q, k):
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = q.shape[1]
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    return s.masked_fill(mask, float("-inf")).softmax(-2).nan_to_num(0.0)


ATTENTION_PATTERN = Exercise(
    id="w02_attention_pattern",
    title="attention_pattern",
    reference=attention.attention_pattern,
    cases=_qk_cases,
    mistakes=[
        Mistake("no causal mask", _no_mask,
                "your pattern lets a position attend to later positions. Before the softmax, set the "
                "scores of keys after the query to -inf (torch.triu builds the mask)."),
        Mistake("no scaling", _no_scale,
                "the scores are not scaled: divide q.k by sqrt(d_head) before the softmax."),
        Mistake("softmax over queries", _softmax_queries,
                "each row (one query) must sum to 1: take the softmax over the key dimension (the last one)."),
    ],
    hint="rows (queries) must sum to 1 over keys, and entries above the diagonal must be 0.",
)


def check_attention_pattern(fn, seed: int | None = None) -> bool:
    """Check ``attention_pattern(q, k) -> [batch, head, query_pos, key_pos]``."""
    return check(ATTENTION_PATTERN, fn, seed)


# -- 2. previous-token score -------------------------------------------------------------------
def _pattern_cases(seed: int) -> list[Case]:
    """Causal patterns (rows sum to 1), some with a clear previous-token head."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, h, n in [(2, 3, 9), (4, 2, 15)]:
        q = torch.randn(b, n, h, 4, generator=g) * 3
        k = torch.randn(b, n, h, 4, generator=g) * 3
        p = attention.attention_pattern(q, k)
        prev = torch.zeros(n, n)
        prev[0, 0] = 1
        prev[torch.arange(1, n), torch.arange(n - 1)] = 1
        p[:, 0] = 0.8 * prev + 0.2 * p[:, 0]
        out.append(Case(f"seed {seed}, batch={b} heads={h} pos={n}", {"pattern": p}))
    return out


def _prev_self(pattern):
    return pattern.diagonal(dim1=-2, dim2=-1).mean((0, 2))


def _prev_with_pos0(pattern):
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).sum((0, 2)) / (pattern.shape[0] * pattern.shape[-1])


PREV_TOKEN = Exercise(
    id="w02_prev_token_scores",
    title="prev_token_scores",
    reference=induction.prev_token_scores,
    cases=_pattern_cases,
    mistakes=[
        Mistake("self attention", _prev_self,
                "you measured attention to the *same* position (the main diagonal); the previous token "
                "of query i is key i-1."),
        Mistake("averages over pos including 0", _prev_with_pos0,
                "position 0 has no previous token: average over the seq_len-1 queries 1..seq_len-1, not over all seq_len."),
    ],
    hint="for each head, average pattern[b, h, i, i-1] over the batch and over i = 1..seq_len-1.",
)


def check_prev_token_scores(fn, seed: int | None = None) -> bool:
    """Check ``prev_token_scores(pattern) -> [head]``."""
    return check(PREV_TOKEN, fn, seed)


# -- 3. induction score ------------------------------------------------------------------------
def _induction_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, h, L in [(2, 2, 5), (3, 4, 9)]:
        n = 2 * L + 1
        p = attention.attention_pattern(torch.randn(b, n, h, 4, generator=g) * 3, torch.randn(b, n, h, 4, generator=g) * 3)
        ind = torch.zeros(n, n)
        qs = torch.arange(L + 1, n)
        ind[qs, qs - L + 1] = 1
        ind[:L + 1, 0] = 1
        p[:, 0] = 0.7 * ind + 0.3 * p[:, 0]
        dup = torch.zeros(n, n)
        dup[qs, qs - L] = 1
        dup[:L + 1, 0] = 1
        p[:, 1] = 0.7 * dup + 0.3 * p[:, 1]
        out.append(Case(f"seed {seed}, batch={b} heads={h} seq_len={L}", {"pattern": p, "seq_len": L}))
    return out


def _ind_duplicate(pattern, seq_len):
    return induction.duplicate_token_scores(pattern, seq_len)


def _ind_off_by_two(pattern, seq_len):
    q = torch.arange(seq_len + 1, 2 * seq_len)
    return pattern[:, :, q, q - seq_len + 2].mean((0, 2))


def _ind_all_queries(pattern, seq_len):
    q = torch.arange(seq_len - 1, 2 * seq_len + 1)
    return pattern[:, :, q, (q - seq_len + 1).clamp(min=0)].mean((0, 2))


INDUCTION = Exercise(
    id="w02_induction_scores",
    title="induction_scores",
    reference=induction.induction_scores,
    cases=_induction_cases,
    mistakes=[
        Mistake("duplicate-token offset", _ind_duplicate,
                "you measured attention to the earlier copy of the *current* token (a duplicate-token head). "
                "An induction head attends to the token *after* it."),
        Mistake("offset one too far", _ind_off_by_two,
                "your offset is one too far forward: with <bos> at 0, query i in the second copy "
                "should look at key i - seq_len + 1."),
        Mistake("all queries", _ind_all_queries,
                "only queries in the second copy (positions seq_len+1 .. 2*seq_len) can do induction; "
                "leave out <bos> and the first copy."),
    ],
    hint="query i in the second copy (i = seq_len+1..2*seq_len) should attend to key i - seq_len + 1.",
)


def check_induction_scores(fn, seed: int | None = None) -> bool:
    """Check ``induction_scores(pattern, seq_len) -> [head]``."""
    return check(INDUCTION, fn, seed)


# -- 4. full QK circuit ------------------------------------------------------------------------
def _qk_circuit_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for v, dm, dh in [(6, 4, 2), (20, 16, 4)]:
        out.append(Case(f"seed {seed}, d_vocab={v} d_model={dm} d_head={dh}", {
            "W_E": torch.randn(v, dm, generator=g), "W_Q": torch.randn(dm, dh, generator=g),
            "W_K": torch.randn(dm, dh, generator=g)}))
    return out


def _dense(x):
    return x.AB if type(x).__name__ == "FactoredMatrix" else x


FULL_QK = Exercise(
    id="w02_full_qk_circuit",
    title="full_qk_circuit",
    reference=circuits.full_qk_circuit,
    cases=_qk_circuit_cases,
    mistakes=[
        Mistake("query/key swapped", lambda W_E, W_Q, W_K: circuits.full_qk_circuit(W_E, W_K, W_Q),
                "rows should be the query token and columns the key token: the query side uses W_Q."),
        Mistake("no embedding", lambda W_E, W_Q, W_K: W_Q @ W_K.T,
                "that is W_Q W_K^T in residual-stream space; the full circuit maps tokens to tokens: embed "
                "both sides with W_E."),
    ],
    hint="entry [i, j] is the attention score of query token i for key token j: embed both, then apply W_Q and W_K.",
    atol=1e-3,
)


def check_full_qk_circuit(fn, seed: int | None = None) -> bool:
    """Check ``full_qk_circuit(W_E, W_Q, W_K) -> [d_vocab, d_vocab]`` (tensor or FactoredMatrix)."""
    return check(FULL_QK, fn, seed)


# -- 5. K-composition score --------------------------------------------------------------------
def _comp_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for dm, dh in [(8, 2), (32, 8)]:
        ov = torch.randn(dm, dh, generator=g) @ torch.randn(dh, dm, generator=g)
        # a later QK matrix whose key side partly reads what the earlier OV writes
        qk = torch.randn(dm, dh, generator=g) @ torch.randn(dh, dm, generator=g) + 0.5 * ov.T
        out.append(Case(f"seed {seed}, d_model={dm}, rank {dh}", {"W_OV_early": ov, "W_QK_late": qk}))
    return out


def _q_comp(W_OV_early, W_QK_late):
    return circuits.composition_score(W_OV_early, W_QK_late)


def _unnormalised(W_OV_early, W_QK_late):
    return float((W_OV_early @ W_QK_late.T).norm())


K_COMPOSITION = Exercise(
    id="w02_k_composition_score",
    title="k_composition_score",
    reference=circuits.k_composition_score,
    cases=_comp_cases,
    mistakes=[
        Mistake("Q-composition", _q_comp,
                "that is Q-composition (the earlier head feeding the later head's queries). For K-composition "
                "the earlier head's output is read by the later head's *keys*: transpose W_QK."),
        Mistake("not normalised", _unnormalised,
                "divide by the Frobenius norms of both matrices, so the score lies between 0 and 1."),
    ],
    hint="score = ||A @ B||_F / (||A||_F * ||B||_F) with A = W_OV_early and B the later head's key-side map.",
    atol=1e-4,
)


def check_k_composition_score(fn, seed: int | None = None) -> bool:
    """Check ``k_composition_score(W_OV_early, W_QK_late) -> float``."""
    return check(K_COMPOSITION, fn, seed)


# -- 6. ablating a head ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _model():
    from mi_course import zoo

    return zoo.load("attn-only-2l")


def _ablation_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for layer, head in [(1, int(torch.randint(0, 4, (1,), generator=g))), (0, int(torch.randint(0, 4, (1,), generator=g)))]:
        tokens = repeated_random_tokens(3, 10, model.cfg.d_vocab, seed=seed + layer)
        out.append(Case(f"seed {seed}, head {layer}.{head}", {"model": model, "tokens": tokens, "layer": layer, "head": head}))
    return out


def _ablate_pos(model, tokens, layer, head):
    def hook(z, hook):
        z = z.clone()
        z[:, head] = 0.0
        return z
    logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)])
    return induction.per_token_loss(logits, tokens)


def _ablate_layer(model, tokens, layer, head):
    return induction.per_token_loss(
        ablation.ablate_heads(model, tokens, [(layer, h) for h in range(model.cfg.n_heads)]), tokens)


def _no_ablation(model, tokens, layer, head):
    return induction.per_token_loss(model(tokens), tokens)


ABLATION = Exercise(
    id="w02_ablated_head_loss",
    title="ablated_head_loss",
    reference=ablation.ablated_head_loss,
    cases=_ablation_cases,
    mistakes=[
        Mistake("indexed position", _ablate_pos,
                "you zeroed a *position*, not a head: hook_z is [batch, pos, head, d_head], so the head is the third index."),
        Mistake("whole layer", _ablate_layer,
                "you ablated every head of the layer; zero only the one head."),
        Mistake("no ablation", _no_ablation,
                "the loss is that of the unablated model: did your hook return the modified tensor, and did you pass it to run_with_hooks?"),
    ],
    hint="hook 'blocks.{layer}.attn.hook_z', set z[:, :, head] to 0, and compute the per-token loss of the logits.",
    atol=1e-4,
)


def check_ablated_head_loss(fn, seed: int | None = None) -> bool:
    """Check ``ablated_head_loss(model, tokens, layer, head) -> [batch, pos-1]``."""
    return check(ABLATION, fn, seed)


EXERCISES = {ex.id: ex for ex in [ATTENTION_PATTERN, PREV_TOKEN, INDUCTION, FULL_QK, K_COMPOSITION, ABLATION]}

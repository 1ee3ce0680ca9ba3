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


def _mask_hides_diagonal(q, k):
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = q.shape[1]
    return s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 0), float("-inf")).softmax(-1)


def _mask_lets_next_through(q, k):
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = q.shape[1]
    return s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 2), float("-inf")).softmax(-1)


def _transposed_pattern(q, k):
    return attention.attention_pattern(q, k).transpose(-1, -2)


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
        Mistake("mask hides the diagonal", _mask_hides_diagonal,
                "your mask is off by one: it also hides the key at the query's own position, so the first "
                "query has nothing left to attend to (NaN). A query may attend to itself: mask only keys "
                "strictly after it (check the `diagonal=` argument of torch.triu)."),
        Mistake("mask lets the next key through", _mask_lets_next_through,
                "your mask is off by one the other way: each query can still see the key just after it. "
                "Mask every key strictly after the query (check the `diagonal=` argument of torch.triu)."),
        Mistake("transposed output", _transposed_pattern,
                "your pattern is transposed: the last two dimensions must be [query_pos, key_pos], so each "
                "row (one query) sums to 1 and the zeros are above the diagonal. Check the output "
                "subscripts of your einsum."),
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
    hint="attention to the previous token lies on one diagonal of each head's [query, key] pattern; the first query "
         "has no previous token. Average over the batch and the queries, not over the heads.",
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
    hint="the section's composition score: the Frobenius norm of the composed map, relative to the product of the two "
         "maps' Frobenius norms. The early head's OV output is what the later head's keys read: check the order in which "
         "the two matrices compose, and their shapes.",
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
    hint="a forward hook on the layer's hook_z (which dimension is the head?) that returns a copy with that head "
         "zeroed; then the per-token loss of the resulting logits.",
    atol=1e-4,
)


def check_ablated_head_loss(fn, seed: int | None = None) -> bool:
    """Check ``ablated_head_loss(model, tokens, layer, head) -> [batch, pos-1]``."""
    return check(ABLATION, fn, seed)


# -- 7. full OV circuit ------------------------------------------------------------------------
def _ov_circuit_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for v, dm, dh in [(7, 5, 2), (19, 12, 3)]:
        out.append(Case(f"seed {seed}, d_vocab={v} d_model={dm} d_head={dh}", {
            "W_E": torch.randn(v, dm, generator=g), "W_V": torch.randn(dm, dh, generator=g),
            "W_O": torch.randn(dh, dm, generator=g), "W_U": torch.randn(dm, v, generator=g)}))
    return out


FULL_OV = Exercise(
    id="w02_full_ov_circuit",
    title="full_ov_circuit",
    reference=circuits.full_ov_circuit,
    cases=_ov_circuit_cases,
    mistakes=[
        Mistake("transposed", lambda W_E, W_V, W_O, W_U: circuits.full_ov_circuit(W_E, W_V, W_O, W_U).AB.T,
                "your table is transposed: rows should be the token the head attends to (the input side, "
                "embedded with W_E) and columns the logit it raises (the output side, through W_U)."),
        Mistake("no embedding", lambda W_E, W_V, W_O, W_U: W_U.T @ W_V @ W_O @ W_U,
                "the input side must start from the token embeddings W_E: a row is 'the head attends to token i'."),
    ],
    hint="a row is one attended token: embed it (W_E), apply the head's OV map (W_V then W_O), then unembed (W_U).",
    atol=1e-3,
)


def check_full_ov_circuit(fn, seed: int | None = None) -> bool:
    """Check ``full_ov_circuit(W_E, W_V, W_O, W_U) -> [d_vocab, d_vocab]`` (tensor or FactoredMatrix)."""
    return check(FULL_OV, fn, seed)


# -- 8. top-1 diagonal fraction ----------------------------------------------------------------
def _table_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in [6, 17, 40]:
        t = torch.randn(n, n, generator=g)
        rows = torch.randperm(n, generator=g)[: int(torch.randint(1, n, (1,), generator=g))]
        t[rows, rows] += 4.0  # a planted diagonal in some rows
        cols = torch.randperm(n, generator=g)[: n // 3]
        t[cols, (cols + 1) % n] += 8.0  # some rows whose maximum is off the diagonal, so the column view differs
        out.append(Case(f"seed {seed}, n={n}", {"table": t}))
    return out


def _diag_columns(table):
    return float((table.argmax(dim=0) == torch.arange(table.shape[0])).float().mean())


def _diag_count(table):
    return float((table.argmax(dim=-1) == torch.arange(table.shape[0])).sum())


def _diag_largest_is_diag_mean(table):
    return float((table.diagonal() > table.mean(-1)).float().mean())


TOP1_DIAGONAL = Exercise(
    id="w02_top1_diagonal_fraction",
    title="top1_diagonal_fraction",
    reference=circuits.top1_diagonal_fraction,
    cases=_table_cases,
    mistakes=[
        Mistake("columns", _diag_columns,
                "you took the maximum down each column; the question is per row (per input token): "
                "for row i, is the largest entry in column i?"),
        Mistake("count", _diag_count,
                "that is a count of rows; return the fraction (divide by the number of rows)."),
        Mistake("above the mean", _diag_largest_is_diag_mean,
                "a diagonal entry above its row's mean is not enough: it has to be the row's largest entry."),
    ],
    hint="for each row i, find the column of its largest entry; the answer is the fraction of rows where that column is i.",
    atol=1e-6,
)


def check_top1_diagonal_fraction(fn, seed: int | None = None) -> bool:
    """Check ``top1_diagonal_fraction(table) -> float``."""
    return check(TOP1_DIAGONAL, fn, seed)


# -- 9. the full K-composition circuit ---------------------------------------------------------
def _kcirc_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for v, dm, dh in [(6, 5, 2), (15, 12, 4)]:
        out.append(Case(f"seed {seed}, d_vocab={v} d_model={dm} d_head={dh}", {
            "W_E": torch.randn(v, dm, generator=g), "W_Q": torch.randn(dm, dh, generator=g),
            "W_K": torch.randn(dm, dh, generator=g), "W_V_prev": torch.randn(dm, dh, generator=g),
            "W_O_prev": torch.randn(dh, dm, generator=g)}))
    return out


def _kcirc_direct(W_E, W_Q, W_K, W_V_prev, W_O_prev):
    return circuits.full_qk_circuit(W_E, W_Q, W_K)


def _kcirc_query_side(W_E, W_Q, W_K, W_V_prev, W_O_prev):
    return (W_E @ W_V_prev @ W_O_prev @ W_Q) @ (W_E @ W_K).T


def _kcirc_transposed(W_E, W_Q, W_K, W_V_prev, W_O_prev):
    return circuits.k_composition_circuit(W_E, W_Q, W_K, W_V_prev, W_O_prev).AB.T


K_CIRCUIT = Exercise(
    id="w02_k_composition_circuit",
    title="k_composition_circuit",
    reference=circuits.k_composition_circuit,
    cases=_kcirc_cases,
    mistakes=[
        Mistake("direct QK circuit", _kcirc_direct,
                "that is the direct QK circuit (the key reads the token at its own position). In K-composition "
                "the key reads what the earlier head wrote there: send the key-side token through W_V' W_O' "
                "before W_K."),
        Mistake("earlier head on the query side", _kcirc_query_side,
                "you put the earlier head on the query side (that is Q-composition). The previous-token "
                "head's output is read at the *key* position."),
        Mistake("transposed", _kcirc_transposed,
                "your table is transposed: rows must be the query token, columns the token the earlier "
                "head moved to the key position."),
    ],
    hint="only the key side differs from the direct QK circuit: the key reads token j after the earlier head has "
         "moved it (through that head's OV map). Rows are query tokens, columns key-side tokens.",
    atol=1e-2,
    rtol=1e-3,
)


def check_k_composition_circuit(fn, seed: int | None = None) -> bool:
    """Check ``k_composition_circuit(W_E, W_Q, W_K, W_V_prev, W_O_prev) -> [d_vocab, d_vocab]``."""
    return check(K_CIRCUIT, fn, seed)


# -- 10. QK decomposition by input source (multi-step) ----------------------------------------
def _qk_source_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for layer in (1, 0):
        head = int(torch.randint(0, model.cfg.n_heads, (1,), generator=g))
        seq_len = int(torch.randint(5, 10, (1,), generator=g))
        tokens = repeated_random_tokens(2, seq_len, model.cfg.d_vocab, seed=seed * 7 + layer)
        out.append(Case(f"seed {seed}, head {layer}.{head}, seq_len={seq_len}",
                        {"model": model, "tokens": tokens, "seq_len": seq_len, "layer": layer, "head": head}))
    return out


def _qk_source_variant(model, tokens, seq_len, layer, head, *, ln=True, key_offset=1, scale=True):
    _, cache = model.run_with_cache(tokens)
    src = circuits._residual_sources(model, cache, layer)
    if ln:
        src = circuits._through_layernorm(src, cache[f"blocks.{layer}.ln1.hook_scale"], model.blocks[layer].ln1.w.detach())
    q = src @ model.W_Q[layer, head].detach()
    k = src @ model.W_K[layer, head].detach()
    queries = torch.arange(seq_len + 1, 2 * seq_len + 1)
    s = torch.einsum("sbqe,tbqe->stbq", q[:, :, queries], k[:, :, queries - seq_len + key_offset]).mean((-2, -1))
    return s / model.cfg.d_head**0.5 if scale else s


QK_BY_SOURCE = Exercise(
    id="w02_qk_by_source",
    title="qk_by_source",
    reference=circuits.qk_by_source,
    cases=_qk_source_cases,
    mistakes=[
        Mistake("no LayerNorm", lambda **kw: _qk_source_variant(**kw, ln=False),
                "the head reads the residual stream through its LayerNorm (ln1). Put each source through "
                "the LayerNorm's linear part with the run's own scale: centre it, divide by the cached "
                "ln1.hook_scale, multiply by ln1.w."),
        Mistake("query and key swapped", lambda **kw: circuits.qk_by_source(**kw).T,
                "your table is transposed: rows are the query-side source, columns the key-side source."),
        Mistake("duplicate-token key", lambda **kw: _qk_source_variant(**kw, key_offset=0),
                "you scored query i against key i - seq_len (the earlier copy of the same token). The "
                "induction pair is key i - seq_len + 1, the token *after* it."),
        Mistake("no 1/sqrt(d_head)", lambda **kw: _qk_source_variant(**kw, scale=False),
                "attention scores are q.k / sqrt(d_head): divide by sqrt(d_head)."),
    ],
    hint="plan it: each source's own contribution to the residual stream, through the layer's LayerNorm with its "
         "scale frozen (then it is linear), into queries and keys; a table of mean scaled dot products over the "
         "induction pairs. Self-check: layer 0 has only two sources.",
    atol=1e-3,
    rtol=1e-3,
)


def check_qk_by_source(fn, seed: int | None = None) -> bool:
    """Check ``qk_by_source(model, tokens, seq_len, layer, head) -> [n_source, n_source]``."""
    return check(QK_BY_SOURCE, fn, seed)


# -- 11. direct logit attribution per path (multi-step) ---------------------------------------
def _dla_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    seq_len = int(torch.randint(4, 9, (1,), generator=g))
    rep = repeated_random_tokens(2, seq_len, model.cfg.d_vocab, seed=seed * 5 + 1)
    rnd = torch.randint(1, model.cfg.d_vocab, (3, int(torch.randint(5, 12, (1,), generator=g))), generator=g)
    rnd[:, 0] = 0
    return [Case(f"seed {seed}, repeated tokens, seq_len={seq_len}", {"model": model, "tokens": rep}),
            Case(f"seed {seed}, random tokens, {rnd.shape[1]} positions", {"model": model, "tokens": rnd})]


def _dla_variant(model, tokens, *, offset=1, scale=True, centre=True):
    _, cache = model.run_with_cache(tokens)
    src = circuits._residual_sources(model, cache, model.cfg.n_layers)
    if centre:
        src = src - src.mean(-1, keepdim=True)
    if scale:
        src = src / cache["ln_final.hook_scale"]
    src = src * model.ln_final.w.detach()
    n = tokens.shape[1]
    W = model.W_U.detach()[:, tokens[:, offset:n - 1 + offset]]
    return torch.einsum("sbpd,dbp->sbp", src[:, :, :-1], W)


DLA_BY_PATH = Exercise(
    id="w02_logit_attribution_by_path",
    title="logit_attribution_by_path",
    reference=circuits.logit_attribution_by_path,
    cases=_dla_cases,
    mistakes=[
        Mistake("current token", lambda **kw: _dla_variant(**kw, offset=0),
                "you attributed the logit of the *current* token. Position i predicts token i+1: "
                "use the unembedding columns of tokens[:, 1:]."),
        Mistake("no LayerNorm scale", lambda **kw: _dla_variant(**kw, scale=False),
                "the final LayerNorm divides the residual stream by its scale; divide each path by the "
                "cached ln_final.hook_scale of its position before W_U."),
        Mistake("not centred", lambda **kw: _dla_variant(**kw, centre=False),
                "LayerNorm first subtracts the mean over d_model; centre each path (subtract its mean over "
                "the last dimension) before dividing by the scale."),
    ],
    hint="each path's contribution goes through the final LayerNorm with its scale frozen, then is read by the "
         "unembedding of the token that comes *next*. Self-check: the paths plus the constant terms add up to the "
         "model's own logit of the correct token.",
    atol=1e-3,
    rtol=1e-3,
)


def check_logit_attribution_by_path(fn, seed: int | None = None) -> bool:
    """Check ``logit_attribution_by_path(model, tokens) -> [n_path, batch, pos-1]``."""
    return check(DLA_BY_PATH, fn, seed)


EXERCISES = {ex.id: ex for ex in [ATTENTION_PATTERN, PREV_TOKEN, INDUCTION, FULL_QK, K_COMPOSITION, ABLATION,
                                  FULL_OV, TOP1_DIAGONAL, K_CIRCUIT, QK_BY_SOURCE, DLA_BY_PATH]}

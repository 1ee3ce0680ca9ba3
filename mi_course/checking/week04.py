"""Checkers for week 04: Talking Heads (low-rank communication channels between heads).

Each ``check_*`` runs your function against the package's reference on fixed and random
cases, and recognises the common mistakes listed with each exercise.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import talking_heads


def _low_rank(d: int, r: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(d, r, generator=g) @ torch.randn(r, d, generator=g)


# -- 1. composition with each SVD component ----------------------------------------------------
def _comp_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for d, r in [(8, 3), (24, 6)]:
        sender = _low_rank(d, r, g)
        receiver = _low_rank(d, r, g) + 0.7 * sender.T  # reads part of what the sender writes
        out.append(Case(f"seed {seed}, d_model={d}, rank {r}", {"sender_ov": sender, "receiver": receiver}))
    return out


def _right_vectors(sender_ov, receiver):
    U, S, Vh = torch.linalg.svd(receiver)
    r = int((S > S[0] * 1e-6).sum())
    return torch.stack([(sender_ov @ Vh[i]).norm() / sender_ov.norm() for i in range(r)])


def _unnormalised(sender_ov, receiver):
    U, S, Vh = torch.linalg.svd(receiver)
    r = int((S > S[0] * 1e-6).sum())
    return torch.stack([(sender_ov @ U[:, i]).norm() for i in range(r)])


def _weighted(sender_ov, receiver):
    U, S, Vh = torch.linalg.svd(receiver)
    r = int((S > S[0] * 1e-6).sum())
    return torch.stack([S[i] * (sender_ov @ U[:, i]).norm() / sender_ov.norm() for i in range(r)])


COMPONENT_SCORES = Exercise(
    id="w04_component_composition_scores",
    title="component_composition_scores",
    reference=talking_heads.component_composition_scores,
    cases=_comp_cases,
    mistakes=[
        Mistake("right singular vectors", _right_vectors,
                "the receiver's *rows* read the sender's output, so use the left singular vectors (columns of U), "
                "not the rows of Vh."),
        Mistake("not normalised", _unnormalised,
                "divide by ||sender_ov||_F so that each score is a share between 0 and 1."),
        Mistake("weighted by s_i", _weighted,
                "the composition score of a rank-1 component does not depend on its singular value: "
                "||A @ s u v^T|| / (||A|| ||s u v^T||) = ||A u|| / ||A||."),
    ],
    hint="take the SVD of the receiver, keep the non-negligible components, and score each one's read direction with your direction_scores idea.",
    atol=1e-4,
)


def check_component_composition_scores(fn, seed: int | None = None) -> bool:
    """Check ``component_composition_scores(sender_ov, receiver) -> [r]``."""
    return check(COMPONENT_SCORES, fn, seed)


# -- 2. projecting a span out of the residual stream -------------------------------------------
def _proj_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, p, d, k in [(2, 3, 6, 2), (3, 7, 16, 4)]:
        base = torch.randn(d, k, generator=g)
        directions = base @ (torch.eye(k) + 0.8 * torch.randn(k, k, generator=g))  # correlated, unnormalised
        out.append(Case(f"seed {seed}, x [{b}, {p}, {d}], k={k} directions",
                        {"x": torch.randn(b, p, d, generator=g), "directions": directions}))
    return out


def _assume_orthonormal(x, directions):
    return x - (x @ directions) @ directions.T


def _normalise_only(x, directions):
    u = directions / directions.norm(dim=0, keepdim=True)
    return x - (x @ u) @ u.T


def _keep(x, directions):
    return x - talking_heads.project_out_span(x, directions)


PROJECT_OUT = Exercise(
    id="w04_project_out_span",
    title="project_out_span",
    reference=talking_heads.project_out_span,
    cases=_proj_cases,
    mistakes=[
        Mistake("assumed orthonormal", _assume_orthonormal,
                "x - (x D) D^T only removes the span when the columns of D are orthonormal. "
                "Orthonormalise them first (torch.linalg.qr)."),
        Mistake("normalised but not orthogonal", _normalise_only,
                "unit-length directions are not enough: they overlap, so their projections double-count. "
                "Orthonormalise them (torch.linalg.qr) before projecting."),
        Mistake("kept the span", _keep,
                "you returned the part of x *inside* the span; return what is left after removing it."),
    ],
    hint="the projection formula x - (x B) B^T needs an orthonormal B; get one with the same span as the directions.",
    atol=1e-4,
)


def check_project_out_span(fn, seed: int | None = None) -> bool:
    """Check ``project_out_span(x, directions) -> x without its component in span(directions)``."""
    return check(PROJECT_OUT, fn, seed)


# -- 3. effective rank of a channel ------------------------------------------------------------
def _rank_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = [Case("rank-1 channel", {"strengths": torch.tensor([5.0, 0.5, 0.3, 0.1]), "share": 0.9}),
           Case("flat spectrum", {"strengths": torch.ones(6), "share": 0.9})]
    for n in (8, 20):
        s = (torch.rand(n, generator=g) ** 3 * 4).sort(descending=True).values
        out.append(Case(f"seed {seed}, {n} random strengths", {"strengths": s, "share": 0.8}))
    return out


def _unsquared(strengths, share):
    c = strengths.double().cumsum(0) / strengths.double().sum()
    return int((c < share).sum()) + 1


def _off_by_one(strengths, share):
    s2 = strengths.double() ** 2
    return int(((s2.cumsum(0) / s2.sum()) < share).sum())


EFFECTIVE_RANK = Exercise(
    id="w04_effective_rank",
    title="effective_rank",
    reference=talking_heads.effective_rank,
    cases=_rank_cases,
    mistakes=[
        Mistake("singular values, not squared", _unsquared,
                "a component's share of the matrix is its *squared* singular value (||M||_F^2 = sum s_i^2)."),
        Mistake("off by one", _off_by_one,
                "you counted the components *before* the share is reached; include the one that reaches it "
                "(a rank-1 channel has effective rank 1, not 0)."),
    ],
    hint="work with the cumulative share of the squared strengths, and count how many leading components it takes to reach share.",
)


def check_effective_rank(fn, seed: int | None = None) -> bool:
    """Check ``effective_rank(strengths, share) -> int``."""
    return check(EFFECTIVE_RANK, fn, seed)



# -- 4. the score of any direction (the random baseline) ----------------------------------------
def _dir_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for d, r, n in [(8, 3, 5), (32, 8, 12)]:
        sender = _low_rank(d, r, g)
        directions = torch.randn(d, n, generator=g) * (0.3 + 3 * torch.rand(n, generator=g))  # unnormalised
        out.append(Case(f"seed {seed}, d_model={d}, {n} directions", {"sender_ov": sender, "directions": directions}))
    return out


def _dir_unnormalised(sender_ov, directions):
    return (sender_ov @ directions).norm(dim=0) / sender_ov.norm()


def _dir_input_side(sender_ov, directions):
    u = directions / directions.norm(dim=0, keepdim=True)
    return (sender_ov.T @ u).norm(dim=0) / sender_ov.norm()


def _dir_spectral(sender_ov, directions):
    u = directions / directions.norm(dim=0, keepdim=True)
    return (sender_ov @ u).norm(dim=0) / torch.linalg.matrix_norm(sender_ov, ord=2)


DIRECTION_SCORES = Exercise(
    id="w04_direction_scores",
    title="direction_scores",
    reference=talking_heads.direction_scores,
    cases=_dir_cases,
    mistakes=[
        Mistake("directions not normalised", _dir_unnormalised,
                "the directions you are given have arbitrary lengths; a score must not depend on the length, "
                "so make each column a unit vector first."),
        Mistake("read the input side", _dir_input_side,
                "the reader sees what the sender *writes*: the output side of sender_ov (its columns). "
                "Check which side of sender_ov your direction multiplies."),
        Mistake("spectral norm", _dir_spectral,
                "divide by the Frobenius norm of sender_ov (the norm of everything it can write), "
                "not its largest singular value."),
    ],
    hint="a score must not change when a direction is rescaled, so normalise the directions first; then measure how "
         "much the sender writes along each one, relative to the size of the whole sender_ov.",
    atol=1e-4,
)


def check_direction_scores(fn, seed: int | None = None) -> bool:
    """Check ``direction_scores(sender_ov, directions) -> [n]``."""
    return check(DIRECTION_SCORES, fn, seed)


# -- 5. the channel's strongest written directions ---------------------------------------------
def _span_projector(basis: torch.Tensor) -> torch.Tensor:
    """Compare spans, not bases (a basis is only fixed up to a rotation within its span)."""
    if not isinstance(basis, torch.Tensor) or basis.ndim != 2:
        return basis
    q, _ = torch.linalg.qr(basis.double())
    return q @ q.T


def _chan_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for d, r, k in [(8, 4, 1), (24, 8, 3)]:
        sender = _low_rank(d, r, g)
        receiver = _low_rank(d, r, g) + 0.5 * sender.T
        out.append(Case(f"seed {seed}, d_model={d}, k={k}", {"sender_ov": sender, "receiver": receiver, "k": k}))
    return out


def _chan_input_side(sender_ov, receiver, k):
    U, S, Vh = torch.linalg.svd(sender_ov @ receiver)
    return U[:, :k]


def _chan_receiver_only(sender_ov, receiver, k):
    U, S, Vh = torch.linalg.svd(receiver)
    return U[:, :k]


def _chan_wrong_order(sender_ov, receiver, k):
    U, S, Vh = torch.linalg.svd(receiver @ sender_ov)
    q, _ = torch.linalg.qr((sender_ov.T @ U)[:, :k])
    return q


CHANNEL_BASIS = Exercise(
    id="w04_channel_basis",
    title="channel_basis",
    reference=talking_heads.channel_basis,
    cases=_chan_cases,
    mistakes=[
        Mistake("input side", _chan_input_side,
                "the left singular vectors of sender_ov @ receiver live where the sender *reads*. Map them through "
                "the sender to get the directions it *writes* into the residual stream."),
        Mistake("receiver alone", _chan_receiver_only,
                "those are the directions the receiver reads, whatever the sender writes; the channel is the "
                "product of the two maps."),
        Mistake("product in the wrong order", _chan_wrong_order,
                "the sender acts first: its output (columns of sender_ov) is what the receiver's rows read."),
    ],
    hint="the channel is one matrix made from both heads; its strongest singular directions, seen from the "
         "sender's output side, span what you want.",
    atol=1e-4,
    normalize=_span_projector,
)


def check_channel_basis(fn, seed: int | None = None) -> bool:
    """Check ``channel_basis(sender_ov, receiver, k) -> [d_model, k]`` (compared as a span)."""
    return check(CHANNEL_BASIS, fn, seed)


# -- 6. an empirical p-value against random controls -------------------------------------------
def _p_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(40, generator=g).abs() * 0.1
    ties = torch.tensor([0.1, 0.2, 0.3, 0.3, 0.5])
    return [Case("stronger than every control", {"effect": float(r.max()) + 1.0, "random_effects": r}),
            Case(f"seed {seed}, inside the controls", {"effect": float(r.sort().values[30]), "random_effects": r}),
            Case("ties with two controls", {"effect": 0.3, "random_effects": ties})]


def _p_no_plus_one(effect, random_effects):
    return float((random_effects >= effect).float().mean())


def _p_strict(effect, random_effects):
    return float((1 + (random_effects > effect).sum()) / (1 + random_effects.numel()))


def _p_below(effect, random_effects):
    return float((1 + (random_effects < effect).sum()) / (1 + random_effects.numel()))


P_VALUE = Exercise(
    id="w04_empirical_p_value",
    title="empirical_p_value",
    reference=talking_heads.empirical_p_value,
    cases=_p_cases,
    mistakes=[
        Mistake("can be zero", _p_no_plus_one,
                "with n controls you cannot claim a p-value of 0: count the tested direction itself among "
                "the candidates, in the numerator and in the denominator."),
        Mistake("strictly greater", _p_strict,
                "a control that does *as much as* the effect counts against it too (>=, not >)."),
        Mistake("counted the weaker controls", _p_below,
                "count the controls that do at least as much as the effect, not those that do less."),
    ],
    hint="count the random controls that are at least as strong as the effect, then turn the count into a share "
         "that can never be exactly 0.",
)


def check_empirical_p_value(fn, seed: int | None = None) -> bool:
    """Check ``empirical_p_value(effect, random_effects) -> float``."""
    return check(P_VALUE, fn, seed)


# -- 7. component scores of every sender from the raw weights (★★★) ----------------------------
@lru_cache(maxsize=2)
def _model(name: str):
    from mi_course import zoo

    return zoo.load(name)


def _srs_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    pick = lambda n: int(torch.randint(0, n, (1,), generator=g))  # noqa: E731
    a, b = _model("attn-only-2l"), _model("ioi-lm")
    return [
        Case(f"seed {seed}, attn-only-2l, K side of 1.{(h := pick(4))}",
             {"model": a, "sender_layer": 0, "receiver_layer": 1, "receiver_head": h, "kind": "K"}),
        Case(f"seed {seed}, ioi-lm, Q side of 2.{(h := pick(4))}",
             {"model": b, "sender_layer": 1, "receiver_layer": 2, "receiver_head": h, "kind": "Q"}),
        Case(f"seed {seed}, ioi-lm, V side of 1.{(h := pick(4))}",
             {"model": b, "sender_layer": 0, "receiver_layer": 1, "receiver_head": h, "kind": "V"}),
        Case(f"seed {seed}, ioi-lm, K side of 2.{(h := pick(4))}",
             {"model": b, "sender_layer": pick(2), "receiver_layer": 2, "receiver_head": h, "kind": "K"}),
    ]


def _srs_with(model, sender_layer, receiver_layer, receiver_head, kind, matrix):
    R = matrix(model, receiver_layer, receiver_head, kind)
    U, S, _ = torch.linalg.svd(R)
    r = int((S > S[0] * 1e-6).sum())
    W_OV = model.W_V[sender_layer] @ model.W_O[sender_layer]
    return (W_OV @ U[:, :r]).norm(dim=1) / W_OV.norm(dim=(1, 2))[:, None]


def _srs_no_ln(model, sender_layer, receiver_layer, receiver_head, kind):
    return _srs_with(model, sender_layer, receiver_layer, receiver_head, kind,
                     lambda m, l, h, k: talking_heads.receiver_matrix(m, l, h, k, fold_ln=False))


def _srs_k_untransposed(model, sender_layer, receiver_layer, receiver_head, kind):
    k = "Q" if kind == "K" else kind
    return _srs_with(model, sender_layer, receiver_layer, receiver_head, kind,
                     lambda m, l, h, _k: talking_heads.receiver_matrix(m, l, h, k))


def _srs_all_components(model, sender_layer, receiver_layer, receiver_head, kind):
    R = talking_heads.receiver_matrix(model, receiver_layer, receiver_head, kind)
    U, S, Vh = torch.linalg.svd(R)
    W_OV = model.W_V[sender_layer] @ model.W_O[sender_layer]
    return (W_OV @ U).norm(dim=1) / W_OV.norm(dim=(1, 2))[:, None]


SENDER_RECEIVER = Exercise(
    id="w04_sender_receiver_scores",
    title="sender_receiver_scores",
    reference=talking_heads.sender_receiver_scores,
    cases=_srs_cases,
    mistakes=[
        Mistake("LayerNorm scale left out", _srs_no_ln,
                "the receiver reads the residual stream *after* its LayerNorm, which scales each dimension by "
                "ln1's weight: fold that weight into the receiver's matrix on every side that reads the stream."),
        Mistake("K side not transposed", _srs_k_untransposed,
                "for K-composition the sender writes into the *key* side: W_Q W_K^T has the query side on its rows, "
                "so the key side's rows are those of its transpose."),
        Mistake("every component kept", _srs_all_components,
                "a receiver matrix has rank d_head at most: the components past that have singular value ~0 and "
                "read nothing. Keep only those with s_i > 1e-6 * s_0."),
    ],
    hint="build the receiver's [d_model, d_model] matrix for the kind (with the LN scale), take its SVD, and "
         "score every sender head's OV circuit against each read direction, as in exercises 1-2.",
    atol=1e-3,
)


def check_sender_receiver_scores(fn, seed: int | None = None) -> bool:
    """Check ``sender_receiver_scores(model, sender_layer, receiver_layer, receiver_head, kind) -> [n_heads, r]``."""
    return check(SENDER_RECEIVER, fn, seed)


# -- 8. remove a subspace from one head's output, with hooks (★★★) ------------------------------
def _rm_cases(seed: int) -> list[Case]:
    from mi_course.data import ioi

    g = torch.Generator().manual_seed(seed)
    m = _model("ioi-lm")
    ds = ioi.make_ioi(4, seed=seed, templates=0)
    out = []
    for layer, k in [(1, 1), (0, 3)]:
        head = int(torch.randint(0, m.cfg.n_heads, (1,), generator=g))
        basis = talking_heads.random_subspace(m.cfg.d_model, k, seed=seed * 10 + layer)
        out.append(Case(f"seed {seed}, ioi-lm, head {layer}.{head}, k={k}",
                        {"model": m, "tokens": ds.tokens, "layer": layer, "head": head, "basis": basis}))
    return out


def _rm_whole_layer(model, tokens, layer, head, basis):
    def edit(out, hook):
        return talking_heads.project_out(out, basis)
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.hook_attn_out", edit)])


def _rm_whole_head(model, tokens, layer, head, basis):
    def edit(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", edit)])


def _rm_nothing(model, tokens, layer, head, basis):
    return model(tokens)


def _rm_kept(model, tokens, layer, head, basis):
    store = {}

    def grab(z, hook):
        store["z"] = z
        return z

    def edit(out, hook):
        w = talking_heads.sender_output(model, store["z"], layer, head)
        return out - talking_heads.project_out(w, basis)
    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", grab),
                                                   (f"blocks.{layer}.hook_attn_out", edit)])


REMOVE_FROM_HEAD = Exercise(
    id="w04_remove_from_head_output",
    title="remove_from_head_output",
    reference=talking_heads.remove_from_head_output,
    cases=_rm_cases,
    mistakes=[
        Mistake("every head of the layer", _rm_whole_layer,
                "you removed the subspace from the whole attention layer's output; only the one head's "
                "contribution should lose it (the other heads write there too)."),
        Mistake("whole head removed", _rm_whole_head,
                "you ablated the whole head; remove only the part of its output that lies in the subspace."),
        Mistake("nothing changed", _rm_nothing,
                "the logits are those of the unedited model: do your hooks return the edited tensors, and are they "
                "active while the model runs?"),
        Mistake("kept only the subspace", _rm_kept,
                "you removed everything *except* the subspace from the head's output; remove the part inside it."),
    ],
    hint="you need the head's own output (its z times its W_O) and a place to subtract its in-subspace part "
         "from the layer's attention output, in the same forward pass.",
    atol=1e-3,
)


def check_remove_from_head_output(fn, seed: int | None = None) -> bool:
    """Check ``remove_from_head_output(model, tokens, layer, head, basis) -> logits [batch, pos, d_vocab]``."""
    return check(REMOVE_FROM_HEAD, fn, seed)


EXERCISES = {ex.id: ex for ex in [DIRECTION_SCORES, COMPONENT_SCORES, EFFECTIVE_RANK, CHANNEL_BASIS, PROJECT_OUT,
                                  P_VALUE, SENDER_RECEIVER, REMOVE_FROM_HEAD]}

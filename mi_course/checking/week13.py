"""Checkers for week 13: steering with features, sparse feature circuits, SHIFT.

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.steering`, :mod:`mi_course.methods.sparse_feature_circuits`,
:mod:`mi_course.methods.shift`) on fixed and random cases, and recognises the common mistakes listed
with each exercise. The cases are model-agnostic: synthetic activations, small SAEs with random
weights (their input and output scales not 1, so a forgotten scale shows) and a tiny two-layer
transformer built from a seed, so the checkers run in a second and need no trained model.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401
from mi_course.methods import shift as SH
from mi_course.methods import sparse_feature_circuits as SFC
from mi_course.methods import steering as ST

EXERCISES: dict[str, Exercise] = {}


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand_sae(d_in: int, d_sae: int, seed: int, scales: bool = True):
    """A ReLU SAE with random weights, a positive encoder bias (latents fire) and input/output scales != 1."""
    from mi_course.methods.sae import SparseAutoencoder

    sae = SparseAutoencoder(d_in, d_sae, "relu", seed=seed)
    g = _g(seed + 1000)
    with torch.no_grad():
        sae.b_enc.copy_(0.05 + 0.1 * torch.rand(d_sae, generator=g))
        sae.b_dec.copy_(0.1 * torch.randn(d_in, generator=g))
        if scales:
            sae.input_scale.fill_(0.7 + 0.6 * float(torch.rand(1, generator=g)))
            sae.output_scale.fill_(1.3 + 0.5 * float(torch.rand(1, generator=g)))
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae


# -- 1. the steering hook ----------------------------------------------------------------------
def _steer_reference(act: torch.Tensor, vector: torch.Tensor, strength: float, positions) -> torch.Tensor:
    return ST.add_vector_hook(vector, strength, positions)(act)


def _steer_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    pos_options = [None, [-1], [0, 2]] if seed == 0 else [[int(torch.randint(0, 5, (1,), generator=g))], None]
    for positions in pos_options:
        s = float(torch.rand(1, generator=g)) * 6 - 2
        out.append(Case(f"seed {seed}, strength {s:.2f}, positions {positions}", {
            "act": torch.randn(3, 5, 8, generator=g), "vector": 2 * torch.randn(8, generator=g),
            "strength": s, "positions": positions}))
    return out


def _steer_unit(act, vector, strength, positions):
    return _steer_reference(act, vector / vector.norm(), strength, positions)


def _steer_everywhere(act, vector, strength, positions):
    return act + strength * vector


STEER = Exercise(
    id="w13_steer",
    title="add_steering",
    reference=_steer_reference,
    cases=_steer_cases,
    mistakes=[
        Mistake("unit vector", _steer_unit,
                "add strength * vector as given: do not normalise it (its length is part of the steering vector; "
                "a decoder row is already in the model's units)."),
        Mistake("every position", _steer_everywhere,
                "add the vector only at `positions` (None means every position; [-1] means only the last)."),
    ],
    hint="work on a copy of act (a hook that edits its input changes the cached activation too); add strength "
         "times the vector only at the listed positions, every position when positions is None; a [d] vector "
         "broadcasts over batch and positions.",
)


def check_steer(fn, seed: int | None = None) -> bool:
    """Check ``add_steering(act [batch, pos, d], vector [d], strength, positions) -> [batch, pos, d]``."""
    return check(STEER, fn, seed)


# -- 2. difference of means --------------------------------------------------------------------
def _dom_reference(acts_with: torch.Tensor, acts_without: torch.Tensor, position) -> torch.Tensor:
    def mean(a):
        return a[:, position].mean(0) if position is not None else a[:, 1:].reshape(-1, a.shape[-1]).mean(0)

    return mean(acts_with) - mean(acts_without)


def _dom_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for position in ([-1, None] if seed == 0 else [None, int(torch.randint(0, 6, (1,), generator=g))]):
        a = torch.randn(7, 6, 4, generator=g)
        a[:, 0] += 5.0  # the first position (<|endoftext|>) is far from the rest
        b = torch.randn(5, 6, 4, generator=g) + 0.5
        b[:, 0] -= 3.0
        out.append(Case(f"seed {seed}, position {position}", {"acts_with": a, "acts_without": b, "position": position}))
    return out


DIFF_OF_MEANS = Exercise(
    id="w13_diff_of_means",
    title="diff_of_means",
    reference=_dom_reference,
    cases=_dom_cases,
    mistakes=[
        Mistake("reversed", lambda acts_with, acts_without, position: -_dom_reference(acts_with, acts_without, position),
                "mean WITH the behaviour minus mean WITHOUT it: adding the vector should push towards the behaviour."),
        Mistake("first position kept", lambda acts_with, acts_without, position:
                (acts_with[:, position].mean(0) - acts_without[:, position].mean(0)) if position is not None
                else acts_with.reshape(-1, acts_with.shape[-1]).mean(0) - acts_without.reshape(-1, acts_without.shape[-1]).mean(0),
                "with position=None average over every position BUT the first (the <|endoftext|> token's activation "
                "is huge and the same for every prompt)."),
    ],
    hint="compute one mean activation [d] for each set the same way: at one position, the average over prompts; "
         "with None, the average over prompts and every position but the first. Then subtract: with minus without.",
)


def check_diff_of_means(fn, seed: int | None = None) -> bool:
    """Check ``diff_of_means(acts_with [n, pos, d], acts_without [m, pos, d], position) -> [d]``."""
    return check(DIFF_OF_MEANS, fn, seed)


# -- 3. clamping an SAE latent -----------------------------------------------------------------
def _clamp_reference(sae, act: torch.Tensor, latent: int, value: float) -> torch.Tensor:
    return ST.clamp_latent_hook(sae, latent, value)(act)


def _clamp_cases(seed: int) -> list[Case]:
    g = _g(seed)
    sae = _rand_sae(8, 24, seed)
    out = []
    for value in ([0.0, 4.0] if seed == 0 else [float(torch.rand(1, generator=g)) * 5]):
        act = torch.randn(2, 4, 8, generator=g)
        f = sae.encode(act)
        latent = int(f.reshape(-1, 24).mean(0).argmax())  # a latent that fires: clamping it changes something
        out.append(Case(f"seed {seed}, latent {latent}, value {value:.2f}",
                        {"sae": sae, "act": act, "latent": latent, "value": value}))
    return out


def _clamp_reconstruction(sae, act, latent, value):
    f = sae.encode(act)
    f[..., latent] = value
    return sae.decode(f)


def _clamp_add_only(sae, act, latent, value):
    return act + value * sae.W_dec[latent] / sae.output_scale


def _clamp_no_scale(sae, act, latent, value):
    f = sae.encode(act)[..., latent]
    return act + (value - f)[..., None] * sae.W_dec[latent]


CLAMP = Exercise(
    id="w13_clamp_latent",
    title="clamp_latent",
    reference=_clamp_reference,
    cases=_clamp_cases,
    mistakes=[
        Mistake("reconstruction returned", _clamp_reconstruction,
                "keep the activation and change only the latent's contribution: returning the SAE's reconstruction "
                "throws away its error term (everything the SAE does not explain)."),
        Mistake("added without subtracting", _clamp_add_only,
                "the latent must READ `value` afterwards: add (value - f_i(act)) * direction, not value * direction."),
        Mistake("output scale forgotten", _clamp_no_scale,
                "one unit of latent i adds W_dec[i] / sae.output_scale to the activation (decode divides by it)."),
    ],
    hint="read the latent's current value with sae.encode; the change you need is (value - current) units of that "
         "latent, one unit being its decoder row in the model's units (mind sae.output_scale). Add that change to "
         "act itself, so the rest of act (the error term too) is kept.",
)


def check_clamp_latent(fn, seed: int | None = None) -> bool:
    """Check ``clamp_latent(sae, act [batch, pos, d], latent, value) -> [batch, pos, d]``."""
    return check(CLAMP, fn, seed)


# -- 4. behaviour at equal damage --------------------------------------------------------------
def _bad_reference(rows: list, damage: float) -> float:
    return ST.behaviour_at_damage(rows, damage)


def _bad_cases(seed: int) -> list[Case]:
    g = _g(seed)
    n = 5
    d = torch.rand(n, generator=g).cumsum(0) * 0.1 + 0.02
    b = torch.rand(n, generator=g).cumsum(0) * 2 + 0.3
    perm = torch.randperm(n, generator=g).tolist()
    if perm == sorted(perm):
        perm = perm[::-1]
    rows = [{"strength": float(2 * (i + 1)), "d_damage": float(d[i]), "d_behaviour": float(b[i])} for i in perm]
    lo, hi = 0.5 * float(d[0]), 0.5 * float(d[1] + d[2])
    mid = float(d[2] + 0.37 * (d[3] - d[2]))
    return [Case(f"seed {seed}, damage {x:.3f}", {"rows": rows, "damage": x}) for x in (mid, hi, lo)]


def _bad_no_origin(rows, damage):
    pts = sorted((r["d_damage"], r["d_behaviour"]) for r in rows)
    if damage <= pts[0][0]:
        return pts[0][1]
    for (d0, b0), (d1, b1) in zip(pts, pts[1:]):
        if d0 <= damage <= d1:
            return b0 + (b1 - b0) * (damage - d0) / (d1 - d0)
    return float("nan")


def _bad_nearest(rows, damage):
    return min(rows, key=lambda r: abs(r["d_damage"] - damage))["d_behaviour"]


def _bad_unsorted(rows, damage):
    pts = [(0.0, 0.0)] + [(r["d_damage"], r["d_behaviour"]) for r in rows]
    for (d0, b0), (d1, b1) in zip(pts, pts[1:]):
        if min(d0, d1) <= damage <= max(d0, d1):
            return b0 + (b1 - b0) * (damage - d0) / (d1 - d0)
    return 0.0


BEHAVIOUR_AT_DAMAGE = Exercise(
    id="w13_behaviour_at_damage",
    title="behaviour_at_damage",
    reference=_bad_reference,
    cases=_bad_cases,
    mistakes=[
        Mistake("no origin", _bad_no_origin,
                "strength 0 is a point of every sweep: (damage 0, behaviour change 0). Below the weakest strength, "
                "interpolate from there."),
        Mistake("nearest row", _bad_nearest,
                "interpolate linearly between the two measured points around the damage, not the nearest one."),
        Mistake("rows not sorted", _bad_unsorted,
                "sort the points by damage first: a sweep's rows come in the order of their strengths, and damage "
                "need not rise with strength."),
    ],
    hint="the points are (0, 0) plus each row's (d_damage, d_behaviour), sorted by damage; find the two around "
         "`damage` and interpolate linearly between them; above the largest damage measured there is nothing to "
         "interpolate (nan).",
)


def check_behaviour_at_damage(fn, seed: int | None = None) -> bool:
    """Check ``behaviour_at_damage(rows, damage) -> float`` (rows from ``steering.sweep``)."""
    return check(BEHAVIOUR_AT_DAMAGE, fn, seed)


# -- 5. what the model would say: the target's share of top predictions -------------------------
def _top1_reference(logits: torch.Tensor, targets: list) -> float:
    return ST.top_prediction_share(logits, targets)


def _top1_cases(seed: int) -> list[Case]:
    """Random logits with the targets planted as the top prediction at known places: some by a wide margin
    (probability above one half), some by a hair (well below it), some at the first position, and each
    target at least once."""
    g = _g(seed)
    cases = []
    for b, pos, vocab in ((3, 12, 20), (2, 9, 30)):
        logits = torch.randn(b, pos, vocab, generator=g)
        targets = torch.randperm(vocab, generator=g)[:2].tolist()
        logits[..., targets] -= 5.0  # no accidental wins
        top = logits.max(-1).values
        plant = [(0, 0, 0, 0.1), (1, 0, 1, 6.0)]  # (batch, position, which target, margin): the first position
        plant += [(i % b, 1 + (3 * i + seed) % (pos - 1), i % 2, 6.0 if i % 4 == 1 else 0.1) for i in range(4 + seed % 4)]
        for bi, p, t, margin in plant:
            logits[bi, p, targets[t]] = top[bi, p] + margin
        cases.append(Case(f"seed {seed}, logits {list(logits.shape)}, targets {targets}",
                          {"logits": logits, "targets": targets}))
    return cases


def _top1_first_kept(logits, targets):
    return float(torch.isin(logits.argmax(-1), torch.tensor(targets)).float().mean())


def _top1_first_target(logits, targets):
    return float((logits[:, 1:].argmax(-1) == targets[0]).float().mean())


def _top1_over_half(logits, targets):
    return float((logits[:, 1:].softmax(-1)[..., targets].sum(-1) > 0.5).float().mean())


def _top1_count(logits, targets):
    return float(torch.isin(logits[:, 1:].argmax(-1), torch.tensor(targets)).sum())


TOP_PREDICTION = Exercise(
    id="w13_top_prediction_share",
    title="top_prediction_share",
    reference=_top1_reference,
    cases=_top1_cases,
    mistakes=[
        Mistake("first position kept", _top1_first_kept,
                "leave out the first position: it predicts the token right after <|endoftext|>, the same "
                "situation in every window."),
        Mistake("first target only", _top1_first_target,
                "a target can be several token ids (with and without a leading space): count a position when "
                "its top prediction is any of them."),
        Mistake("probability over a half", _top1_over_half,
                "the question is which token the model would pick (its top prediction), not whether the targets "
                "hold most of the probability: a token can be the top choice at 20%."),
        Mistake("a count", _top1_count, "return a share of the positions (between 0 and 1), not a count."),
    ],
    hint="take the argmax over the vocabulary at every position but the first, and average whether it is one of "
         "the target ids.",
)


def check_top_prediction_share(fn, seed: int | None = None) -> bool:
    """Check ``top_prediction_share(logits [batch, pos, d_vocab], targets) -> float``."""
    return check(TOP_PREDICTION, fn, seed)


EXERCISES.update({ex.id: ex for ex in (STEER, DIFF_OF_MEANS, CLAMP, BEHAVIOUR_AT_DAMAGE, TOP_PREDICTION)})


# -- a tiny model with an SAE: the cases of the circuit exercises --------------------------------
TINY = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=50, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")
HOOK = "blocks.0.hook_resid_post"


@lru_cache(maxsize=1)
def tiny_model():
    """A two-layer transformer with random weights (seeded): the model the circuit exercises run on."""
    from mi_course import zoo

    model = zoo.build(TINY, seed=0)
    model.eval()
    with torch.no_grad():
        model.W_U.mul_(10.0)  # logits of a few units, so node effects are well above the checker's tolerance
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@lru_cache(maxsize=4)
def _tiny_sae(seed: int):
    return _rand_sae(16, 48, seed)


def _metric_fn(a: int, b: int):
    def metric(logits: torch.Tensor) -> torch.Tensor:
        """Mean logit difference of token a over token b at the last position."""
        return (logits[:, -1, a] - logits[:, -1, b]).mean()

    return metric


def circuit_case(seed: int, name: str = "") -> dict:
    """The arguments of one circuit-exercise case: the tiny model, an SAE, tokens, patch tokens, a metric."""
    g = _g(seed)
    n, pos = 4, 7
    tokens = torch.randint(1, 50, (n, pos), generator=g)
    patch = tokens.clone()
    k = int(torch.randint(1, pos - 1, (1,), generator=g))
    patch[:, k] = torch.randint(1, 50, (n,), generator=g)
    patch[:, -1] = torch.randint(1, 50, (n,), generator=g)
    a, b = (int(x) for x in torch.randperm(50, generator=g)[:2])
    return {"model": tiny_model(), "sae": _tiny_sae(seed % 3), "hook_name": HOOK, "tokens": tokens,
            "patch_tokens": patch, "metric": _metric_fn(a, b)}


# -- 6. node attribution over latents and error terms ----------------------------------------
def _node_reference(model, sae, hook_name, tokens, patch_tokens, metric):
    e = SFC.node_effects(model, {hook_name: sae}, tokens, metric, patch_tokens)[hook_name]
    return e["latents"], e["error"]


def _node_cases(seed: int) -> list[Case]:
    return [Case(f"seed {seed}, tiny model, SAE at {HOOK}", circuit_case(seed, "atp"))]


def _spliced_grads(model, sae, hook_name, tokens, metric, keep_error: bool = True):
    store = {}

    def hook(act, hook=None):
        f = sae.encode(act).detach().requires_grad_(True)
        err = (act - sae.decode(f)).detach().requires_grad_(True)
        store["f"], store["err"] = f, err
        return sae.decode(f) + err if keep_error else sae.decode(f)

    with torch.enable_grad():
        m = metric(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook)]))
        m.backward()
    return store["f"], store["err"]


@torch.no_grad()
def _node_values(model, sae, hook_name, tokens):
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook_name)
    x = cache[hook_name]
    f = sae.encode(x)
    return f, x - sae.decode(f)


def _node_flipped(model, sae, hook_name, tokens, patch_tokens, metric):
    lat, err = _node_reference(model, sae, hook_name, tokens, patch_tokens, metric)
    return -lat, -err


def _node_zero_ablation(model, sae, hook_name, tokens, patch_tokens, metric):
    e = SFC.node_effects(model, {hook_name: sae}, tokens, metric, None)[hook_name]
    return e["latents"], e["error"]


def _node_no_error(model, sae, hook_name, tokens, patch_tokens, metric):
    f, _ = _spliced_grads(model, sae, hook_name, tokens, metric, keep_error=False)
    fc, _ = _node_values(model, sae, hook_name, tokens)
    fp, _ = _node_values(model, sae, hook_name, patch_tokens)
    return ((fp - fc) * f.grad).sum(0), torch.zeros(tokens.shape[1])


NODE_ATTRIBUTION = Exercise(
    id="w13_node_attribution",
    title="node_attribution",
    reference=_node_reference,
    cases=_node_cases,
    mistakes=[
        Mistake("clean minus patch", _node_flipped,
                "the estimated effect of patching is (a_patch - a_clean) . grad: patched MINUS clean."),
        Mistake("zero ablation", _node_zero_ablation,
                "patch each node to its value on patch_tokens, not to zero: run the SAE on the patch prompts too."),
        Mistake("error term left out", _node_no_error,
                "splice the SAE in WITH its error term (decode(f) + err, so the model's output is unchanged) and give "
                "the error its own node: its effect is (err_patch - err_clean) . grad_err, summed over d."),
    ],
    hint="splice the SAE in at the hook with its latents and its error as leaf tensors you made, so that the "
         "model's output does not change; one backward pass of the metric then gives every node's gradient. A "
         "node's estimate is (its value on the patch prompts - its clean value) times that gradient, summed over "
         "the batch (and over d for an error node). Check the shapes: [pos, d_sae] and [pos].",
)


def check_node_attribution(fn, seed: int | None = None) -> bool:
    """Check ``node_attribution(model, sae, hook_name, tokens, patch_tokens, metric) -> (latents [pos, d_sae], error [pos])``."""
    return check(NODE_ATTRIBUTION, fn, seed)


# -- 7. integrated gradients -------------------------------------------------------------------
def _ig_reference(model, sae, hook_name, tokens, patch_tokens, metric, steps):
    e = SFC.node_effects(model, {hook_name: sae}, tokens, metric, patch_tokens, method="ig", steps=steps)[hook_name]
    return e["latents"], e["error"]


def _ig_cases(seed: int) -> list[Case]:
    g = _g(seed + 77)
    steps = [3, 6] if seed == 0 else [int(torch.randint(2, 7, (1,), generator=g))]
    return [Case(f"seed {seed}, steps {s}", {**circuit_case(seed, "ig"), "steps": s}) for s in steps]


def _ig_alphas(model, sae, hook_name, tokens, patch_tokens, metric, alphas):
    fc, ec = _node_values(model, sae, hook_name, tokens)
    fp, ep = _node_values(model, sae, hook_name, patch_tokens)
    gf, ge = torch.zeros_like(fc), torch.zeros_like(ec)
    for alpha in alphas:
        f = (fc + alpha * (fp - fc)).requires_grad_(True)
        e = (ec + alpha * (ep - ec)).requires_grad_(True)
        with torch.enable_grad():
            m = metric(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, lambda act, hook=None: sae.decode(f) + e)]))
            a, b = torch.autograd.grad(m, [f, e])
        gf += a / len(alphas)
        ge += b / len(alphas)
    return ((fp - fc) * gf).sum(0), ((ep - ec) * ge).sum((0, -1))


def _ig_left(model, sae, hook_name, tokens, patch_tokens, metric, steps):
    return _ig_alphas(model, sae, hook_name, tokens, patch_tokens, metric, [k / steps for k in range(steps)])


def _ig_clean_only(model, sae, hook_name, tokens, patch_tokens, metric, steps):
    return _node_reference(model, sae, hook_name, tokens, patch_tokens, metric)


def _ig_no_mean(model, sae, hook_name, tokens, patch_tokens, metric, steps):
    lat, err = _ig_reference(model, sae, hook_name, tokens, patch_tokens, metric, steps)
    return lat * steps, err * steps


INTEGRATED_GRADIENTS = Exercise(
    id="w13_integrated_gradients",
    title="ig_attribution",
    reference=_ig_reference,
    cases=_ig_cases,
    mistakes=[
        Mistake("left endpoints", _ig_left,
                "use the MIDPOINTS alpha = (k + 0.5) / steps, k = 0..steps-1 (the left endpoints k / steps start at "
                "the clean point and never reach the patched one)."),
        Mistake("gradient at the clean point only", _ig_clean_only,
                "that is attribution patching: integrated gradients AVERAGES the gradient at `steps` points on the "
                "line from the clean values to the patched ones, with the SAE's latents and error set to each point."),
        Mistake("gradients summed, not averaged", _ig_no_mean,
                "average the gradients over the steps (divide their sum by `steps`)."),
    ],
    hint="this is attribution patching with a better gradient: the gradient averaged over `steps` points on the "
         "straight line from the clean latents and error to the patched ones (the midpoints of `steps` equal "
         "pieces). At each point the hook's activation must be what the SAE's latents and error at that point give; "
         "the (patch - clean) factor and the sums are as in attribution patching.",
)


def check_integrated_gradients(fn, seed: int | None = None) -> bool:
    """Check ``ig_attribution(model, sae, hook_name, tokens, patch_tokens, metric, steps) -> (latents [pos, d_sae], error [pos])``."""
    return check(INTEGRATED_GRADIENTS, fn, seed)


# -- 8. mean-ablating the nodes outside a circuit ----------------------------------------------
def _abl_reference(f, err, keep_f, keep_e, mean_f, mean_e):
    return torch.where(keep_f, f, mean_f), torch.where(keep_e[:, None], err, mean_e)


def _abl_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for share in ([0.1, 0.5] if seed == 0 else [float(torch.rand(1, generator=g)) * 0.6 + 0.1]):
        b, pos, d_sae, d = 3, 5, 12, 6
        keep_e = torch.rand(pos, generator=g) < 0.5
        keep_e[0], keep_e[1] = True, False
        out.append(Case(f"seed {seed}, {share:.0%} of latents kept", {
            "f": torch.relu(torch.randn(b, pos, d_sae, generator=g)), "err": torch.randn(b, pos, d, generator=g),
            "keep_f": torch.rand(pos, d_sae, generator=g) < share, "keep_e": keep_e,
            "mean_f": torch.rand(pos, d_sae, generator=g), "mean_e": torch.randn(pos, d, generator=g)}))
    return out


ABLATE_OUTSIDE = Exercise(
    id="w13_ablate_outside",
    title="ablate_outside",
    reference=_abl_reference,
    cases=_abl_cases,
    mistakes=[
        Mistake("zero ablation", lambda f, err, keep_f, keep_e, mean_f, mean_e:
                (f * keep_f, err * keep_e[:, None]),
                "F(C) MEAN-ablates the nodes outside the circuit (to their mean over reference prompts): use mean_f and "
                "mean_e, not zero."),
        Mistake("circuit ablated", lambda f, err, keep_f, keep_e, mean_f, mean_e:
                _abl_reference(f, err, ~keep_f, ~keep_e, mean_f, mean_e),
                "keep the nodes IN the circuit (keep is True) and ablate the others."),
        Mistake("error nodes always kept", lambda f, err, keep_f, keep_e, mean_f, mean_e:
                (torch.where(keep_f, f, mean_f), err),
                "the error terms are nodes too: an error outside the circuit is mean-ablated like a latent."),
    ],
    hint="torch.where chooses element by element between two tensors and broadcasts; check that each mask lines "
         "up with what it selects (keep_f [pos, d_sae] against f [b, pos, d_sae]; keep_e [pos] against err "
         "[b, pos, d]).",
)


def check_ablate_outside(fn, seed: int | None = None) -> bool:
    """Check ``ablate_outside(f [b, pos, d_sae], err [b, pos, d], keep_f [pos, d_sae], keep_e [pos], mean_f, mean_e) -> (f, err)``."""
    return check(ABLATE_OUTSIDE, fn, seed)


# -- 9. faithfulness and completeness ----------------------------------------------------------
def _fc_reference(F_C: float, F_M_minus_C: float, F_M: float, F_empty: float):
    return (F_C - F_empty) / (F_M - F_empty), (F_M_minus_C - F_empty) / (F_M - F_empty)


def _fc_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for _ in range(2 if seed == 0 else 1):
        fm, f0 = 2 + 3 * float(torch.rand(1, generator=g)), -1 + 1.5 * float(torch.rand(1, generator=g))
        fc = f0 + (fm - f0) * (0.4 + 0.7 * float(torch.rand(1, generator=g)))
        fmc = f0 + (fm - f0) * (0.05 + 0.5 * float(torch.rand(1, generator=g)))
        out.append(Case(f"seed {seed}, F(M)={fm:.2f}, F(empty)={f0:.2f}",
                        {"F_C": fc, "F_M_minus_C": fmc, "F_M": fm, "F_empty": f0}))
    return out


FAITHFULNESS = Exercise(
    id="w13_faithfulness",
    title="faithfulness_completeness",
    reference=_fc_reference,
    cases=_fc_cases,
    mistakes=[
        Mistake("plain ratio", lambda F_C, F_M_minus_C, F_M, F_empty: (F_C / F_M, F_M_minus_C / F_M),
                "subtract F(empty) (everything mean-ablated) from both: 0 must mean 'no better than the empty circuit'."),
        Mistake("completeness as 1 - faithfulness", lambda F_C, F_M_minus_C, F_M, F_empty:
                ((F_C - F_empty) / (F_M - F_empty), 1 - (F_C - F_empty) / (F_M - F_empty)),
                "completeness is measured on its own run: F(M minus C), the model with the CIRCUIT's nodes ablated."),
    ],
    hint="both put one run on the same scale, where 0 is everything ablated (F_empty) and 1 is the whole model "
         "(F_M): faithfulness places the run that keeps only the circuit there, completeness the run with the "
         "circuit ablated.",
)


def check_faithfulness(fn, seed: int | None = None) -> bool:
    """Check ``faithfulness_completeness(F_C, F_M_minus_C, F_M, F_empty) -> (faithfulness, completeness)``."""
    return check(FAITHFULNESS, fn, seed)


EXERCISES.update({ex.id: ex for ex in (NODE_ATTRIBUTION, INTEGRATED_GRADIENTS, ABLATE_OUTSIDE, FAITHFULNESS)})


# -- 10. the probe's latent attributions (SHIFT step 2) -----------------------------------------
def _pa_reference(sae, direction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return SH.latent_attributions(sae, SimpleNamespace(direction=direction), x)


def _pa_cases(seed: int) -> list[Case]:
    g = _g(seed)
    sae = _rand_sae(10, 30, seed + 5)
    return [Case(f"seed {seed}, {n} people", {"sae": sae, "direction": torch.randn(10, generator=g),
                                               "x": torch.randn(n, 10, generator=g)}) for n in ((6, 11) if seed == 0 else (9,))]


def _pa_signed(sae, direction, x):
    return (sae.encode(x) * (sae.W_dec / sae.output_scale @ direction)).mean(0)


def _pa_decoder_only(sae, direction, x):
    return (sae.W_dec / sae.output_scale @ direction).abs()


def _pa_no_scale(sae, direction, x):
    return (sae.encode(x) * (sae.W_dec @ direction)).abs().mean(0)


PROBE_ATTRIBUTION = Exercise(
    id="w13_probe_attribution",
    title="probe_attributions",
    reference=_pa_reference,
    cases=_pa_cases,
    mistakes=[
        Mistake("signed", _pa_signed,
                "rank by the SIZE of the effect: take |effect| for each person, then the mean."),
        Mistake("output scale forgotten", _pa_no_scale,
                "one unit of latent i adds W_dec[i] / sae.output_scale to the activation (decode divides by it)."),
        Mistake("activation ignored", _pa_decoder_only,
                "the effect of ablating latent i is f_i(x) times its direction's dot product with the probe: a "
                "latent that never fires has no effect, whatever its decoder row."),
    ],
    hint="the probe is linear, so no gradient is needed: zeroing a latent removes its contribution from x (its "
         "activation times its decoder row in the model's units, mind sae.output_scale) and changes the logit by "
         "minus that contribution's dot product with direction. Average the size of that change over people: one "
         "value per latent.",
)


def check_probe_attribution(fn, seed: int | None = None) -> bool:
    """Check ``probe_attributions(sae, direction [d], x [n, d]) -> [d_sae]``."""
    return check(PROBE_ATTRIBUTION, fn, seed)


# -- 11. purity: judging a latent --------------------------------------------------------------
def _purity_reference(latents: torch.Tensor, labels: torch.Tensor, min_count: int) -> torch.Tensor:
    return SH.purity(latents, labels, min_count)


def _purity_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for min_count in ([3, 5] if seed == 0 else [int(torch.randint(2, 6, (1,), generator=g))]):
        n, d = 40, 16
        labels = torch.randint(0, 2, (n,), generator=g)
        lat = torch.relu(torch.randn(n, d, generator=g) - 1.0)
        lat[:, 0] = torch.where(labels == 0, 1.0 + torch.rand(n, generator=g), torch.zeros(n))  # pure class 0
        lat[:, 1] = 0.0
        lat[:1, 1] = 1.0  # fires once only: always below min_count (>= 2)
        lat[:, 2] = 0.0
        lat[: min_count - 1, 2] = 1.0  # one short of min_count
        out.append(Case(f"seed {seed}, min_count {min_count}", {"latents": lat, "labels": labels, "min_count": min_count}))
    return out


def _purity_share_of_ones(latents, labels, min_count):
    on = (latents > 0).float()
    n_on = on.sum(0)
    p1 = (on * labels.float()[:, None]).sum(0) / n_on.clamp_min(1)
    return torch.where(n_on >= min_count, p1, torch.full_like(p1, 0.5))


def _purity_no_min(latents, labels, min_count):
    on = (latents > 0).float()
    n_on = on.sum(0)
    p1 = (on * labels.float()[:, None]).sum(0) / n_on.clamp_min(1)
    return torch.where(n_on >= 1, torch.maximum(p1, 1 - p1), torch.full_like(p1, 0.5))


def _purity_weighted(latents, labels, min_count):
    w = latents.float()
    n_on = (latents > 0).float().sum(0)
    p1 = (w * labels.float()[:, None]).sum(0) / w.sum(0).clamp_min(1e-12)
    return torch.where(n_on >= min_count, torch.maximum(p1, 1 - p1), torch.full_like(p1, 0.5))


PURITY = Exercise(
    id="w13_purity",
    title="purity",
    reference=_purity_reference,
    cases=_purity_cases,
    mistakes=[
        Mistake("share of class 1", _purity_share_of_ones,
                "purity is the share of the MAJORITY class among the inputs a latent fires on: max(p, 1 - p)."),
        Mistake("min_count ignored", _purity_no_min,
                "a latent that fires on fewer than min_count inputs gets 0.5 (too few to judge)."),
        Mistake("weighted by activation", _purity_weighted,
                "count the inputs where the latent fires (latents > 0), each once, whatever its activation."),
    ],
    hint="for each latent look only at the inputs where it fires (each counted once); its purity is the share of "
         "whichever label is more common there. A latent that fires on fewer than min_count inputs is too rare to "
         "judge (0.5), and one that never fires must not divide by zero.",
)


def check_purity(fn, seed: int | None = None) -> bool:
    """Check ``purity(latents [n, d_sae], labels [n], min_count) -> [d_sae]``."""
    return check(PURITY, fn, seed)


# -- 12. the SHIFT ablation --------------------------------------------------------------------
def _shift_reference(sae, x: torch.Tensor, latents: list) -> torch.Tensor:
    return SH.ablate_latents(sae, x, latents)


def _shift_cases(seed: int) -> list[Case]:
    g = _g(seed)
    sae = _rand_sae(12, 36, seed + 9)
    out = []
    for n_lat in ((1, 5) if seed == 0 else (int(torch.randint(2, 8, (1,), generator=g)),)):
        x = torch.randn(10, 12, generator=g)
        alive = (sae.encode(x) > 0).any(0).nonzero()[:, 0]
        pick = alive[torch.randperm(len(alive), generator=g)[:n_lat]].tolist()
        out.append(Case(f"seed {seed}, {n_lat} latents", {"sae": sae, "x": x, "latents": pick}))
    return out


def _shift_reconstruction(sae, x, latents):
    f = sae.encode(x)
    f[:, latents] = 0
    return sae.decode(f)


def _shift_no_scale(sae, x, latents):
    f = sae.encode(x)
    return x - f[:, latents] @ sae.W_dec[latents]


def _shift_directions(sae, x, latents):
    return x - (sae.W_dec[latents] / sae.output_scale).sum(0)


SHIFT_ABLATION = Exercise(
    id="w13_shift_ablation",
    title="ablate_latents",
    reference=_shift_reference,
    cases=_shift_cases,
    mistakes=[
        Mistake("reconstruction returned", _shift_reconstruction,
                "keep the SAE's error term: decode(f with the latents zeroed) throws away everything the SAE does not "
                "reconstruct; subtract the chosen latents' contributions from x instead."),
        Mistake("output scale forgotten", _shift_no_scale,
                "one unit of latent i adds W_dec[i] / sae.output_scale (decode divides by it)."),
        Mistake("directions subtracted", _shift_directions,
                "subtract each latent's CONTRIBUTION f_i(x) * direction_i (zero for a person it does not fire on), "
                "not the bare direction."),
    ],
    hint="subtract from x what the chosen latents wrote: for each, its activation on that person times its "
         "decoder row in the model's units (mind sae.output_scale). Do not go through a reconstruction, so the "
         "error term stays.",
)


def check_shift_ablation(fn, seed: int | None = None) -> bool:
    """Check ``ablate_latents(sae, x [n, d], latents) -> [n, d]``."""
    return check(SHIFT_ABLATION, fn, seed)


EXERCISES.update({ex.id: ex for ex in (PROBE_ATTRIBUTION, PURITY, SHIFT_ABLATION)})

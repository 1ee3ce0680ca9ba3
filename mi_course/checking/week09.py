"""Checkers for week 09: MEMIT (mass editing) on ``kb-lm``, and the week's scaling evaluation.

Each ``check_*`` runs your function against the package's reference (:mod:`mi_course.methods.memit`,
:mod:`mi_course.methods.rome`) on fixed and random cases, and recognises the common mistakes listed
with each exercise.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking import kb_lm
from mi_course.checking import core
from mi_course.checking.core import Case, Exercise, Mistake, yours_or_reference  # noqa: F401
from mi_course.methods import causal_tracing as ct
from mi_course.methods import memit, rome

MODEL = "kb-lm"


_model = kb_lm.model  # kb-lm and its KB, loaded once for all of block 2's checkers
_kb = kb_lm.knowledge_base


def _visible(ex: Exercise, fn, seed) -> bool:
    __tracebackhide__ = True  # noqa: F841
    return core.check(ex, fn, seed)


@lru_cache(maxsize=16)
def _requests(seed: int, n: int) -> tuple:
    """``n`` seeded counterfactual requests (ROME's format) from the KB."""
    from mi_course.methods import edit_evaluation as ev

    return tuple(c.request for c in ev.kb_cases(_model(), _kb(), n, seed=seed))


def _contexts(seed: int) -> list[str]:
    return rome.context_templates(_model(), ((4, 2),), seed=seed)


# -- 1. the residual's share at one layer ---------------------------------------------------------
def residual_share(R: torch.Tensor, layers: list[int], layer: int) -> torch.Tensor:
    """``R / (number of layers from `layer` to the last of `layers`, inclusive)``."""
    return R / (len(layers) - layers.index(layer))


def _share_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for first, n in [(1, 3), (0, 4)]:
        layers = list(range(first, first + n))
        layer = layers[int(torch.randint(0, n - 1, (1,), generator=g))]
        out.append(Case(f"seed {seed}, layers {layers}, layer {layer}",
                        {"R": torch.randn(5, 8, generator=g), "layers": layers, "layer": layer}))
    return out


SHARE = Exercise(
    id="w09_residual_share", title="residual_share", reference=residual_share, cases=_share_cases,
    mistakes=[
        Mistake("equal split", lambda R, layers, layer: R / len(layers),
                "the residual is recomputed before each layer, so each layer takes its share of what is *left*: "
                "divide by the number of layers from this one to the last (this one included), not by all of them."),
        Mistake("from the bottom", lambda R, layers, layer: R / (layers.index(layer) + 1),
                "count the layers still to come (this one and the ones above it), not the ones below."),
        Mistake("by layer number", lambda R, layers, layer: R / (layers[-1] - layer + 1 + layers[0]),
                "count positions in `layers` (layers.index), not layer numbers."),
    ],
    hint="Count the layers from this one to the last, this one included (`layers.index` gives this layer's position "
         "in the list). Self-check: the first of three layers takes a third of R, the last one all of it.",
)


def check_residual_share(fn, seed: int | None = None):
    """Check ``residual_share(R, layers, layer) -> R's share``."""
    return _visible(SHARE, fn, seed)


# -- 2. the batched least-squares update ------------------------------------------------------------
def memit_update(K: torch.Tensor, R: torch.Tensor, C: torch.Tensor, lam: float) -> torch.Tensor:
    """ΔW ``[d_mlp, d_model]`` = ``(λ C + Kᵀ K)⁻¹ Kᵀ R`` (see :func:`mi_course.methods.memit.memit_update`)."""
    return memit.memit_update(K, R, C, lam)


def _update_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, m, d, lam in [(4, 12, 6, 2.0), (9, 24, 8, 15.0)]:
        A = torch.randn(m, m, generator=g)
        K = torch.randn(n, m, generator=g).abs()
        K[1] = K[0] + 0.1 * torch.randn(m, generator=g)  # two nearly equal keys: they must share the work
        out.append(Case(f"seed {seed}, {n} keys, d_mlp={m}, d_model={d}, lam={lam}", {
            "K": K, "R": torch.randn(n, d, generator=g), "C": A @ A.T / m + 0.3 * torch.eye(m), "lam": lam}))
    return out


def _rank_one_sum(K, R, C, lam):
    """ROME's update for each key alone (u = (λC)⁻¹k), summed: ignores the other keys."""
    out = torch.zeros(K.shape[1], R.shape[1])
    for k, r in zip(K, R):
        u = torch.linalg.solve(lam * C + torch.outer(k, k), k)
        out += torch.outer(u, r)
    return out


UPDATE = Exercise(
    id="w09_memit_update", title="memit_update", reference=memit_update, cases=_update_cases, atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake("no C", lambda K, R, C, lam: memit.memit_update(K, R, torch.eye(C.shape[0]), lam),
                "the old memories enter through C: solve with λ C + KᵀK, not λ I + KᵀK."),
        Mistake("no new keys", lambda K, R, C, lam: torch.linalg.solve(lam * C, K.T @ R),
                "the matrix is λ C + KᵀK: the new keys' own second moment KᵀK belongs beside λ C."),
        Mistake("one key at a time", _rank_one_sum,
                "MEMIT solves for all keys jointly: one solve with λ C + KᵀK (all keys), then times Kᵀ R; "
                "summing separate one-key updates double-counts keys that look alike."),
        Mistake("λ on the wrong term", lambda K, R, C, lam: torch.linalg.solve(C + lam * K.T @ K, K.T @ R),
                "λ weighs the old memories: λ C + KᵀK, not C + λ KᵀK."),
    ],
    hint="Compute the goal's formula without inverting a matrix: look up `torch.linalg.solve`. The system's matrix is "
         "[d_mlp, d_mlp] and weighs the old memories C against the new keys; Δ must come out [d_mlp, d_model].",
)


def check_memit_update(fn, seed: int | None = None):
    """Check ``memit_update(K, R, C, lam) -> [d_mlp, d_model]``."""
    return _visible(UPDATE, fn, seed)


# -- 3. λ for a model of another width --------------------------------------------------------------
def scaled_lambda(lam_ref: float, d_mlp_ref: int, d_mlp: int) -> float:
    """λ at the same ratio ``d_mlp / λ`` as the reference model: ``lam_ref · d_mlp / d_mlp_ref``."""
    return float(lam_ref * d_mlp / d_mlp_ref)


def _lambda_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for lam, dref in [(15000.0, 16384), (20000.0, 6400)]:
        d = int(torch.randint(64, 4096, (1,), generator=g))
        out.append(Case(f"seed {seed}, lam_ref={lam}, d_mlp_ref={dref}, d_mlp={d}",
                        {"lam_ref": lam, "d_mlp_ref": dref, "d_mlp": d}))
    return out


LAMBDA = Exercise(
    id="w09_scaled_lambda", title="scaled_lambda", reference=scaled_lambda, cases=_lambda_cases,
    mistakes=[
        Mistake("inverted", lambda lam_ref, d_mlp_ref, d_mlp: float(lam_ref * d_mlp_ref / d_mlp),
                "a narrower MLP has a smaller kᵀC⁻¹k (about d_mlp), so λ shrinks with d_mlp: multiply by d_mlp / d_mlp_ref."),
        Mistake("unscaled", lambda lam_ref, d_mlp_ref, d_mlp: float(lam_ref),
                "C is a mean, but what one key writes depends on d_mlp / λ: scale λ by d_mlp / d_mlp_ref."),
    ],
    hint="λ grows in proportion to the MLP width, so that d_mlp / λ stays the reference model's. Self-check: d_mlp == "
         "d_mlp_ref gives lam_ref back, and a narrower MLP a smaller λ.",
)


def check_scaled_lambda(fn, seed: int | None = None):
    """Check ``scaled_lambda(lam_ref, d_mlp_ref, d_mlp) -> float``."""
    return _visible(LAMBDA, fn, seed)


# -- 4. the keys of a batch -------------------------------------------------------------------------
@torch.no_grad()
def key_matrix(model, layer: int, requests: list[dict], contexts: list[str]) -> torch.Tensor:
    """K ``[n, d_mlp]``: each request's ``blocks.{layer}.mlp.hook_post`` at the subject's last token,
    averaged over ``contexts`` (templates with ``{}`` for the filled prompt)."""
    return memit.compute_keys(model, layer, requests, contexts)


def _key_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    reqs = list(_requests(100 + seed, 3))
    layer = int(torch.randint(0, 3, (1,), generator=g))
    return [Case(f"seed {seed}, 3 requests, layer {layer}, 3 contexts",
                 {"model": model, "layer": layer, "requests": reqs, "contexts": _contexts(seed)})]


@torch.no_grad()
def _keys_variant(model, layer, requests, contexts, where="subject", hook="post", average=True):
    name = f"blocks.{layer}.mlp.hook_{hook}"
    rows = []
    for r in requests:
        ks = []
        for c in (contexts if average else ["{}"]):
            text = c.format(r["prompt"].format(r["subject"]))
            toks = model.to_tokens(text)
            pos = ct.subject_range(model, text, r["subject"])[1] - 1 if where == "subject" else toks.shape[1] - 1
            _, cache = model.run_with_cache(toks, names_filter=lambda n: n == name)
            ks.append(cache[name][0, pos])
        rows.append(torch.stack(ks).mean(0))
    return torch.stack(rows)


KEYS = Exercise(
    id="w09_key_matrix", title="key_matrix", reference=key_matrix, cases=_key_cases, atol=1e-4,
    mistakes=[
        Mistake("last token", lambda model, layer, requests, contexts: _keys_variant(model, layer, requests, contexts,
                                                                                      where="last"),
                "the key is read at the subject's LAST token (ct.subject_range(...)[1] - 1), not at the prompt's last token."),
        Mistake("bare prompt only", lambda model, layer, requests, contexts: _keys_variant(model, layer, requests, contexts,
                                                                                            average=False),
                "average each key over all the contexts (c.format(prompt)), as ROME's k* is, not the bare prompt alone."),
        Mistake("pre-activation", lambda model, layer, requests, contexts: _keys_variant(model, layer, requests, contexts,
                                                                                          hook="pre"),
                "the key is the input to W_out: blocks.{layer}.mlp.hook_post (after the GELU), not hook_pre."),
    ],
    hint="Each row of K is one request's key: the input to W_out (`blocks.{layer}.mlp.hook_post`) at the subject's "
         "LAST token, averaged over the contexts. `rome.subject_range`'s end is exclusive; K must be [n_requests, "
         "d_mlp].",
)


def check_key_matrix(fn, seed: int | None = None):
    """Check ``key_matrix(model, layer, requests, contexts) -> [n, d_mlp]``."""
    return _visible(KEYS, fn, seed)


# -- 5. the residual at the last critical layer ----------------------------------------------------
@torch.no_grad()
def current_residual(model, z_layer: int, requests: list[dict], zs: torch.Tensor) -> torch.Tensor:
    """R ``[n, d_model]`` = ``zs − h``, h = ``blocks.{z_layer}.hook_resid_post`` at each subject's last
    token on the bare prompt (no context)."""
    return zs - memit.current_hidden(model, z_layer, requests)


def _resid_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    reqs = list(_requests(200 + seed, 3))
    layer = int(torch.randint(0, 3, (1,), generator=g))
    zs = memit.current_hidden(model, layer, reqs) + torch.randn(3, model.cfg.d_model, generator=g)
    return [Case(f"seed {seed}, 3 requests, z_layer {layer}", {"model": model, "z_layer": layer, "requests": reqs, "zs": zs})]


@torch.no_grad()
def _hidden_variant(model, z_layer, requests, zs, hook="hook_resid_post", sign=1.0, where="subject"):
    name = f"blocks.{z_layer}.{hook}"
    hs = []
    for r in requests:
        text = r["prompt"].format(r["subject"])
        toks = model.to_tokens(text)
        pos = ct.subject_range(model, text, r["subject"])[1] - 1 if where == "subject" else toks.shape[1] - 1
        _, cache = model.run_with_cache(toks, names_filter=lambda n: n == name)
        hs.append(cache[name][0, pos])
    return sign * (zs - torch.stack(hs))


RESID = Exercise(
    id="w09_current_residual", title="current_residual", reference=current_residual, cases=_resid_cases, atol=1e-4,
    mistakes=[
        Mistake("resid_pre", lambda model, z_layer, requests, zs: _hidden_variant(model, z_layer, requests, zs,
                                                                                   hook="hook_resid_pre"),
                "z is the hidden state AFTER the block: blocks.{z_layer}.hook_resid_post, not hook_resid_pre."),
        Mistake("MLP output", lambda model, z_layer, requests, zs: _hidden_variant(model, z_layer, requests, zs,
                                                                                    hook="hook_mlp_out"),
                "MEMIT's target is the whole hidden state (hook_resid_post), not the MLP output as in ROME's v*."),
        Mistake("sign", lambda model, z_layer, requests, zs: _hidden_variant(model, z_layer, requests, zs, sign=-1.0),
                "the residual is what is still missing: zs − h, not h − zs."),
    ],
    hint="h is the hidden state after block `z_layer` (`blocks.{z_layer}.hook_resid_post`), read at the subject's "
         "last token of the bare prompt (no context); R is what h still lacks to reach zs, one row per request.",
)


def check_current_residual(fn, seed: int | None = None):
    """Check ``current_residual(model, z_layer, requests, zs) -> [n, d_model]``."""
    return _visible(RESID, fn, seed)


# -- 6. the target z at the last critical layer --------------------------------------------------
def compute_z(model, layer: int, request: dict, contexts: list[str], kl_prompt: str, steps: int = 8, lr: float = 0.5,
              kl_factor: float = 0.0625, weight_decay: float = 0.5, clamp_norm_factor: float = 4.0) -> torch.Tensor:
    """z ``[d_model]`` = h + δ (see :func:`mi_course.methods.memit.compute_z`; one KL prompt)."""
    hp = memit.MemitHparams(v_num_grad_steps=steps, v_lr=lr, kl_factor=kl_factor, v_weight_decay=weight_decay,
                            clamp_norm_factor=clamp_norm_factor, kl_prompts=(kl_prompt,))
    return memit.compute_z(model, layer, request, contexts, hp)[0]


def _z_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    req = _requests(300 + seed, 1)[0]
    layer = int(torch.randint(0, 2, (1,), generator=g))
    kl = rome._kl_prompts(model, rome.RomeHparams())[0]
    kw = {"model": model, "layer": layer, "request": req, "contexts": _contexts(seed), "kl_prompt": kl}
    return [Case(f"seed {seed}, {req['prompt'].format(req['subject'])!r} -> {req['target_new']}, layer {layer}", kw),
            Case(f"seed {seed}, same with kl_factor=2.0, clamp_norm_factor=0.75, weight_decay=0.1, steps=5",
                 dict(kw, kl_factor=2.0, clamp_norm_factor=0.75, weight_decay=0.1, steps=5))]


def _z_variant(what: str):
    def fn(model, layer, request, contexts, kl_prompt, steps=8, lr=0.5, kl_factor=0.0625, weight_decay=0.5,
           clamp_norm_factor=4.0):
        hp = memit.MemitHparams(v_num_grad_steps=steps, v_lr=lr, kl_factor=kl_factor, v_weight_decay=weight_decay,
                                clamp_norm_factor=clamp_norm_factor, kl_prompts=(kl_prompt,))
        z, info = memit.compute_z(model, layer, request, contexts, hp)
        if what == "delta":
            return info["delta"]
        if what == "mlp norms":  # ROME's norms (relative to the MLP output) instead of the hidden state's
            req = rome.parse_request(model, request)
            texts = [c.format(req.prompt.format(req.subject)) for c in contexts] + [kl_prompt.format(req.subject)]
            lookup = torch.tensor([ct.subject_range(model, t, req.subject)[1] - 1 for t in texts])
            toks, lens = rome.pad_tokens(model, texts)
            delta = rome.optimise_delta(model, layer, toks, lookup, lens - 1, req.target_new, 1, kl_factor,
                                        weight_decay, steps, lr, clamp_norm_factor, stop_nll=5e-2)[0]
            return info["h"] + delta
        if what == "h at the last token":
            text = request["prompt"].format(request["subject"])
            name = f"blocks.{layer}.hook_resid_post"
            with torch.no_grad():
                _, cache = model.run_with_cache(model.to_tokens(text), names_filter=lambda n: n == name)
            return cache[name][0, -1] + info["delta"]
        raise ValueError(what)
    return fn


Z_EX = Exercise(
    id="w09_compute_z", title="compute_z", reference=compute_z, cases=_z_cases, atol=2e-3, rtol=2e-2,
    mistakes=[
        Mistake("δ only", _z_variant("delta"), "return the target hidden state z = h + δ, not the change δ alone."),
        Mistake("ROME's norms", _z_variant("mlp norms"),
                "MEMIT measures the clamp and the weight decay against the hidden state h (‖δ‖ <= clamp · ‖h‖, "
                "decay · ‖δ‖ / ‖h‖²), not against the MLP output as ROME's v* does."),
        Mistake("h at the last token", _z_variant("h at the last token"),
                "h is the hidden state at the subject's LAST token of the bare prompt (row 0's lookup), where δ is "
                "added, not at the prompt's last token."),
    ],
    hint="Compare your loop with the goal one piece at a time: h is read once, before optimising; δ is added at every "
         "row's last subject token; the early stop is tested before a step and the norm clamp applied after it; the "
         "result is the hidden state h + δ.",
)


def check_compute_z(fn, seed: int | None = None):
    """Check ``compute_z(model, layer, request, contexts, kl_prompt, steps=8, ...) -> [d_model]``."""
    return _visible(Z_EX, fn, seed)


# -- 7. the multi-layer loop --------------------------------------------------------------------------
def memit_layers(model, requests: list[dict], zs: torch.Tensor, layers: list[int], C: dict, lam: float,
                 contexts: list[str]) -> list[torch.Tensor]:
    """ΔW ``[d_mlp, d_model]`` for each layer in ``layers`` (MEMIT's loop; see :func:`memit.memit_edits`):
    before each layer, keys and residual are recomputed with the updates so far applied (hooks)."""
    out: list[torch.Tensor] = []
    edits: list = []
    for layer in layers:
        with rome.edited(model, edits):
            K = memit.compute_keys(model, layer, requests, contexts)
            R = zs - memit.current_hidden(model, layers[-1], requests)
        dW = memit.memit_update(K, memit.spread_residual(R, layers, layer), C[layer], lam)
        out.append(dW)
        edits.append(rome.Edit(layer, dW))
    return out


@lru_cache(maxsize=8)
def _loop_inputs(seed: int):
    model = _model()
    reqs = list(_requests(400 + seed, 4))
    hp = memit.MemitHparams(v_num_grad_steps=8, context_lengths=((4, 2),), seed=seed)
    layers = [0, 1] if seed % 2 == 0 else [0, 1, 2]
    zs = memit.compute_zs(model, reqs, layers[-1], hp)
    C = rome.second_moments(model, None, layers, n_texts=120)
    return reqs, zs, layers, C


def _loop_cases(seed: int) -> list[Case]:
    reqs, zs, layers, C = _loop_inputs(seed)
    return [Case(f"seed {seed}, 4 requests, layers {layers}, lam 469", {
        "model": _model(), "requests": reqs, "zs": zs, "layers": layers, "C": C, "lam": 468.75,
        "contexts": _contexts(seed)})]


def _loop_variant(what: str):
    def fn(model, requests, zs, layers, C, lam, contexts):
        out, edits = [], []
        R0 = zs - memit.current_hidden(model, layers[-1], requests)
        for layer in layers:
            if what == "stale keys":
                K = memit.compute_keys(model, layer, requests, contexts)
                with rome.edited(model, edits):
                    R = zs - memit.current_hidden(model, layers[-1], requests)
            else:
                with rome.edited(model, edits):
                    K = memit.compute_keys(model, layer, requests, contexts)
                    R = zs - memit.current_hidden(model, layers[-1], requests)
            if what == "no spread":
                share = R
            elif what == "stale residual":
                share = R0 / len(layers)
            else:
                share = memit.spread_residual(R, layers, layer)
            dW = memit.memit_update(K, share, C[layer], lam)
            out.append(dW)
            edits.append(rome.Edit(layer, dW))
        return out
    return fn


LOOP = Exercise(
    id="w09_memit_layers", title="memit_layers", reference=memit_layers, cases=_loop_cases, atol=1e-3, rtol=1e-2,
    mistakes=[
        Mistake("stale keys", _loop_variant("stale keys"),
                "recompute the keys with the updates of the lower layers applied (inside `with rome.edited(model, edits):`): "
                "an update at layer l changes the keys at every layer above it."),
        Mistake("no spread", _loop_variant("no spread"),
                "give each layer only its share of the residual (your residual_share), not all of it."),
        Mistake("stale residual", _loop_variant("stale residual"),
                "recompute the residual zs − h after each layer's update (the lower layers already moved h), then "
                "take this layer's share of it."),
    ],
    hint="Order matters: each layer's keys, and the residual at `layers[-1]`, must be measured with the updates of "
         "the layers below already applied (`rome.edited`); each layer then solves for its own share of that residual "
         "only.",
    visible_random_seed=False,
)


def check_memit_layers(fn, seed: int | None = None):
    """Check ``memit_layers(model, requests, zs, layers, C, lam, contexts) -> [ΔW per layer]``."""
    return _visible(LOOP, fn, seed)


# -- 8. honest neighbourhoods under many edits --------------------------------------------------------
def unedited_neighbours(neighbours: list[str], relation: str, edited: set) -> list[str]:
    """The neighbour subjects whose fact of ``relation`` is not itself edited (``edited``: (subject, relation) pairs)."""
    return [n for n in neighbours if (n, relation) not in edited]


def _neigh_cases(seed: int) -> list[Case]:
    kb = _kb()
    g = torch.Generator().manual_seed(seed)
    rels = list(kb.base_relations)
    subjects = list(kb.subjects)
    out = []
    for _ in range(2):
        rel = rels[int(torch.randint(len(rels), (1,), generator=g))]
        facts = kb.facts_of(rel)
        f = facts[int(torch.randint(len(facts), (1,), generator=g))]
        neigh = kb.neighbours(f.subject, rel)[:10]
        edited = {(n, rel) for n in neigh[::2]} | {(n, rels[(rels.index(rel) + 1) % len(rels)]) for n in neigh[1::3]}
        edited |= {(subjects[int(i)], rel) for i in torch.randint(len(subjects), (5,), generator=g)}
        out.append(Case(f"seed {seed}, {len(neigh)} neighbours of {f.subject} ({rel}), {len(edited)} edited pairs",
                        {"neighbours": neigh, "relation": rel, "edited": edited}))
    return out


NEIGH = Exercise(
    id="w09_unedited_neighbours", title="unedited_neighbours", reference=unedited_neighbours, cases=_neigh_cases,
    mistakes=[
        Mistake("any relation", lambda neighbours, relation, edited: [n for n in neighbours
                                                                     if n not in {s for s, _ in edited}],
                "only an edit of the SAME relation changes the neighbour's answer to this prompt; keep neighbours "
                "edited on other relations."),
        Mistake("no filter", lambda neighbours, relation, edited: list(neighbours),
                "leave out neighbours whose fact of this relation is itself in the edited set."),
    ],
    hint="Drop a neighbour only when its fact of THIS relation is in `edited`: an edit of another relation of the "
         "same person does not change this prompt's answer.",
)


def check_unedited_neighbours(fn, seed: int | None = None):
    """Check ``unedited_neighbours(neighbours, relation, edited) -> list[str]``."""
    return _visible(NEIGH, fn, seed)


EXERCISES = {ex.id: ex for ex in (SHARE, UPDATE, LAMBDA, KEYS, RESID, Z_EX, LOOP, NEIGH)}

# -- GRACE and ripple effects (mi_course.checking.week09_grace), one EXERCISES dict for the week ----
from mi_course.checking import week09_grace as _grace  # noqa: E402

GRACE_LOOKUP, CODEBOOK_UPDATE, RIPPLE_CI, RETENTION = _grace.LOOKUP, _grace.UPDATE, _grace.CI, _grace.RR
check_grace_layer_output = _grace.check_grace_layer_output
check_codebook_update = _grace.check_codebook_update
check_compositionality_i = _grace.check_compositionality_i
check_retention_rates = _grace.check_retention_rates
MEMIT_EXERCISES = dict(EXERCISES)
EXERCISES = {**MEMIT_EXERCISES, **_grace.EXERCISES}

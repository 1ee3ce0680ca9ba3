"""MEMIT: mass-editing memory in a transformer (Meng et al. 2023, *Mass-Editing Memory in a Transformer*).

ROME (:mod:`mi_course.methods.rome`) writes one fact into one layer's ``W_out``; applied again and
again, each rank-one update ignores the ones before it and the model degrades. MEMIT inserts a whole
batch of facts at once, into a range of layers ``R = [l_1, ..., l_L]``:

1. **targets at the last critical layer.** For each request ``i`` find the hidden state ``z_i`` at the
   subject's last token after layer ``l_L`` (``blocks.{l_L}.hook_resid_post``) that makes ``target_new``
   likely: ``z_i = h_i + δ_i``, with ``δ_i`` found as ROME's ``v*`` is (same loss: NLL over the prompt
   behind the context prefixes, KL term, weight decay; :func:`mi_course.methods.rome.optimise_delta`),
   but with MEMIT's norms: the clamp and the weight decay are relative to the *hidden state*
   ``‖h_i‖``, not to the MLP output.
2. **spread over the layers.** For ``l`` from ``l_1`` up to ``l_L``: recompute the keys ``K`` (the MLP
   hidden activations at each subject's last token, averaged over the context prefixes, as ROME's
   ``k*``) with the edits made so far, and the residual ``R = z − h`` (``h``: the current hidden state
   at ``l_L`` on the bare prompt); give this layer its share ``R / (l_L − l + 1)`` (the number of
   layers left, this one included) and solve the batched least squares (paper eq. 14), in ``W_out``'s
   ``[d_mlp, d_model]`` orientation with keys as rows (``K [n, d_mlp]``, ``R [n, d_model]``)::

       ΔW_out = (λ C + Kᵀ K)⁻¹ Kᵀ R        (the paper's Δ = R Kᵀ (λ C₀ + K Kᵀ)⁻¹ with keys as columns, transposed)

   so that ``K (W_out + ΔW_out)`` adds the share of the residual while keys that look like the
   text's keys (large ``C``) move little.

>>> edited = apply_memit(model, [{"prompt": "{} was born in", "subject": "Kalo Durmer", "target_new": "Lima"},
...                              {"prompt": "{} works for", "subject": "Brosuth Dony", "target_new": "Vexa"}])
>>> # `model` is unchanged; `edited` is a copy with W_out changed at each layer of `default_layers(model)`.

**λ (``mom2_update_weight``).** ``C`` here is a *mean* over tokens, ``E[k kᵀ]``, as in MEMIT's code
(``get_cov`` returns the second moment, not a sum), so ``λ C`` weighs the old memories as if there
were ``λ`` of them beside the ``n`` new keys of ``Kᵀ K``. For one key, ``k ΔW = a/(1+a) · r`` with
``a = kᵀ(λC)⁻¹k``, and a typical key has ``kᵀC⁻¹k ≈ d_mlp`` (its mean is exactly ``tr(C⁻¹C) = d_mlp``),
so what one edit writes at one layer depends on ``d_mlp / λ``. MEMIT uses ``λ = 15,000`` for GPT-J
(``d_mlp`` 16,384); we keep that ratio: ``λ = 15,000 · d_mlp / 16,384`` (``kb-lm``: 469;
:func:`default_mom2_update_weight`). Measured on 20 ``kb-lm`` requests (layers [0, 1]): λ = 100 gives
S 0.94 (NS 0.86), 469 gives 0.96 (NS 0.93), 2,000 gives 0.61 (ES 0.50): too small a λ lets the
batch overwrite neighbours, too large a λ writes too little.

**Default layers.** MEMIT's critical range for GPT-2 XL (layers 13-17) *ends* at ROME's layer 17.
On ``kb-lm`` week 08 measured ROME best at layers 0-1 (ES 1.00, 0.95; layer 2: 0.55), and for MEMIT
(20 requests, λ 469) layers [0, 1] score S 0.96, [1] 0.88, [0, 1, 2] 0.87, [1, 2] 0.65, [2] 0.27: so
:func:`default_layers` is ``[0, 1]`` on ``kb-lm`` (:data:`LAYER_CHOICE`) and ROME's comparison layer in
the scaling figure is 1, the range's last layer, as in the paper.

**Clamp.** MEMIT's code bounds ``‖δ‖ <= 0.75 ‖h‖``; on ``kb-lm`` that leaves ``P(target_new)`` near
0.3 (``‖h‖`` about 5, the change needed about 16), so the clamp here is ROME's factor 4, relative to ``‖h‖``.

The original model is never changed: :func:`memit_edits` works through hooks
(:func:`mi_course.methods.rome.edited`) and returns one :class:`~mi_course.methods.rome.Edit` per
layer; :func:`apply_memit` writes them into a copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import check_layer, check_model, subject_range
from mi_course.methods.rome import (Edit, Request, _fill, _kl_prompts, apply_edit, context_templates, default_layer,
                                    edited, mlp_out_weight, optimise_delta, pad_tokens, parse_request,
                                    second_moments)
from mi_course.zoo import hooks as hk

__all__ = ["MemitHparams", "KB_LM_LAYERS", "LAYER_CHOICE", "default_mom2_update_weight", "default_layers", "compute_z",
           "compute_zs", "compute_keys", "current_hidden", "memit_update", "spread_residual", "memit_edits",
           "apply_memit", "memit_editor", "sequential_rome_curve", "memit_curve", "no_edit_curve"]

#: MEMIT's λ for GPT-J (``hparams/MEMIT/EleutherAI_gpt-j-6B.json``) and GPT-J's ``d_mlp``.
GPTJ_MOM2_UPDATE_WEIGHT, GPTJ_D_MLP = 15000.0, 16384
#: ``kb-lm``'s default layers, measured (20 requests, seed 1, λ = 469): [0, 1] S 0.96 (ES 1.00, PS 0.95,
#: NS 0.93); [1] 0.88; [0, 1, 2] 0.87; [1, 2] 0.65; [2] 0.27 (layer 2's z needs more than 20 steps).
KB_LM_LAYERS = [0, 1]
LAYER_CHOICE = ("kb-lm: layers [0, 1], measured best of [0,1], [1], [0,1,2], [1,2], [2] on 20 requests; "
                "other models: MEMIT's GPT-2 XL range 13-17 of 48 at the same relative depth")


def default_mom2_update_weight(model) -> float:
    """λ = 15,000 · d_mlp / 16,384: GPT-J's λ at the same ratio ``d_mlp / λ`` (``kb-lm``: 468.75)."""
    return GPTJ_MOM2_UPDATE_WEIGHT * model.cfg.d_mlp / GPTJ_D_MLP


@dataclass(frozen=True)
class MemitHparams:
    """MEMIT's hyper-parameters; defaults follow the MEMIT code (``hparams/MEMIT/gpt2-xl.json``)
    except λ (scaled by ``d_mlp``), the clamp (ROME's factor 4: ``kb-lm``'s hidden states are short
    beside the change a new fact needs) and the steps (ROME's 20, as week 08)."""

    v_num_grad_steps: int = 20
    v_lr: float = 0.5
    v_weight_decay: float = 0.5  # times ||δ|| / ||h||², h the hidden state at the last critical layer
    clamp_norm_factor: float = 4.0  # ||δ|| <= 4 ||h|| (MEMIT's code: 0.75; kb-lm's z needs ~3.5 ||h||)
    kl_factor: float = 0.0625
    kl_prompts: tuple[str, ...] | None = None
    context_lengths: tuple[tuple[int, int], ...] = ((10, 5),)
    mom2_update_weight: float | None = None  # None: default_mom2_update_weight(model)
    mom2_n_texts: int = 500
    seed: int = 0


def default_layers(model) -> list[int]:
    """``kb-lm``: ``[0, 1]`` (measured, :data:`LAYER_CHOICE`); other models: MEMIT's GPT-2 XL range
    (13-17 of 48) at the same relative depth, ``floor(13/48 n) .. floor(17/48 n)``."""
    check_model(model)
    card = getattr(model, "zoo_card", None)
    if card is not None and card.name == "kb-lm":
        return list(KB_LM_LAYERS)
    n = model.cfg.n_layers
    return list(range(13 * n // 48, default_layer(model) + 1))


def _check_layers(model, layers) -> list[int]:
    if layers is None:
        return default_layers(model)
    if isinstance(layers, int) and not isinstance(layers, bool):
        layers = [layers]
    try:
        layers = [check_layer(model, int(x) if not isinstance(x, bool) else x) for x in layers]
    except TypeError:
        raise InputError(f"layers must be a list of layer indices, got {layers!r}") from None
    if not layers:
        raise InputError("layers is empty: give at least one layer to edit")
    if sorted(set(layers)) != list(layers):
        raise InputError(f"layers must be increasing and distinct, got {layers}")
    return layers


def _parse_all(model, requests) -> list[Request]:
    if isinstance(requests, (dict, Request)):
        requests = [requests]
    if not isinstance(requests, (list, tuple)) or not requests:
        raise InputError("requests is empty: pass one request dict or a list of them")
    return [r if isinstance(r, Request) else parse_request(model, r) for r in requests]


# -- 1. targets z at the last critical layer ---------------------------------------------------
def compute_z(model, layer: int, request: Request | dict, contexts: Sequence[str],
              hparams: MemitHparams | None = None) -> tuple[torch.Tensor, dict]:
    """z ``[d_model]``: the hidden state after ``layer`` (subject's last token) that makes ``target_new`` likely.

    δ is optimised by :func:`~mi_course.methods.rome.optimise_delta` at ``blocks.{layer}.hook_mlp_out``,
    which adds to the residual stream exactly as adding to ``hook_resid_post`` does; the clamp and the
    weight decay are rescaled so that they are MEMIT's, relative to ``h`` = the hidden state on the bare
    prompt. Returns ``z = h + δ`` and diagnostics (``delta``, ``h``, ``losses``).
    """
    hp = hparams or MemitHparams()
    check_model(model)
    check_layer(model, layer)
    req = request if isinstance(request, Request) else parse_request(model, request)
    prompts = [_fill(c, req.prompt, req.subject) for c in contexts]
    kl = [p.format(req.subject) for p in _kl_prompts(model, hp)]
    texts = prompts + kl
    lookup = torch.tensor([subject_range(model, t, req.subject)[1] - 1 for t in texts])
    toks, lens = pad_tokens(model, texts)
    names = (hk.mlp_out(layer), hk.resid_post(layer))
    with torch.no_grad():
        _, cache = model.run_with_cache(toks[:1], names_filter=lambda n: n in names)
    v_norm = cache[names[0]][0, lookup[0]].float().norm()
    h = cache[names[1]][0, lookup[0]].float()
    ratio = float(h.norm() / v_norm)  # optimise_delta measures norms against the MLP output; MEMIT against h
    delta, _, losses = optimise_delta(
        model, layer, toks, lookup, lens - 1, req.target_new, len(kl), hp.kl_factor,
        hp.v_weight_decay / ratio ** 2, hp.v_num_grad_steps, hp.v_lr, hp.clamp_norm_factor * ratio, stop_nll=5e-2)
    return h + delta, {"delta": delta, "h": h, "losses": losses, "steps": len(losses)}


def compute_zs(model, requests, layer: int, hparams: MemitHparams | None = None, batch: int = 64,
               progress: bool = False) -> torch.Tensor:
    """``[n, d_model]``: :func:`compute_z` for each request, optimised ``batch`` requests at a time.

    The targets depend only on the unedited model. Each request has its own ``δ`` row and its own
    loss (NLL over its prompts, KL on its KL prompt, weight decay); the losses are summed, so each
    row's gradient and Adam state are its own and the result is :func:`compute_z`'s, request by
    request (a row stops, and is held, once its NLL is below 0.05, as there).
    """
    hp = hparams or MemitHparams()
    check_model(model)
    check_layer(model, layer)
    parsed = _parse_all(model, requests)
    contexts = context_templates(model, hp.context_lengths, hp.seed)
    out = []
    starts = range(0, len(parsed), batch)
    for i in tqdm(starts, desc="MEMIT targets z", disable=not progress or len(starts) < 2):
        out.append(_zs_batch(model, layer, parsed[i:i + batch], contexts, hp))
    return torch.cat(out)


def _zs_batch(model, layer: int, reqs: Sequence[Request], contexts: Sequence[str], hp: MemitHparams) -> torch.Tensor:
    kl_tpl = _kl_prompts(model, hp)
    n_p, n_kl = len(contexts), len(kl_tpl)
    texts, owner, is_kl = [], [], []
    for j, r in enumerate(reqs):
        texts += [_fill(c, r.prompt, r.subject) for c in contexts] + [p.format(r.subject) for p in kl_tpl]
        owner += [j] * (n_p + n_kl)
        is_kl += [False] * n_p + [True] * n_kl
    subj = [r.subject for r in reqs for _ in range(n_p + n_kl)]
    lookup = torch.tensor([subject_range(model, t, s)[1] - 1 for t, s in zip(texts, subj)])
    toks, lens = pad_tokens(model, texts)
    owner_t, kl_mask = torch.tensor(owner), torch.tensor(is_kl)
    rows = torch.arange(len(texts))
    last = lens - 1
    first = torch.tensor([j * (n_p + n_kl) for j in range(len(reqs))])  # each request's bare prompt
    targets = torch.tensor([r.target_new for r in reqs])
    names = (hk.mlp_out(layer), hk.resid_post(layer))
    with torch.no_grad():
        logits, cache = model.run_with_cache(toks, names_filter=lambda n: n in names)
        kl_orig = logits[rows[kl_mask], last[kl_mask]].float().log_softmax(-1)
        h = cache[names[1]][first, lookup[first]].float()  # [n_req, d_model]
    h_norm = h.norm(dim=1)
    delta = torch.zeros(len(reqs), model.cfg.d_model, requires_grad=True, device=h.device)
    opt = torch.optim.Adam([delta], lr=hp.v_lr)
    max_norm = hp.clamp_norm_factor * h_norm
    done = torch.zeros(len(reqs), dtype=torch.bool)
    held = torch.zeros_like(delta)

    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            for _ in range(hp.v_num_grad_steps):
                active = ~done[owner_t]  # only the rows of requests still being optimised are run
                a_rows = rows[active]
                a_owner, a_kl, a_lookup = owner_t[active], kl_mask[active], lookup[active]
                a_toks = toks[a_rows][:, : int(lens[a_rows].max())]
                a_last = last[a_rows]
                i_rows = torch.arange(len(a_rows))

                def add(out, hook):
                    out = out.clone()
                    out[i_rows, a_lookup] = out[i_rows, a_lookup] + delta[a_owner].to(out.dtype)
                    return out
                opt.zero_grad()
                logits = model.run_with_hooks(a_toks, fwd_hooks=[(names[0], add)]).float()
                pr = i_rows[~a_kl]
                lp = logits[pr, a_last[pr]].log_softmax(-1)[torch.arange(len(pr)), targets[a_owner[pr]]]
                nll = torch.zeros(len(reqs)).index_add(0, a_owner[pr], -lp) / n_p  # mean NLL per request
                kr = i_rows[a_kl]
                kl_new = logits[kr, a_last[kr]].log_softmax(-1)
                kl_ref = kl_orig[active[kl_mask]]
                kl_rows = torch.nn.functional.kl_div(kl_new, kl_ref, log_target=True, reduction="none").sum(-1)
                kl = hp.kl_factor * torch.zeros(len(reqs)).index_add(0, a_owner[kr], kl_rows) / n_kl
                wd = hp.v_weight_decay * delta.norm(dim=1) / h_norm ** 2
                newly = (nll.detach() < 5e-2) & ~done
                held[newly] = delta.detach()[newly]
                done |= newly
                if bool(done.all()):
                    break
                loss = (nll + kl + wd)[~done].sum()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    scale = (max_norm / delta.norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
                    delta.mul_(scale[:, None])
                    delta[done] = held[done]
    finally:
        for p, f in zip(model.parameters(), frozen):
            p.requires_grad_(f)
    return (h + delta.detach()).detach()


# -- 2. keys and current hidden states, batched over requests -----------------------------------
@torch.no_grad()
def _at_subjects(model, requests: Sequence[Request], contexts: Sequence[str], name: str,
                 chunk: int = 512) -> torch.Tensor:
    """``[n, d]``: activation ``name`` at each request's last subject token, averaged over ``contexts``."""
    texts = [_fill(c, r.prompt, r.subject) for r in requests for c in contexts]
    subj = [r.subject for r in requests for _ in contexts]
    out = []
    for i in range(0, len(texts), chunk):
        t = texts[i:i + chunk]
        lookup = torch.tensor([subject_range(model, x, s)[1] - 1 for x, s in zip(t, subj[i:i + chunk])])
        toks, _ = pad_tokens(model, t)  # right padding never changes earlier positions (causal attention)
        _, cache = model.run_with_cache(toks, names_filter=lambda n: n == name)
        out.append(cache[name][torch.arange(len(t)), lookup.to(cache[name].device)].float())
    return torch.cat(out).view(len(requests), len(contexts), -1).mean(1)


def compute_keys(model, layer: int, requests, contexts: Sequence[str] = ("{}",)) -> torch.Tensor:
    """K ``[n, d_mlp]``: ROME's ``k*`` for each request (``blocks.{layer}.mlp.hook_post`` at the subject's
    last token, averaged over ``contexts``), one row per request."""
    check_model(model)
    check_layer(model, layer)
    return _at_subjects(model, _parse_all(model, requests), contexts, hk.mlp_post(layer))


def current_hidden(model, layer: int, requests) -> torch.Tensor:
    """``[n, d_model]``: ``blocks.{layer}.hook_resid_post`` at each subject's last token, bare prompt."""
    check_model(model)
    check_layer(model, layer)
    return _at_subjects(model, _parse_all(model, requests), ("{}",), hk.resid_post(layer))


# -- 3. the update ------------------------------------------------------------------------------
def memit_update(K: torch.Tensor, R: torch.Tensor, C: torch.Tensor, lam: float) -> torch.Tensor:
    """ΔW_out ``[d_mlp, d_model]`` = ``(λ C + Kᵀ K)⁻¹ Kᵀ R`` (MEMIT eq. 14 in W_out's orientation).

    K: ``[n, d_mlp]`` keys as rows; R: ``[n, d_model]`` the residual each key should add; C:
    ``[d_mlp, d_mlp]`` the keys' second moment (a mean); lam: λ ≥ 0. The minimiser of
    ``‖K ΔW − R‖² + λ · tr(ΔWᵀ C ΔW)``; computed in float64.
    """
    if K.ndim != 2 or R.ndim != 2 or K.shape[0] != R.shape[0]:
        raise InputError(f"K must be [n, d_mlp] and R [n, d_model] with the same n, got {tuple(K.shape)} and "
                         f"{tuple(R.shape)}")
    if C.shape != (K.shape[1], K.shape[1]):
        raise InputError(f"C must be [d_mlp, d_mlp] = {(K.shape[1],) * 2}, got {tuple(C.shape)}")
    if not (isinstance(lam, (int, float)) and lam >= 0):
        raise InputError(f"lam must be a number >= 0, got {lam!r}")
    K64, R64 = K.double(), R.double()
    A = lam * C.double() + K64.T @ K64
    return torch.linalg.solve(A, K64.T @ R64).to(K.dtype)


def spread_residual(R: torch.Tensor, layers: Sequence[int], layer: int) -> torch.Tensor:
    """This layer's share of the residual: ``R / (number of layers from `layer` to the last, inclusive)``."""
    layers = list(layers)
    if layer not in layers:
        raise InputError(f"layer {layer} is not one of the edited layers {layers}")
    return R / (len(layers) - layers.index(layer))


# -- 4. the algorithm ---------------------------------------------------------------------------
def memit_edits(model, requests, layers: Sequence[int] | None = None, hparams: MemitHparams | None = None,
                texts: Sequence[str] | None = None, zs: torch.Tensor | None = None,
                C: dict[int, torch.Tensor] | None = None, progress: bool = False) -> list[Edit]:
    """MEMIT's weight changes for a batch of ``requests``, one :class:`Edit` per layer; ``model`` is untouched.

    zs: precomputed targets ``[n, d_model]`` (:func:`compute_zs` at the last layer; they depend only on
    the unedited model, so a benchmark can share them between batch sizes); C: precomputed
    ``{layer: C}``. Each edit's ``info`` has the mean residual norm before and after it.
    """
    hp = hparams or MemitHparams()
    check_model(model)
    layers = _check_layers(model, layers)
    parsed = _parse_all(model, requests)
    contexts = context_templates(model, hp.context_lengths, hp.seed)
    if zs is None:
        zs = compute_zs(model, parsed, layers[-1], hp, progress=progress)
    if tuple(zs.shape) != (len(parsed), model.cfg.d_model):
        raise InputError(f"zs must be [n_requests, d_model] = {(len(parsed), model.cfg.d_model)}, got {tuple(zs.shape)}")
    if C is None:
        C = second_moments(model, texts, layers, n_texts=hp.mom2_n_texts)
    edits: list[Edit] = []
    for layer in layers:
        with edited(model, edits):
            K = compute_keys(model, layer, parsed, contexts)
            R = zs.to(K.device) - current_hidden(model, layers[-1], parsed)
        share = spread_residual(R, layers, layer)
        lam = default_mom2_update_weight(model) if hp.mom2_update_weight is None else hp.mom2_update_weight
        dW = memit_update(K, share, C[layer].to(K.device), lam)
        w, _, _ = mlp_out_weight(model, layer)
        edits.append(Edit(layer, dW.to(w.dtype), None, {"residual_norm": float(R.norm(dim=1).mean()),
                                                        "n": len(parsed)}))
    return edits


def apply_memit(model, requests, layers: Sequence[int] | None = None, hparams: MemitHparams | None = None,
                texts: Sequence[str] | None = None, zs: torch.Tensor | None = None, progress: bool = False):
    """An edited COPY of ``model`` with all ``requests`` inserted at once by MEMIT over ``layers``.

    requests: ROME's format (:func:`mi_course.methods.rome.parse_request`), one dict or a list.
    layers: default :func:`default_layers`. ``model`` itself is left unchanged. The copy has
    ``memit_edits`` (one :class:`Edit` per layer).
    """
    check_model(model)
    edits = memit_edits(model, requests, layers, hparams, texts, zs, progress=progress)
    new = copy.deepcopy(model)
    new.eval()
    card = getattr(model, "zoo_card", None)
    if card is not None:
        new.zoo_card = card
    for e in edits:
        apply_edit(new, e)
    new.memit_edits = edits
    return new


def memit_editor(layers: Sequence[int] | None = None, hparams: MemitHparams | None = None, texts=None):
    """An editor ``(model, request or list of requests) -> list[Edit]`` (the shape
    :func:`mi_course.methods.edit_evaluation.evaluate_edits` takes; the list works with
    :func:`mi_course.methods.rome.edited` and ``edit_evaluation.case_scores``)."""
    def edit(model, request):
        return memit_edits(model, request, layers, hparams, texts)
    return edit


# -- 5. the scaling curve: sequential ROME vs batched MEMIT ------------------------------------
def _unedited_neighbours(case, kb, edited: set):
    """``case`` with neighbourhood prompts about subjects whose fact of this relation is itself edited
    removed (with hundreds of edits on a 300-person KB, a neighbour is often an edited subject)."""
    from dataclasses import replace as _replace

    rel, subj = case.meta["relation"], case.meta["subject"]
    tpl = case.request["prompt"]
    names = kb.neighbours(subj, rel)[:len(case.neighborhood_prompts)]
    keep = [tpl.format(n) for n in names if (n, rel) not in edited]
    return _replace(case, neighborhood_prompts=keep)


def _scores(model, cases, kb, edit=None) -> dict[str, float]:
    from mi_course.methods import edit_evaluation as ev

    edited_pairs = {(c.meta["subject"], c.meta["relation"]) for c in cases}
    return ev.summarize([ev.case_scores(model, _unedited_neighbours(c, kb, edited_pairs), edit) for c in cases])


def sequential_rome_curve(model, cases, kb, sizes: Sequence[int], layer: int, hparams=None,
                          progress: bool = False, on_point=None) -> dict[int, dict[str, float]]:
    """``{n: summary}``: ROME applied to ``cases[0], cases[1], ...`` one after another (on a copy; C of the
    unedited model, as ROME's sequential experiments), scored after the first ``n`` edits on those ``n``.

    Neighbourhood prompts whose subject is itself edited (same relation) are left out. ``on_point(n,
    summary)`` is called after each point (a long run can save as it goes).
    """
    from mi_course.methods import rome

    sizes = sorted(set(int(n) for n in sizes))
    if not sizes or sizes[0] < 1 or sizes[-1] > len(cases):
        raise InputError(f"sizes must be between 1 and len(cases) = {len(cases)}, got {sizes}")
    hp = hparams or rome.RomeHparams()
    C = rome.second_moment(model, layer, n_texts=hp.mom2_n_texts)
    new = copy.deepcopy(model)
    new.eval()
    if getattr(model, "zoo_card", None) is not None:
        new.zoo_card = model.zoo_card
    out = {}
    for i in tqdm(range(sizes[-1]), desc=f"sequential ROME (layer {layer})", disable=not progress):
        req = parse_request(new, cases[i].request)
        apply_edit(new, rome.rome_edit(new, req, layer, hp, C=C))
        if i + 1 in sizes:
            out[i + 1] = _scores(new, cases[:i + 1], kb)
            if on_point is not None:
                on_point(i + 1, out[i + 1])
    return out


def memit_curve(model, cases, kb, sizes: Sequence[int], layers: Sequence[int] | None = None,
                hparams: MemitHparams | None = None, progress: bool = False,
                on_point=None) -> dict[int, dict[str, float]]:
    """``{n: summary}``: MEMIT inserting ``cases[:n]`` at once (from the unedited model), scored on those ``n``.

    The targets z depend only on the unedited model, so each is computed once (the first ``n`` serve
    every larger batch). ``on_point(n, summary)`` is called after each point.
    """
    sizes = sorted(set(int(n) for n in sizes))
    if not sizes or sizes[0] < 1 or sizes[-1] > len(cases):
        raise InputError(f"sizes must be between 1 and len(cases) = {len(cases)}, got {sizes}")
    hp = hparams or MemitHparams()
    layers = _check_layers(model, layers)
    reqs = [parse_request(model, c.request) for c in cases[:sizes[-1]]]
    zs = torch.zeros(0, model.cfg.d_model)
    out = {}
    for n in sizes:
        if n > len(zs):
            zs = torch.cat([zs, compute_zs(model, reqs[len(zs):n], layers[-1], hp, progress=progress)])
        edits = memit_edits(model, reqs[:n], layers, hp, zs=zs[:n])
        out[n] = _scores(model, cases[:n], kb, edits)
        if on_point is not None:
            on_point(n, out[n])
    return out


def no_edit_curve(model, cases, kb, sizes: Sequence[int]) -> dict[int, dict[str, float]]:
    """The unedited model scored on the first ``n`` cases (the baseline row)."""
    return {int(n): _scores(model, cases[:int(n)], kb) for n in sorted(set(sizes))}

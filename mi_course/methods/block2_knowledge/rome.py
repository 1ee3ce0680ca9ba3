"""ROME: rank-one model editing (Meng et al. 2022, *Locating and Editing Factual Associations in GPT*).

An MLP's output projection ``W_out`` is read as a linear associative memory: the *key* ``k`` is
the MLP's hidden activation (``blocks.L.mlp.hook_post``, the input to ``W_out``) and the *value*
is what it writes, ``k @ W_out + b_out`` (``blocks.L.hook_mlp_out``). To make the model say
``target_new`` for a subject, ROME

1. computes the key **k\\*** at the subject's last token, averaged over the prompt alone and behind
   5 random prefixes of 10 tokens sampled from the model (``"{sampled text}. {prompt}"``, as the
   ROME/MEMIT code's context templates), so that it stands for the subject, not one prompt;
2. estimates the uncentred second moment **C = E[k kᵀ]** of keys at that layer over text;
3. finds the value **v\\*** by gradient descent: ``v* = k* @ W_out + b_out + δ`` where ``δ``, added to
   the MLP's output at the subject's last token, makes ``target_new`` likely after every prefixed
   prompt, with the paper's KL term (keep the subject's other predictions: ``"{} is a"``) and weight
   decay (and the code's norm clamp);
4. inserts it with the closed-form **rank-one update** (paper eq. 2), in ``W_out``'s ``[d_mlp, d_model]``
   orientation::

       u = C⁻¹ k*            Λ = (v* − (k* W_out + b_out)) / (uᵀ k*)            ΔW_out = u Λᵀ

   so ``k* @ (W_out + ΔW_out) + b_out = v*`` exactly, while keys orthogonal to ``u`` in the
   C-metric are disturbed as little as possible.

>>> edited = apply_rome(model, [{"prompt": "{} was born in", "subject": "Kalo Durmer", "target_new": "Lima"}])
>>> # `model` is unchanged; `edited` is a copy with one layer's W_out changed.

**Default layer.** ``layer=None`` edits layer ``floor(17/48 * n_layers)``: the fraction of depth at
which ROME edits GPT-2 XL (layer 17 of 48), which also gives ROME's own choices for GPT-2 medium (8
of 24) and large (12 of 36); for a 4-layer model it is layer 1, where causal tracing of the hidden
state at the last subject token is strongest on ``kb-lm``.

The second moment ``C`` comes from ``texts`` (a list of strings); for ``kb-lm`` the default is the
start of its own training text (the first 500 documents of ``load_kb().training_documents``, about
15,000 keys for 512 dimensions), otherwise text sampled from the model. Results are cached per model object, layer and text.
"""

from __future__ import annotations

import copy
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import _tokens, check_layer, check_model, subject_range, target_token
from mi_course.zoo import hooks as hk

__all__ = ["RomeHparams", "Request", "Edit", "parse_request", "default_layer", "context_templates",
           "compute_key", "second_moment", "second_moments", "compute_v", "optimise_delta", "rank_one_update",
           "rome_edit", "pad_tokens",
           "apply_rome", "apply_edit", "edit_hooks", "edited", "mlp_out_weight"]


@dataclass(frozen=True)
class RomeHparams:
    """ROME's hyper-parameters; defaults are the ROME code's for GPT-2 (``hparams/ROME/gpt2-*.json``)."""

    v_num_grad_steps: int = 20
    v_lr: float = 0.5
    v_weight_decay: float = 0.5  # times ||δ|| / ||v_init||²
    clamp_norm_factor: float = 4.0  # ||δ|| <= 4 ||v_init||
    kl_factor: float = 0.0625
    kl_prompts: tuple[str, ...] | None = None  # None: ("{} is a",) if the tokenizer knows it, else ("{}",)
    context_lengths: tuple[tuple[int, int], ...] = ((10, 5),)  # (tokens, how many) prefixes, as ROME/MEMIT's code
    mom2_adjustment: bool = True  # False: u = k* (no C), an ablation
    mom2_n_texts: int = 500
    ridge: float = 1e-4  # C + ridge * mean(diag C) * I, so C is invertible for a small model
    seed: int = 0


@dataclass(frozen=True)
class Request:
    """A parsed edit request: ``prompt`` (a template with ``{}``), ``subject``, target token ids."""

    prompt: str
    subject: str
    target_new: int
    target_true: int | None = None


@dataclass
class Edit:
    """A weight edit of one MLP: ``dW [d_mlp, d_model]`` (W_out orientation) and optional ``db [d_model]``."""

    layer: int
    dW: torch.Tensor
    db: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


# -- requests ---------------------------------------------------------------------------------
def parse_request(model, request: dict) -> Request:
    """Validate a ROME request ``{"prompt": "{} was born in", "subject": ..., "target_new": str | {"str": ...}}``.

    Raises :class:`InputError` for a missing key, a subject that is not in the prompt, or a target
    that is not a single token.
    """
    if not isinstance(request, dict):
        raise InputError(f"a request is a dict with 'prompt', 'subject' and 'target_new', got {type(request).__name__}")
    missing = [k for k in ("prompt", "subject", "target_new") if k not in request]
    if missing:
        raise InputError(f"request is missing {missing}; ROME's format is "
                         "{'prompt': '{} was born in', 'subject': 'Kalo Durmer', 'target_new': 'Lima'}")
    prompt, subject = request["prompt"], request["subject"]
    if not isinstance(prompt, str) or not isinstance(subject, str) or not subject.strip():
        raise InputError("request['prompt'] and request['subject'] must be non-empty strings")
    if prompt.count("{}") != 1:
        if "{}" not in prompt and subject in prompt:
            prompt = prompt.replace(subject, "{}", 1)
        else:
            raise InputError(f"the subject {subject!r} is not in the prompt {prompt!r}: the prompt must contain "
                             "'{}' (once) where the subject goes, e.g. '{} was born in'.")
    subject_range(model, prompt.format(subject), subject)  # the subject must survive tokenization
    new = target_token(model, request["target_new"])
    true = request.get("target_true")
    true = target_token(model, true) if true is not None else None
    if true is not None and true == new:
        raise InputError(f"target_new and target_true are the same token ({request['target_new']!r})")
    return Request(prompt, subject, new, true)


def default_layer(model) -> int:
    """``floor(17 / 48 * n_layers)``: ROME's relative depth (GPT-2 XL 17, medium 8, large 12; 4 layers: 1)."""
    return int(17 * model.cfg.n_layers // 48)


# -- weights ----------------------------------------------------------------------------------
def mlp_out_weight(model, layer: int) -> tuple[torch.nn.Parameter, torch.nn.Parameter | None, bool]:
    """The parameter behind ``W_out[layer]``, its bias, and whether it is stored transposed
    (``nn.Linear``: ``[d_model, d_mlp]``) rather than as ``[d_mlp, d_model]`` (GPT-2's Conv1D)."""
    check_model(model)
    check_layer(model, layer)
    mlp = model.blocks[layer].mlp
    out = getattr(mlp, "out", None)
    inner = getattr(out, "_original_component", out)
    if inner is None or not hasattr(inner, "weight"):
        raise InputError(f"could not find layer {layer}'s MLP output projection on this model")
    w = inner.weight
    d_mlp, d_model = model.cfg.d_mlp, model.cfg.d_model
    transposed = isinstance(inner, torch.nn.Linear) or tuple(w.shape) == (d_model, d_mlp) != (d_mlp, d_model)
    return w, getattr(inner, "bias", None), transposed


@torch.no_grad()
def apply_edit(model, edit: Edit) -> None:
    """Write ``edit`` into ``model``'s weights in place (use :func:`apply_rome` for a copy)."""
    w, b, transposed = mlp_out_weight(model, edit.layer)
    w += (edit.dW.T if transposed else edit.dW).to(w.dtype)
    if edit.db is not None:
        if b is None:
            raise InputError("this edit changes the MLP's output bias, but the model has none")
        b += edit.db.to(b.dtype)


def edit_hooks(edit: Edit) -> list[tuple[str, object]]:
    """Forward hooks that run the model *as if* ``edit`` were applied (no weight changes):
    ``mlp_out += post @ dW (+ db)``. Use with ``model.run_with_hooks`` or :func:`edited`."""
    store: dict[str, torch.Tensor] = {}

    def keep(post, hook):
        store["post"] = post

    def add(out, hook):
        extra = store.pop("post") @ edit.dW.to(out.dtype)
        if edit.db is not None:
            extra = extra + edit.db.to(out.dtype)
        return out + extra
    return [(hk.mlp_post(edit.layer), keep), (hk.mlp_out(edit.layer), add)]


@contextmanager
def edited(model, edit: Edit | Sequence[Edit] | None) -> Iterator[None]:
    """Inside the block, every forward of ``model`` runs with ``edit`` (through hooks; weights untouched).

    ``edit`` may be a list of edits (MEMIT's, one per layer): all of them apply at once."""
    edits = [] if edit is None else [edit] if isinstance(edit, Edit) else list(edit)
    if not edits:
        yield
        return
    with model.hooks(fwd_hooks=[h for e in edits for h in edit_hooks(e)]):
        yield


def _fingerprint(model, layer: int | None = None) -> float:
    """A cheap number that changes when the weights that matter change (cache keys use it beside id())."""
    with torch.no_grad():
        x = float(model.W_E[:16].double().sum())
        if layer is not None:
            x += float(model.W_in[layer].double().sum())
        return x


# -- 1. the key -------------------------------------------------------------------------------
_CONTEXT_CACHE: dict = {}


@torch.no_grad()
def context_templates(model, lengths: Sequence[tuple[int, int]] = ((10, 5),), seed: int = 0) -> list[str]:
    """``["{}"]`` plus ``"{sampled text}. {}"`` for each ``(n_tokens, count)`` in ``lengths``.

    The texts are sampled from the model itself after its BOS token (top-k 5, seeded), as the
    ROME code does. Cached per model object.
    """
    key = (id(model), _fingerprint(model), tuple(map(tuple, lengths)), seed)
    if key in _CONTEXT_CACHE:
        return list(_CONTEXT_CACHE[key])
    g = torch.Generator().manual_seed(seed)
    bos = _tokens(model, "")[:1]
    out = ["{}"]
    for n_tok, count in lengths:
        toks = bos[None].repeat(count, 1)
        for _ in range(n_tok):
            logits = model(toks)[:, -1].float()
            top = logits.topk(5, -1)
            pick = torch.multinomial(top.values.softmax(-1), 1, generator=g)
            toks = torch.cat([toks, top.indices.gather(1, pick)], 1)
        for row in toks:
            text = model.tokenizer.decode(row[1:].tolist(), skip_special_tokens=True).replace("{", "(").replace("}", ")")
            out.append(text.strip() + ". {}")
    _CONTEXT_CACHE[key] = out
    return list(out)


def _fill(context: str, prompt: str, subject: str) -> str:
    return context.format(prompt.format(subject))


def compute_key(model, layer: int, prompt: str, subject: str, contexts: Sequence[str] = ("{}",)) -> torch.Tensor:
    """k*: ``blocks.{layer}.mlp.hook_post`` at the subject's last token, averaged over ``contexts``.

    prompt: a template with ``{}`` for the subject; contexts: templates with ``{}`` for the prompt.
    Returns ``[d_mlp]``.
    """
    check_model(model)
    check_layer(model, layer)
    name = hk.mlp_post(layer)
    texts = [_fill(c, prompt, subject) for c in contexts]
    lookup = torch.tensor([subject_range(model, t, subject)[1] - 1 for t in texts])
    tokens, _ = pad_tokens(model, texts)
    with torch.no_grad():  # right padding never changes earlier positions (causal attention)
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name][torch.arange(len(texts)), lookup].mean(0)


def pad_tokens(model, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens [n, max_len], lengths [n])``: each text with BOS, right-padded with id 0."""
    seqs = [_tokens(model, t) for t in texts]
    lengths = torch.tensor([len(s) for s in seqs])
    tokens = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = s
    return tokens.to(model.W_E.device), lengths


# -- 2. the second moment C -------------------------------------------------------------------
_MOM2_CACHE: dict = {}


def _default_texts(model, n: int) -> list[str]:
    card = getattr(model, "zoo_card", None)
    if card is not None and card.name == "kb-lm":
        from mi_course.data.knowledge_base import load_kb

        return load_kb().training_documents(n)
    ctx = context_templates(model, ((24, max(8, n // 20)),), seed=1)
    return [c[: -len(". {}")] for c in ctx[1:]]


@torch.no_grad()
def second_moments(model, texts: Sequence[str] | None = None, layers: Sequence[int] | None = None,
                   batch_size: int = 64, n_texts: int = 500, progress: bool = False) -> dict[int, torch.Tensor]:
    """``{layer: C}`` with ``C = mean over tokens of k kᵀ`` (``[d_mlp, d_mlp]``, float64 accumulation),
    ``k`` = ``blocks.L.mlp.hook_post`` at every non-padding token of ``texts`` (BOS excluded).

    texts: default: ``kb-lm``'s training text (its first ``n_texts`` documents), or model samples.
    One pass over the texts serves all ``layers`` (default: all). Cached per model, layer and texts.
    """
    check_model(model)
    layers = list(range(model.cfg.n_layers)) if layers is None else [check_layer(model, int(x)) for x in layers]
    texts = list(texts) if texts is not None else _default_texts(model, n_texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InputError("texts must be a non-empty list of strings")
    tkey = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    keys = {L: (id(model), _fingerprint(model, L), L, tkey) for L in layers}
    todo = [L for L in layers if keys[L] not in _MOM2_CACHE]
    if todo:
        names = {hk.mlp_post(L): L for L in todo}
        d = model.cfg.d_mlp
        acc = {L: torch.zeros(d, d, dtype=torch.float64) for L in todo}
        count = 0
        seqs = [_tokens(model, t)[: model.cfg.n_ctx] for t in texts]
        for i in tqdm(range(0, len(seqs), batch_size), desc="second moment C", disable=not progress):
            chunk = seqs[i:i + batch_size]
            lens = torch.tensor([len(s) for s in chunk])
            toks = torch.zeros(len(chunk), int(lens.max()), dtype=torch.long)
            for j, s in enumerate(chunk):
                toks[j, : len(s)] = s
            mask = (torch.arange(toks.shape[1])[None] < lens[:, None])
            mask[:, 0] = False  # the BOS token's key is the same in every text
            _, cache = model.run_with_cache(toks.to(model.W_E.device), names_filter=lambda n: n in names)
            for n, L in names.items():
                k = cache[n][mask.to(cache[n].device)].float()
                acc[L] += (k.T @ k).double().cpu()  # float32 per batch, float64 across batches
            count += int(mask.sum())
        for L in todo:
            _MOM2_CACHE[keys[L]] = (acc[L] / count).float()
    return {L: _MOM2_CACHE[keys[L]].clone() for L in layers}


def second_moment(model, layer: int, texts: Sequence[str] | None = None, n_texts: int = 500) -> torch.Tensor:
    """C ``[d_mlp, d_mlp]`` at ``layer`` (see :func:`second_moments`; one pass fills the cache for every layer)."""
    check_layer(model, layer)
    return second_moments(model, texts, None, n_texts=n_texts)[layer]


# -- 3. the value v* --------------------------------------------------------------------------
def _kl_prompts(model, hp: RomeHparams) -> tuple[str, ...]:
    if hp.kl_prompts is not None:
        return hp.kl_prompts
    tok = model.tokenizer
    unk = getattr(tok, "unk_token_id", None)
    ids = _tokens(model, "is a", prepend_bos=False).tolist()
    return ("{}",) if unk is not None and unk in ids else ("{} is a",)


def compute_v(model, layer: int, request: Request | dict, contexts: Sequence[str],
              hparams: RomeHparams | None = None, k_star: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """v* ``[d_model]``: the MLP output at the subject's last token that makes ``target_new`` likely.

    Optimises ``δ`` (added to ``blocks.{layer}.hook_mlp_out`` at the subject's last token of every
    prompt) with Adam on::

        mean over contexts of −log P(target_new | context + prompt)
        + kl_factor · KL(P_orig(· | KL prompt) ‖ P_δ(· | KL prompt))      # at the KL prompt's last token
        + v_weight_decay · ‖δ‖ / ‖v_init‖²

    clamping ``‖δ‖ <= clamp_norm_factor · ‖v_init‖`` (``v_init``: the unedited output on the bare
    prompt). Returns ``v* = k* @ W_out + b_out + δ`` and a dict of diagnostics (losses, ``delta``).
    """
    hp = hparams or RomeHparams()
    check_model(model)
    check_layer(model, layer)
    req = request if isinstance(request, Request) else parse_request(model, request)
    prompts = [_fill(c, req.prompt, req.subject) for c in contexts]
    kl = [p.format(req.subject) for p in _kl_prompts(model, hp)]
    texts = prompts + kl
    lookup = [subject_range(model, t, req.subject)[1] - 1 for t in texts]
    toks, lens = pad_tokens(model, texts)
    delta, v_init, losses = optimise_delta(
        model, layer, toks, torch.tensor(lookup), lens - 1, req.target_new, len(kl),
        hp.kl_factor, hp.v_weight_decay, hp.v_num_grad_steps, hp.v_lr, hp.clamp_norm_factor, stop_nll=5e-2)
    if k_star is None:
        k_star = compute_key(model, layer, req.prompt, req.subject, contexts)
    w, b, transposed = mlp_out_weight(model, layer)
    W = (w.T if transposed else w).detach().float()
    v_star = k_star.float() @ W + (b.detach().float() if b is not None else 0.0) + delta
    return v_star, {"delta": delta, "v_init": v_init, "losses": losses, "steps": len(losses)}


def optimise_delta(model, layer: int, tokens: torch.Tensor, lookup: torch.Tensor, last: torch.Tensor, target: int,
                   n_kl: int, kl_factor: float = 0.0625, weight_decay: float = 0.5, steps: int = 20, lr: float = 0.5,
                   clamp_norm_factor: float = 4.0, stop_nll: float | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[float, float, float, float]]]:
    """The optimisation inside :func:`compute_v`, on already tokenized prompts.

    tokens: ``[batch, pos]`` (right-padded); lookup: ``[batch]`` the subject's last token in each row;
    last: ``[batch]`` each row's last real token; the last ``n_kl`` rows are KL prompts, the others end
    just before ``target``. ``δ [d_model]`` is added to ``blocks.{layer}.hook_mlp_out`` at ``lookup`` in
    every row; Adam (``lr``) for ``steps`` steps on ``mean NLL + kl_factor · KL(P_orig ‖ P_δ) (batchmean
    over KL rows) + weight_decay · ‖δ‖ / ‖v_init‖²``, where ``v_init`` is the unedited MLP output at
    row 0's lookup; after each step ``‖δ‖`` is clamped to ``clamp_norm_factor · ‖v_init‖``. Stops early
    when the NLL is below ``stop_nll``. Returns ``(δ, v_init, losses)``; ``losses`` holds
    ``(total, nll, kl, weight decay)`` per step.
    """
    rows = torch.arange(tokens.shape[0])
    n_p = tokens.shape[0] - n_kl
    name = hk.mlp_out(layer)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
        kl_orig = logits[rows[n_p:], last[n_p:]].float().log_softmax(-1)
        v_init = cache[name][0, lookup[0]].float()
    delta = torch.zeros(model.cfg.d_model, requires_grad=True, device=v_init.device)
    opt = torch.optim.Adam([delta], lr=lr)
    max_norm = clamp_norm_factor * v_init.norm()

    def add(out, hook):
        out = out.clone()
        out[rows, lookup] = out[rows, lookup] + delta.to(out.dtype)
        return out
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    losses: list[tuple[float, float, float, float]] = []
    try:
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                logits = model.run_with_hooks(tokens, fwd_hooks=[(name, add)]).float()
                nll = -logits[rows[:n_p], last[:n_p]].log_softmax(-1)[:, target].mean()
                kl_loss = torch.zeros(())
                if n_kl:
                    kl_new = logits[rows[n_p:], last[n_p:]].log_softmax(-1)
                    kl_loss = kl_factor * torch.nn.functional.kl_div(kl_new, kl_orig, log_target=True,
                                                                     reduction="batchmean")
                wd = weight_decay * (delta.norm() / v_init.norm() ** 2)
                loss = nll + kl_loss + wd
                losses.append(tuple(float(x.detach()) for x in (loss, nll, kl_loss, wd)))
                if stop_nll is not None and losses[-1][1] < stop_nll:
                    break
                loss.backward()
                opt.step()
                with torch.no_grad():
                    if delta.norm() > max_norm:
                        delta.mul_(max_norm / delta.norm())
    finally:
        for p, f in zip(model.parameters(), frozen):
            p.requires_grad_(f)
    return delta.detach(), v_init, losses


# -- 4. the rank-one update -------------------------------------------------------------------
def rank_one_update(W_out: torch.Tensor, b_out: torch.Tensor | None, C: torch.Tensor | None,
                    k_star: torch.Tensor, v_star: torch.Tensor) -> torch.Tensor:
    """ΔW ``[d_mlp, d_model]`` with ``k* @ (W_out + ΔW) + b_out = v*`` (paper eq. 2).

    W_out: ``[d_mlp, d_model]``; b_out: ``[d_model]`` or None; C: ``[d_mlp, d_mlp]`` (None = identity);
    k_star: ``[d_mlp]``; v_star: ``[d_model]``. ``u = C⁻¹k*``, ``Λ = (v* − (k* W_out + b_out)) / (uᵀk*)``,
    ``ΔW = u Λᵀ`` (an outer product).
    """
    W = W_out.float()
    k = k_star.float()
    u = k if C is None else torch.linalg.solve(C.float(), k)
    current = k @ W + (b_out.float() if b_out is not None else 0.0)
    lam = (v_star.float() - current) / (u @ k)
    return torch.outer(u, lam)


def _ridge(C: torch.Tensor, ridge: float) -> torch.Tensor:
    return C + ridge * C.diagonal().mean() * torch.eye(C.shape[0], dtype=C.dtype, device=C.device)


def rome_edit(model, request: dict | Request, layer: int | None = None, hparams: RomeHparams | None = None,
              texts: Sequence[str] | None = None, C: torch.Tensor | None = None) -> Edit:
    """The ROME edit of one request at ``layer`` (default :func:`default_layer`), without changing ``model``."""
    hp = hparams or RomeHparams()
    check_model(model)
    layer = default_layer(model) if layer is None else check_layer(model, layer)
    req = request if isinstance(request, Request) else parse_request(model, request)
    contexts = context_templates(model, hp.context_lengths, hp.seed)
    k_star = compute_key(model, layer, req.prompt, req.subject, contexts)
    if hp.mom2_adjustment:
        if C is None:
            C = second_moment(model, layer, texts, n_texts=hp.mom2_n_texts)
        C = _ridge(C.to(k_star.device), hp.ridge)
    else:
        C = None
    v_star, info = compute_v(model, layer, req, contexts, hp, k_star=k_star)
    w, b, transposed = mlp_out_weight(model, layer)
    W = (w.T if transposed else w).detach()
    dW = rank_one_update(W, b.detach() if b is not None else None, C, k_star, v_star)
    info.update(k_star=k_star, v_star=v_star, request=req)
    return Edit(layer, dW.to(w.dtype), None, info)


def apply_rome(model, requests: dict | Sequence[dict], layer: int | None = None,
               hparams: RomeHparams | None = None, texts: Sequence[str] | None = None,
               progress: bool = False):
    """An edited COPY of ``model`` with each request inserted by ROME at ``layer``, one after another.

    requests: ROME's format, ``{"prompt": "{} was born in", "subject": "Kalo Durmer", "target_new": "Lima"}``
    (``target_new`` may be ``{"str": "Lima"}``), or a list of them. layer: default :func:`default_layer`.
    ``model`` itself is left unchanged. The copy has ``rome_edits`` (the :class:`Edit` objects).
    """
    check_model(model)
    if isinstance(requests, dict):
        requests = [requests]
    if not requests:
        raise InputError("requests is empty: pass one request dict or a list of them")
    layer = default_layer(model) if layer is None else check_layer(model, layer)
    parsed = [parse_request(model, r) for r in requests]
    hp = hparams or RomeHparams()
    C = second_moment(model, layer, texts, n_texts=hp.mom2_n_texts) if hp.mom2_adjustment else None
    new = copy.deepcopy(model)
    new.eval()
    card = getattr(model, "zoo_card", None)
    if card is not None:
        new.zoo_card = card
    edits = []
    for req in tqdm(parsed, desc="ROME", disable=not progress):
        e = rome_edit(new, req, layer, replace(hp, seed=hp.seed), C=C)
        apply_edit(new, e)
        edits.append(e)
    new.rome_edits = edits
    return new

"""GRACE: a codebook adaptor for lifelong model editing (Hartvigsen et al. 2023, *Aging with GRACE*).

GRACE never changes a weight. It wraps one layer with a **codebook** of entries
``(key Kᵢ, value Vᵢ, deferral radius εᵢ, label yᵢ)``:

* the **key** is the layer's input at the **last token of the prompt** (the paper's choice; its code's
  ``key_id = -1``); here the wrapped layer is MLP ``L``'s output projection ``W_out``, so a key is
  ``blocks.L.mlp.hook_post`` ``[d_mlp]`` and a value replaces ``blocks.L.hook_mlp_out`` ``[d_model]``
  at that token (the paper wraps an MLP's second linear layer in T5, ``wo``; ``replace_last``);
* **lookup**: for a query ``h`` find the *nearest* key ``i* = argminᵢ ‖h − Kᵢ‖``; if ``‖h − K_i*‖ <= ε_i*``
  the layer outputs ``V_i*`` instead of its own output, otherwise the model runs untouched;
* **an edit** ``(x, y)`` updates the codebook first (paper Alg. 1, its code's ``GRACEAdapter.forward``):

  ======================================  ==================================================================
  case (d = distance to the nearest key)  what happens
  ======================================  ==================================================================
  empty codebook, or d > ε_init + ε_i*    **add** a key ``(h, V, ε_init, y)``
  d <= ε_init + ε_i*, label y_i* == y     **expand**: ``ε_i* = max(ε_i*, d)`` (the key now covers h);
                                          no new key, V_i* is trained on the new prompt
  d <= ε_init + ε_i*, label y_i* != y     **split**: add ``(h, V, ·, y)``; both radii become ``d / 2``
                                          (the old one ``d/2 − 1e-5``, as the code), so the balls touch
  ======================================  ==================================================================

  then trains the value of the chosen key (the new one, or the expanded one) by gradient descent
  so that the model, with the value substituted, predicts ``y`` (Adam, ``lr`` 1.0, up to ``n_iter``
  steps, stopping early when the loss is below ``stop_loss``; ``value_init="warm"``: the layer's own
  output, ``"cold"``: random, as the code's options).

>>> g = Grace(model, layer=4, eps_init=1.0)
>>> g.edit({"prompt": "{} was born in", "subject": "Nado Puzelu", "target_new": "Tosim"})
>>> with g.applied():                # inside: every forward of `model` goes through the codebook
...     model(model.to_tokens("Nado Puzelu was born in"))
>>> g.n_keys, g.remove()             # the model itself is never changed

**Default layer** ``floor(35/48 · n_layers)``: GRACE's GPT-2-XL layer (35 of 48, EasyEdit's
``hparams/GRACE/gpt2-xl.yaml``); 4 for a 6-layer model. **Default ε_init = 1.0** (the same file's
``eps``). On ``kb-lm`` at layer 4 the keys of one fact's paraphrases lie much closer together than
those of different people on one template (:func:`key_distances`; the figures are in
``measured_week09_grace.json``), so ε_init decides paraphrase generalisation: see
:func:`sequential_editing`.

Batches of right-padded prompts: pass ``last`` (``[batch]``, each row's last real token) to
:meth:`Grace.hooks` / :meth:`Grace.applied`; the default is the last position of the batch.

Sequential-editing metrics (the paper's): **TRR** (test retention rate: accuracy on held-out,
never-edited facts after the edits), **ERR** (edit retention rate: accuracy on all edits made so far),
and the number of keys, at 1, 10, 100, 1,000 edits: :func:`sequential_editing`.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.methods.causal_tracing import _tokens, check_layer, check_model
from mi_course.methods.rome import Edit, apply_edit, edit_hooks, parse_request
from mi_course.zoo import hooks as hk

__all__ = ["GraceHparams", "Grace", "default_layer", "nearest_key", "codebook_lookup", "codebook_update",
           "grace_editor", "key_distances", "next_token_logits", "top1", "sequential_stream", "sequential_editing",
           "retention_rates"]

ACTIONS = ("add", "expand", "split")
SPLIT_MARGIN = 1e-5  # the code's: the old radius is d/2 - 1e-5, the new one d/2


@dataclass(frozen=True)
class GraceHparams:
    """GRACE's settings (defaults: EasyEdit's ``hparams/GRACE/gpt2-xl.yaml``, except ``n_iter``/``stop_loss``)."""

    eps_init: float = 1.0
    n_iter: int = 50  # the yaml: 200; the loss is below stop_loss within ~5 steps on kb-lm
    lr: float = 1.0
    stop_loss: float = 0.05  # early stop (the yaml's ``reg: early_stop``)
    value_init: str = "warm"  # "warm": the layer's own output; "cold": uniform random (the yaml's default)
    seed: int = 0


def default_layer(model) -> int:
    """``floor(35 / 48 · n_layers)``: GRACE's layer in GPT-2 XL (35 of 48); 4 for a 6-layer model."""
    return int(35 * model.cfg.n_layers // 48)


# -- the codebook, as pure functions (the exercises) ---------------------------------------------
def nearest_key(keys: torch.Tensor, query: torch.Tensor) -> tuple[int, float]:
    """``(index, Euclidean distance)`` of the key nearest to ``query``; keys ``[n, d]``, query ``[d]``; ``(-1, inf)`` if n = 0."""
    if keys.shape[0] == 0:
        return -1, float("inf")
    d = (keys.float() - query.float()[None]).norm(dim=-1)
    i = int(d.argmin())
    return i, float(d[i])


def codebook_lookup(keys: torch.Tensor, values: torch.Tensor, radii: torch.Tensor,
                    query: torch.Tensor) -> torch.Tensor | None:
    """The value GRACE substitutes for ``query``, or ``None`` (the layer runs untouched).

    keys ``[n, d_key]``, values ``[n, d_value]``, radii ``[n]``, query ``[d_key]``. Only the *nearest*
    key counts: its value if the query is within its radius (``<=``), else ``None``.
    """
    i, d = nearest_key(keys, query)
    if i < 0 or d > float(radii[i]):
        return None
    return values[i]


def codebook_update(keys: torch.Tensor, radii: torch.Tensor, labels: Sequence[int], query: torch.Tensor,
                    label: int, eps_init: float) -> tuple[torch.Tensor, str]:
    """GRACE's codebook rule for a new edit ``(query, label)``: ``(new radii, action)``.

    keys ``[n, d]``, radii ``[n]``, labels: n ints. action ``"add"`` (a new key with radius ``eps_init``;
    the radii come back with ``n + 1`` entries), ``"expand"`` (same label within reach: the nearest radius
    grows to the distance if it was smaller; ``n`` entries) or ``"split"`` (conflicting label within
    reach: a new key is added and the nearest radius and the new one become ``d/2 − 1e-5`` and
    ``d/2``; ``n + 1`` entries). "Within reach" is ``d <= eps_init + radius of the nearest key``.
    """
    radii = radii.detach().clone().float()
    i, d = nearest_key(keys, query)
    if i < 0 or d > eps_init + float(radii[i]):
        return torch.cat([radii, torch.tensor([float(eps_init)])]), "add"
    if int(labels[i]) == int(label):
        if d > float(radii[i]):
            radii[i] = d
        return radii, "expand"
    radii[i] = d / 2 - SPLIT_MARGIN
    return torch.cat([radii, torch.tensor([d / 2])]), "split"


# -- the adaptor ---------------------------------------------------------------------------------
class Grace:
    """A GRACE codebook around MLP ``layer``'s output projection of ``model`` (see the module docstring).

    Attributes: ``keys [n, d_mlp]``, ``values [n, d_model]``, ``radii [n]``, ``labels`` (token ids),
    ``log`` (one dict per edit: action, key, distance, losses). The model's weights are never touched.
    """

    def __init__(self, model, layer: int | None = None, eps_init: float | None = None,
                 hparams: GraceHparams | None = None):
        check_model(model)
        hp = hparams or GraceHparams()
        if eps_init is not None:
            hp = GraceHparams(**{**hp.__dict__, "eps_init": eps_init})
        if isinstance(hp.eps_init, bool) or not isinstance(hp.eps_init, (int, float)) or not hp.eps_init > 0:
            raise InputError(f"eps_init (the initial deferral radius) must be a positive number, got {hp.eps_init!r}")
        if hp.value_init not in ("warm", "cold"):
            raise InputError(f"value_init must be 'warm' or 'cold', got {hp.value_init!r}")
        self.model = model
        self.layer = default_layer(model) if layer is None else check_layer(model, layer)
        self.hparams = hp
        dev = model.W_E.device
        self.keys = torch.zeros(0, model.cfg.d_mlp, device=dev)
        self.values = torch.zeros(0, model.cfg.d_model, device=dev)
        self.radii = torch.zeros(0, device=dev)
        self.labels: list[int] = []
        self.log: list[dict] = []
        self._attached = None
        self._gen = torch.Generator().manual_seed(hp.seed)

    @property
    def n_keys(self) -> int:
        return int(self.keys.shape[0])

    @property
    def eps_init(self) -> float:
        return float(self.hparams.eps_init)

    def __repr__(self) -> str:
        return f"Grace(layer={self.layer}, eps_init={self.eps_init}, n_keys={self.n_keys})"

    # -- running the model through the codebook --------------------------------------------------
    def hooks(self, last: torch.Tensor | None = None) -> list[tuple[str, Callable]]:
        """Forward hooks (``model.run_with_hooks(tokens, fwd_hooks=g.hooks())``) that apply the codebook
        at each row's ``last`` token (``[batch]``; default: the last position)."""
        store: dict = {}

        def positions(act):
            b = act.shape[0]
            if last is None:
                return torch.arange(b), torch.full((b,), act.shape[1] - 1)
            return torch.arange(b), last.to(torch.long).cpu()

        def keep(post, hook):
            rows, pos = positions(post)
            store["query"] = post[rows, pos].detach().float()
            return post

        def replace(out, hook):
            q = store.pop("query", None)
            if q is None or self.n_keys == 0:
                return out
            d = torch.cdist(q, self.keys.float().to(q.device))  # [batch, n_keys]
            dist, idx = d.min(1)
            hit = dist <= self.radii.to(q.device)[idx]
            if not bool(hit.any()):
                return out
            rows, pos = positions(out)
            out = out.clone()
            out[rows[hit], pos[hit]] = self.values.to(out.device, out.dtype)[idx[hit]]
            return out
        return [(hk.mlp_post(self.layer), keep), (hk.mlp_out(self.layer), replace)]

    @contextmanager
    def applied(self, last: torch.Tensor | None = None) -> Iterator["Grace"]:
        """Inside the block every forward of ``model`` goes through the codebook (hooks; weights untouched)."""
        with self.model.hooks(fwd_hooks=self.hooks(last)):
            yield self

    def attach(self) -> "Grace":
        """Wrap the model until :meth:`remove` (plain ``model(tokens)`` then uses the codebook)."""
        if self._attached is None:
            self._attached = self.model.hooks(fwd_hooks=self.hooks())
            self._attached.__enter__()
        return self

    def remove(self) -> None:
        """Unwrap the model (if attached). The model's weights were never changed."""
        if self._attached is not None:
            self._attached.__exit__(None, None, None)
            self._attached = None

    def deferrals(self, queries: torch.Tensor) -> torch.Tensor:
        """``[n]`` bool: which queries (``[n, d_mlp]``) fall within the radius of their nearest key."""
        if self.n_keys == 0:
            return torch.zeros(queries.shape[0], dtype=torch.bool)
        dist, idx = torch.cdist(queries.float(), self.keys.float()).min(1)
        return dist <= self.radii[idx]

    # -- editing -------------------------------------------------------------------------------
    @torch.no_grad()
    def query(self, text: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens [1, pos], key [d_mlp], the layer's own output [d_model])`` at the last token of ``text``."""
        toks = _tokens(self.model, text)[None]
        names = (hk.mlp_post(self.layer), hk.mlp_out(self.layer))
        _, cache = self.model.run_with_cache(toks, names_filter=lambda n: n in names)
        return toks, cache[names[0]][0, -1].float(), cache[names[1]][0, -1].float()

    def edit(self, request: dict) -> dict:
        """Insert one edit (ROME's request format) into the codebook and train its value; returns its log entry."""
        req = parse_request(self.model, request)
        text = req.prompt.format(req.subject)
        toks, key, own = self.query(text)
        radii, action = codebook_update(self.keys, self.radii.cpu(), self.labels, key.cpu(), req.target_new,
                                        self.eps_init)
        i, dist = nearest_key(self.keys, key)
        if action == "expand":
            chosen = i
        else:
            if self.hparams.value_init == "warm":
                v0 = own
            else:
                v0 = torch.rand(self.model.cfg.d_model, generator=self._gen).to(own.device)
            self.keys = torch.cat([self.keys, key[None]])
            self.values = torch.cat([self.values, v0[None]])
            self.labels.append(req.target_new)
            chosen = self.n_keys - 1
        self.radii = radii.to(self.keys.device)
        losses = self._train_value(toks, chosen, req.target_new)
        entry = {"action": action, "key": chosen, "distance": dist, "target": req.target_new, "losses": losses,
                 "text": text}
        self.log.append(entry)
        return entry

    def _train_value(self, toks: torch.Tensor, i: int, target: int) -> list[float]:
        hp = self.hparams
        v = self.values[i].detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([v], lr=hp.lr)
        name = hk.mlp_out(self.layer)

        def put(out, hook):
            out = out.clone()
            out[0, -1] = v.to(out.dtype)
            return out
        frozen = [p.requires_grad for p in self.model.parameters()]
        for p in self.model.parameters():
            p.requires_grad_(False)
        losses: list[float] = []
        try:
            with torch.enable_grad():
                for _ in range(hp.n_iter):
                    logits = self.model.run_with_hooks(toks, fwd_hooks=[(name, put)])
                    loss = -logits[0, -1].float().log_softmax(-1)[target]
                    losses.append(float(loss.detach()))
                    if losses[-1] < hp.stop_loss:
                        break
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        finally:
            for p, f in zip(self.model.parameters(), frozen):
                p.requires_grad_(f)
        values = self.values.clone()
        values[i] = v.detach()
        self.values = values
        return losses


def grace_editor(layer: int | None = None, eps_init: float | None = None,
                 hparams: GraceHparams | None = None) -> Callable[[object, dict], Grace]:
    """An editor ``(model, request) -> Grace`` holding that one edit (for one-edit-at-a-time evaluations)."""
    def edit(model, request):
        g = Grace(model, layer, eps_init, hparams)
        g.edit(request)
        return g
    return edit


@torch.no_grad()
def key_distances(model, kb, layer: int | None = None, n_people: int = 40, relation: str = "birth_city",
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """Distances between GRACE keys (``blocks.L.mlp.hook_post`` at the prompt's last token) on the KB.

    For ``n_people`` seeded people: ``"paraphrase"``: from each person's first template of ``relation`` to
    their other templates (what a radius must span to generalise); ``"other_people"``: between different
    people on the same template (what it must not reach); ``"other_relations"``: from a person's
    ``relation`` prompt to their other relations' first templates. Each a flat tensor of distances.
    """
    check_model(model)
    layer = default_layer(model) if layer is None else check_layer(model, layer)
    g = torch.Generator().manual_seed(seed)
    people = [kb.subjects[i] for i in torch.randperm(len(kb.subjects), generator=g)[:n_people].tolist()]
    name = hk.mlp_post(layer)

    def keys(prompts):
        toks, lens = _pad(model, prompts)
        _, cache = model.run_with_cache(toks, names_filter=lambda n: n == name)
        return cache[name][torch.arange(len(prompts)), lens - 1].float().cpu()
    tpls = kb.templates(relation)
    para = keys([t.format(s) for s in people for t in tpls]).view(len(people), len(tpls), -1)
    others = [r for r in kb.relations if r != relation]
    rel = keys([kb.templates(r)[0].format(s) for s in people for r in others]).view(len(people), len(others), -1)
    same = para[:, 0]
    iu = torch.triu_indices(len(people), len(people), 1)
    return {"paraphrase": (para[:, 1:] - para[:, :1]).norm(dim=-1).flatten(),
            "other_people": torch.cdist(same, same)[iu[0], iu[1]],
            "other_relations": (rel - same[:, None]).norm(dim=-1).flatten()}


# -- running a model with any kind of edit ----------------------------------------------------------
def _pad(model, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = [_tokens(model, p) for p in prompts]
    lens = torch.tensor([len(s) for s in seqs])
    toks = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
    for j, s in enumerate(seqs):
        toks[j, : len(s)] = s
    return toks.to(model.W_E.device), lens


@torch.no_grad()
def next_token_logits(model, prompts: Sequence[str], edit=None, batch_size: int = 256) -> torch.Tensor:
    """``[n_prompts, d_vocab]``: logits at each prompt's last token, with ``edit`` applied.

    edit: ``None``; a ROME-style :class:`~mi_course.methods.rome.Edit` (by hooks); a :class:`Grace`
    (its codebook at each prompt's last token); a list of those; or an edited copy of the model (a
    module with the same interface, e.g. what ``apply_rome`` returns), which is then run instead.
    """
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise InputError("prompts must be a list of strings")
    if not prompts:
        return torch.zeros(0, model.cfg.d_vocab)
    edits = list(edit) if isinstance(edit, (list, tuple)) else ([] if edit is None else [edit])
    runner = model
    for e in edits:
        if isinstance(e, torch.nn.Module):
            runner = e
    out = []
    for i in range(0, len(prompts), batch_size):
        toks, lens = _pad(runner, prompts[i:i + batch_size])
        fwd = []
        for e in edits:
            if isinstance(e, Grace):
                fwd += e.hooks(last=lens - 1)
            elif isinstance(e, Edit):
                fwd += edit_hooks(e)
            elif not isinstance(e, torch.nn.Module):
                raise InputError(f"an edit must be None, a rome.Edit, a Grace codebook or an edited model, "
                                 f"got {type(e).__name__}")
        logits = runner.run_with_hooks(toks, fwd_hooks=fwd) if fwd else runner(toks)
        out.append(logits[torch.arange(len(lens)), lens - 1].float().cpu())
    return torch.cat(out)


def top1(model, prompts: Sequence[str], edit=None) -> torch.Tensor:
    """``[n_prompts]`` the most likely next token after each prompt (see :func:`next_token_logits`)."""
    return next_token_logits(model, prompts, edit).argmax(-1)


# -- sequential editing ------------------------------------------------------------------------------
def sequential_stream(model, kb, n_edits: int, n_test_people: int = 60, seed: int = 0) -> dict:
    """A seeded stream of ``n_edits`` counterfactual edits and a disjoint retention test set.

    People are split: ``n_test_people`` test people (their 5 base facts on their first training
    template: the **TRR** set, never edited) and the rest, whose base facts (distinct (subject,
    relation) pairs, random order) are edited to a random other object. Returns ``{"requests": [...],
    "paraphrases": [[prompt, ...] per edit], "test_prompts": [...], "test_targets": [token ids]}``.
    """
    check_model(model)
    people = list(kb.subjects)
    g = torch.Generator().manual_seed(seed)
    order = [people[i] for i in torch.randperm(len(people), generator=g).tolist()]
    test_people, edit_people = order[:n_test_people], order[n_test_people:]
    pool = [(s, r) for s in edit_people for r in kb.base_relations]
    if not 0 < n_edits <= len(pool):
        raise InputError(f"n_edits must be between 1 and {len(pool)} (the editable base facts), got {n_edits!r}")
    pool = [pool[i] for i in torch.randperm(len(pool), generator=g).tolist()[:n_edits]]
    requests, paraphrases = [], []
    for s, r in pool:
        others = [o for o in kb.objects(r) if o != kb.object_of(s, r)]
        new = others[int(torch.randint(len(others), (1,), generator=g))]
        req = kb.rome_request(s, r, new)
        requests.append(req)
        paraphrases.append([t.format(s) for t in kb.templates(r) if t != req["prompt"]])
    test_prompts, test_targets = [], []
    for s in test_people:
        for r in kb.base_relations:
            test_prompts.append(kb.split_templates(s, r, "train")[0].format(s))
            test_targets.append(parse_request(model, {"prompt": "{}", "subject": s,
                                                      "target_new": kb.object_of(s, r)}).target_new)
    return {"requests": requests, "paraphrases": paraphrases, "test_prompts": test_prompts,
            "test_targets": test_targets}


def retention_rates(correct_edits: Sequence[bool], correct_tests: Sequence[bool]) -> tuple[float, float]:
    """``(TRR, ERR)``: accuracy on the test set and on all edits so far (fractions)."""
    if len(correct_edits) == 0 or len(correct_tests) == 0:
        raise InputError("retention rates need at least one edit and one test fact")
    return (sum(map(bool, correct_tests)) / len(correct_tests), sum(map(bool, correct_edits)) / len(correct_edits))


def sequential_editing(model, kb, method: str = "grace", n_edits: int = 100,
                       checkpoints: Sequence[int] = (1, 10, 100, 1000), seed: int = 0, layer: int | None = None,
                       eps_init: float | None = None, hparams=None, ft_eps: float | None = None,
                       stream: dict | None = None, progress: bool = True) -> list[dict]:
    """Edit a stream one edit after another and measure retention at each checkpoint.

    method: ``"grace"`` (one codebook collects all edits), ``"rome"`` (each ROME edit computed on, and
    written into, the already edited copy, as ``apply_rome`` does), ``"ft"`` / ``"ft-l"`` (the same with
    :func:`~mi_course.methods.edit_evaluation.fine_tune_edit`). ``model`` is never changed.

    Returns one row per checkpoint ``<= n_edits``: ``{"edits", "TRR", "ERR", "paraphrase", "keys"}``:
    TRR = top-1 accuracy on the never-edited test facts (:func:`sequential_stream`), ERR = top-1 accuracy
    (``target_new``) on the edit prompts of all edits so far, paraphrase = the same on their other
    templates, keys = codebook size (GRACE) or ``None``.
    """
    from mi_course.methods import edit_evaluation as ev
    from mi_course.methods import rome

    check_model(model)
    if method not in ("grace", "rome", "ft", "ft-l"):
        raise InputError(f"method must be 'grace', 'rome', 'ft' or 'ft-l', got {method!r}")
    stream = stream or sequential_stream(model, kb, n_edits, seed=seed)
    reqs = stream["requests"][:n_edits]
    if len(reqs) < n_edits:
        raise InputError(f"the stream holds {len(reqs)} edits, fewer than n_edits={n_edits}")
    marks = sorted({int(c) for c in checkpoints if 0 < int(c) <= n_edits} | {n_edits})
    targets = [parse_request(model, r).target_new for r in reqs]
    test_targets = torch.tensor(stream["test_targets"])
    if method == "grace":
        g = Grace(model, layer, eps_init, hparams)
        current, state = model, g
    else:
        current = copy.deepcopy(model)
        current.eval()
        if getattr(model, "zoo_card", None) is not None:
            current.zoo_card = model.zoo_card
        state = None
        L = rome.default_layer(model) if layer is None else check_layer(model, layer)
        C = rome.second_moment(model, L) if method == "rome" else None
    rows = []
    for j, req in enumerate(tqdm(reqs, desc=f"sequential {method}", disable=not progress), start=1):
        if method == "grace":
            g.edit(req)
        elif method == "rome":
            apply_edit(current, rome.rome_edit(current, req, L, hparams, C=C))
        else:
            eps = (ft_eps if ft_eps is not None else ev.FT_L_EPS) if method == "ft-l" else None
            apply_edit(current, ev.fine_tune_edit(current, req, L, eps))
        if j in marks:
            done = reqs[:j]
            edit_ok = top1(current, [r["prompt"].format(r["subject"]) for r in done], state) == torch.tensor(targets[:j])
            para_prompts = [p for k in range(j) for p in stream["paraphrases"][k]]
            para_t = torch.tensor([targets[k] for k in range(j) for _ in stream["paraphrases"][k]])
            para_ok = top1(current, para_prompts, state) == para_t
            test_ok = top1(current, stream["test_prompts"], state) == test_targets
            trr, err = retention_rates(edit_ok.tolist(), test_ok.tolist())
            rows.append({"edits": j, "TRR": round(trr, 4), "ERR": round(err, 4),
                         "paraphrase": round(float(para_ok.float().mean()), 4),
                         "keys": g.n_keys if method == "grace" else None})
    return rows

"""Week 13 on ``text-lm-v2``: steering with SAE features vs difference of means; a sparse feature circuit.

    python benchmarks/textlm_steering_circuits.py                 # print (full settings)
    python benchmarks/textlm_steering_circuits.py --write         # also write measured_week13_*.json
    python benchmarks/textlm_steering_circuits.py --tiny          # smoke test: a few files, a few steps

Everything is seeded and nothing is chosen by hand: latents are picked by contrast, the circuit's
prompts are found in the held-out corpus by rule.

1. **SAEs.** One TopK SAE on the residual stream after each block (``blocks.L.hook_resid_post``):
   a zoo SAE for that model and hook if there is one, otherwise trained here on the model's own
   corpus (train split; ``--sae-steps`` batches of 1,024 tokens), measured on held-out windows
   (explained variance, L0, CE loss recovered) so a weak SAE shows.
2. **Steering** (Templeton et al. 2024; Turner et al. 2023). For each target in :data:`TARGETS`
   (a next token that marks a behaviour: opening a docstring, the keyword ``return``, ``self``),
   at the middle layer's SAE: the latent whose mean activation differs most (in standard
   deviations) between positions whose next token is the target and all others (train windows);
   the difference-of-means vector at the same hook and positions; a random direction. Each is
   normalised to the residual stream's mean norm there and swept over :data:`STRENGTHS` (added at
   every position). Behaviour: mean log-probability of the target over all positions of held-out
   windows, and (since any large push flattens the distribution, which raises every rare token's
   log-probability) the share of positions where the target is the top prediction; damage: the
   increase of the next-token loss on *other* held-out windows. Compared at equal damage
   (:func:`steering.behaviour_at_damage`). ``--only-steering`` redoes this section alone (minutes).
3. **Circuit** (Marks et al. 2024) for closing a bracket: held-out places where the next token is
   ``)`` and its opening ``(`` is a token of its own ``GAP`` tokens earlier (the most common gap
   in 2..6, so the positions line up); the counterfactual swaps that ``(`` for ``[``; metric
   ``logit(")") - logit("]")``. Node effects by attribution patching and by integrated gradients
   over the latents and error terms of every layer's SAE (with actual patching of the top nodes
   one at a time as ground truth); pruning at several thresholds with faithfulness and
   completeness, beside random circuits of the same size; edge effects into the top nodes of the
   last layer.

Writes ``measured_week13_steering.json`` and ``measured_week13_circuit.json`` beside the model's
card. On a provisional (mid-training) snapshot the files say so (``provisional`` and the card's step).
"""

from __future__ import annotations

import argparse
import re
import time

import torch
from tqdm.auto import tqdm

MODEL = "text-lm-v2"
#: next tokens that mark a behaviour (matched on the token's text with surrounding spaces stripped)
TARGETS = {"docstring": '"""', "return": "return", "self": "self"}
STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0)   # times the residual stream's mean norm at the hook
DAMAGES = (0.05, 0.1, 0.2, 0.5)          # nats of extra loss at which the methods are compared
N_RANDOM = 8                             # random directions per target (the baseline's spread)
THRESHOLDS = (0.3, 0.1, 0.03, 0.01, 0.003)  # node-effect thresholds (relative to the largest effect)

FULL = dict(max_files=None, max_train_files=2000, n_train_windows=256, n_heldout=64, sae_steps=300, n_circuit=48, ig_steps=10,
            n_exact=12, n_random=5, n_edges=3)
TINY = dict(max_files=40, max_train_files=40, n_train_windows=24, n_heldout=8, sae_steps=20, n_circuit=6, ig_steps=3,
            n_exact=3, n_random=2, n_edges=1)


# ------------------------------------------------------------------------------------------- data
def load(model_name: str, max_files: int | None, max_train_files: int | None = None):
    """The model, its raw tokenizer and its corpus's tokens (train: ``max_train_files`` random files,
    held-out: ``max_files`` random files; ``None`` = all), 1-D."""
    from mi_course import zoo
    from mi_course.training import textlm_recipe as v1

    model = zoo.load(model_name)
    for p in model.parameters():
        p.requires_grad_(False)
    tok = v1.load_raw_tokenizer(zoo.card(model_name).folder)
    return model, tok, _tokens(tok, "train", max_train_files), _tokens(tok, "heldout", max_files)


def _tokens(tok, split: str, n_files: int | None, seed: int = 0) -> torch.Tensor:
    """1-D ids of ``n_files`` files of ``split`` drawn at random (seeded; all files in corpus order if ``None``),
    each preceded by ``<|endoftext|>``."""
    from mi_course.data import python_corpus as pc
    from mi_course.data import stdlib_corpus as sc

    fs = pc.files(split)
    if n_files is not None and n_files < len(fs):
        pick = torch.randperm(len(fs), generator=torch.Generator().manual_seed(seed))[:n_files].sort().values
        fs = [fs[i] for i in pick.tolist()]
    parts = [sc.tokenize_texts(tok, [pc.read(f) for f in fs[i : i + 256]]) for i in range(0, len(fs), 256)]
    return torch.cat(parts).long()


def token_ids(tok, text: str) -> list[int]:
    """Every vocabulary id whose text, stripped of spaces, is ``text``."""
    return sorted(i for s, i in tok.get_vocab().items() if tok.decode([i]).strip() == text)


# ------------------------------------------------------------------------------------------- SAEs
def get_saes(model, model_name: str, train_windows: torch.Tensor, held_windows: torch.Tensor, steps: int,
             seed: int = 0, progress: bool = True, layers=None) -> tuple[dict, dict]:
    """``{hook: SAE}`` for the resid_post of every block (or of ``layers``), and their quality figures."""
    from mi_course import zoo
    from mi_course.methods import sae as S
    from mi_course.training.sae_recipe import D_SAE, K, evaluate

    saes, quality = {}, {}
    for L in (range(model.cfg.n_layers) if layers is None else layers):
        hook = f"blocks.{L}.hook_resid_post"
        found = [n for n in zoo.sae_names()
                 if zoo.sae_card(n).model_name == model_name and zoo.sae_card(n).hook_name == hook
                 and zoo.sae_card(n).extra.get("model_sha256") in (None, zoo.card(model_name).sha256)]
        if found:
            sae, source = zoo.load_sae(found[0]), f"zoo SAE {found[0]}"
        else:
            d_sae = min(D_SAE * model.cfg.d_model // 128, 2048)
            sae = S.SparseAutoencoder(model.cfg.d_model, d_sae, "topk", k=K, seed=seed + L)
            buf = S.ActivationBuffer(model, hook, train_windows, buffer_tokens=16_384, model_batch=16, seed=seed + L)
            S.train_sae(sae, buf, steps=steps, batch_size=1024, lr=1e-3, dead_after_tokens=200_000,
                        progress=progress, seed=seed + L)
            source = f"trained here: TopK k={K}, {d_sae} latents, {steps} batches of 1,024 tokens, seed {seed + L}"
        sae.hook_name = hook
        sae.eval()
        for p in sae.parameters():
            p.requires_grad_(False)
        ev = evaluate(model, sae, held_windows)
        quality[hook] = {"source": source, **{k: round(float(ev[k]), 4) for k in
                                              ("explained_variance", "l0", "ce_loss_recovered", "clean", "spliced")}}
        saes[hook] = sae
    return saes, quality


# --------------------------------------------------------------------------------------- steering
@torch.no_grad()
def _acts(model, hook: str, windows: torch.Tensor, batch: int = 16) -> torch.Tensor:
    out = []
    for i in range(0, len(windows), batch):
        _, cache = model.run_with_cache(windows[i : i + batch], names_filter=lambda n: n == hook)
        out.append(cache[hook].float())
    return torch.cat(out)


def pick_latent(f: torch.Tensor, is_target: torch.Tensor) -> tuple[int, float]:
    """The latent (``f`` ``[n, d_sae]``) whose mean differs most between target and other positions, in
    pooled standard deviations; and that difference."""
    a, b = f[is_target], f[~is_target]
    sd = ((a.var(0) + b.var(0)) / 2).sqrt().clamp_min(1e-6)
    score = (a.mean(0) - b.mean(0)) / sd
    i = int(score.argmax())
    return i, float(score[i])


@torch.no_grad()
def target_logprob_all(model, windows: torch.Tensor, targets: list[int], fwd_hooks=(), top1: list | None = None) -> float:
    """Mean over all positions but the first of log P(next token in ``targets``).

    ``top1``: a list that gets the share of those positions where a target is the model's top
    prediction appended (what the model would *say*; a push that only flattens the distribution
    raises the log-probability of every rare token but makes none of them the top choice).
    """
    from mi_course.methods import steering as ST

    logits = model.run_with_hooks(windows, fwd_hooks=list(fwd_hooks)).float()
    if top1 is not None:
        top1.append(ST.top_prediction_share(logits, targets))
    lp = logits[:, 1:].log_softmax(-1)
    return float(lp[..., targets].logsumexp(-1).mean())


def steering_section(model, tok, saes: dict, train_w: torch.Tensor, beh_w: torch.Tensor, dmg_w: torch.Tensor,
                     seed: int = 0) -> dict:
    from mi_course.methods import steering as ST

    hook = list(saes)[len(saes) // 2 - 1 if len(saes) > 1 else 0]
    sae = saes[hook]
    x = _acts(model, hook, train_w)                       # [n, pos, d]
    nxt = train_w[:, 1:]
    x = x[:, :-1].reshape(-1, x.shape[-1])
    nxt = nxt.reshape(-1)
    keep = torch.ones_like(nxt, dtype=torch.bool)
    keep[:: train_w.shape[1] - 1] = False                  # leave out the <|endoftext|> position
    x, nxt = x[keep], nxt[keep]
    f = sae.encode(x)
    norm = float(x.norm(dim=-1).mean())
    g = torch.Generator().manual_seed(seed)
    out = {"hook": hook, "resid_norm": round(norm, 4), "strengths": list(STRENGTHS), "damages": list(DAMAGES),
           "targets": {}}
    for name, text in TARGETS.items():
        ids = token_ids(tok, text)
        is_t = torch.isin(nxt, torch.tensor(ids)) if ids else torch.zeros_like(nxt, dtype=torch.bool)
        if int(is_t.sum()) < 5:
            out["targets"][name] = {"text": text, "skipped": f"only {int(is_t.sum())} positions before it"}
            continue
        latent, contrast = pick_latent(f, is_t)
        dirs = {"feature": ST.feature_vector(sae, latent), "diff_of_means": x[is_t].mean(0) - x[~is_t].mean(0),
                "random": torch.randn(x.shape[-1], generator=g)}
        row = {"text": text, "token_ids": ids, "n_positions": int(is_t.sum()), "latent": latent,
               "latent_contrast_sd": round(contrast, 4),
               "cos_feature_dom": round(float(torch.nn.functional.cosine_similarity(dirs["feature"], dirs["diff_of_means"], 0)), 4),
               "methods": {}, "unit_vectors": {m: [round(float(u), 5) for u in dirs[m] / dirs[m].norm()]
                                                for m in ("feature", "diff_of_means")}}
        def steer(v):
            v = v / v.norm() * norm
            top1: list = []  # [no hook, then each strength]
            rows = ST.sweep(hook, lambda s, v=v: ST.add_vector_hook(v, s), STRENGTHS,
                            lambda h, top1=top1: target_logprob_all(model, beh_w, ids, h, top1),
                            lambda h: ST.heldout_loss(model, dmg_w, h))
            said = [{"d_behaviour": t - top1[0], "d_damage": r["d_damage"]} for t, r in zip(top1[1:], rows)]
            row["baseline_top1"] = round(top1[0], 5)
            return {
                "sweep": [{k: round(r[k], 4) for k in ("strength", "d_behaviour", "d_damage")} | {"top1": round(t, 5)}
                          for r, t in zip(rows, top1[1:])],
                "at_damage": {str(d): _r(ST.behaviour_at_damage(rows, d)) for d in DAMAGES},
                "top1_at_damage": {str(d): _r(ST.behaviour_at_damage(said, d) + top1[0], 5) for d in DAMAGES}}

        for m, v in dirs.items():
            row["methods"][m] = steer(v)
        # one random draw says little: N_RANDOM directions in all (the first is "random" above; the others
        # come from their own generator, so the draws above stay what they were)
        g_more = torch.Generator().manual_seed(seed + 1000 + len(out["targets"]))
        more = [row["methods"]["random"]] + [steer(torch.randn(x.shape[-1], generator=g_more))
                                             for _ in range(N_RANDOM - 1)]
        row["random_directions"] = {"n": N_RANDOM, **{key: {str(d): [r[key][str(d)] for r in more] for d in DAMAGES}
                                                      for key in ("at_damage", "top1_at_damage")}}
        row["baseline_logprob"] = round(target_logprob_all(model, beh_w, ids), 4)
        out["targets"][name] = row
    return out


def _r(x: float, n: int = 4):
    return None if x != x else round(float(x), n)


# ---------------------------------------------------------------------------------------- circuit
def bracket_prompts(tok, held: torch.Tensor, n: int, length: int = 24, gaps=range(2, 7)) -> dict:
    """Held-out places where the next token is ``)`` and its ``(`` is a token of its own ``gap`` tokens
    earlier, with nothing bracket-like in between: ``[n, length]`` clean prompts ending just before the
    ``)``, the same with that ``(`` swapped for ``[``, and the gap used (the most common one)."""
    exact = {}
    for ch in "()[]":
        ids = token_ids(tok, ch)
        bare = [i for i in ids if tok.decode([i]) == ch]   # prefer the token without a leading space
        if not ids:
            raise RuntimeError(f"the tokenizer has no token {ch!r}")
        exact[ch] = (bare or ids)[0]
    o, c, sq, csq = exact["("], exact[")"], exact["["], exact["]"]
    bracketish = torch.tensor([i for s, i in tok.get_vocab().items()
                               if any(ch in tok.decode([i]) for ch in "()[]{}\n")])
    ends = (held[1:] == c).nonzero()[:, 0]                  # held[e] is followed by ")"
    found: dict[int, list[int]] = {g: [] for g in gaps}
    for e in ends.tolist():
        for gap in gaps:
            s = e - gap + 1                                 # the "(" position
            if s < length or held[s] != o:
                continue
            inner = held[s + 1 : e + 1]
            if torch.isin(inner, bracketish).any() or (held[e - length + 1 : e + 1] == 0).any():
                continue
            found[gap].append(e)
            break
    gap = max(found, key=lambda g: len(found[g]))
    if not found[gap]:
        raise RuntimeError("no held-out place where ')' closes a '(' token a few tokens earlier: use more files")
    sel = found[gap][:n]
    clean = torch.stack([held[e - length + 1 : e + 1] for e in sel])
    patch = clean.clone()
    patch[:, length - gap] = sq
    return {"clean": clean, "patch": patch, "gap": gap, "close": c, "close_square": csq, "n_found": len(found[gap]),
            "found_by_gap": {str(g): len(v) for g, v in found.items()}}


def circuit_section(model, saes: dict, data: dict, reference: torch.Tensor, cfg: dict, seed: int = 0,
                    progress: bool = True) -> dict:
    from mi_course.methods import sparse_feature_circuits as SFC

    clean, patch = data["clean"], data["patch"]
    a, b = data["close"], data["close_square"]

    def metric(logits):
        return (logits[:, -1, a] - logits[:, -1, b]).mean()

    with torch.no_grad():
        m_clean, m_patch = float(metric(model(clean))), float(metric(model(patch)))
    t0 = time.time()
    atp = SFC.node_effects(model, saes, clean, metric, patch)
    t_atp = time.time() - t0
    t0 = time.time()
    ig = SFC.node_effects(model, saes, clean, metric, patch, method="ig", steps=cfg["ig_steps"])
    t_ig = time.time() - t0
    n = clean.shape[0]

    def flat(e):  # [n_nodes] in a fixed order: per hook, latents then errors
        return torch.cat([torch.cat([x["latents"].flatten(), x["error"]]) for x in e.values()])

    fa, fi = flat(atp), flat(ig)        # effects on the metric (a mean over prompts; node effects sum over them)
    # ground truth for the strongest nodes: patch one node at a time
    top = fi.abs().argsort(descending=True)[: cfg["n_exact"]].tolist()
    exact = [_patch_one(model, saes, clean, patch, metric, k) - m_clean for k in tqdm(top, desc="exact patching",
                                                                                        disable=not progress)]
    corr = float(torch.corrcoef(torch.stack([fa, fi]))[0, 1])
    scale = float(fi.abs().max())
    g = torch.Generator().manual_seed(seed)
    curve = []
    for rel in THRESHOLDS:
        circuit = SFC.prune(ig, rel * scale)
        size = SFC.circuit_size(circuit)
        faith = SFC.faithfulness(model, saes, clean, metric, circuit, reference)
        comp = SFC.completeness(model, saes, clean, metric, circuit, reference)
        rand = [SFC.faithfulness(model, saes, clean, metric, _random_like(circuit, g), reference)["normalised"]
                for _ in range(cfg["n_random"])]
        curve.append({"threshold_rel": rel, "n_latents": size["latents"], "n_errors": size["errors"],
                      "faithfulness": _r(faith["normalised"]), "completeness": _r(comp["normalised"]),
                      "random_faithfulness": _r(sum(rand) / len(rand))})
    hooks = list(saes)
    top_nodes = []
    for k in top[:10]:
        top_nodes.append({**_node_name(saes, clean.shape[1], k), "atp": _r(float(fa[k])), "ig": _r(float(fi[k])),
                          "exact": _r(exact[top.index(k)] if k in top[: len(exact)] else float("nan"))})
    # edges from the second-to-last layer into the last layer's strongest latents at the last position
    last = ig[hooks[-1]]["latents"][-1]
    down = [(-1, int(j)) for j in last.abs().argsort(descending=True)[: cfg["n_edges"]]]
    edges = SFC.edge_effects(model, saes, clean, metric, hooks[-2], hooks[-1], down, patch) if len(hooks) > 1 else None
    edge_rows = []
    if edges is not None:
        for r, (p, j) in enumerate(down):
            e = edges["latents"][r]
            idx = e.abs().flatten().argsort(descending=True)[:5]
            edge_rows.append({"down_latent": j, "down_effect": _r(float(last[j])),
                              "from_error": _r(float(edges["error"][r].sum())),
                              "top_upstream": [{"position": int(i) // e.shape[1] - e.shape[0], "latent": int(i) % e.shape[1],
                                                "effect": _r(float(e.flatten()[i]))} for i in idx]})
    return {"metric": "logit(')') - logit(']') at the last position", "n_prompts": int(n), "gap": data["gap"],
            "n_found": data["n_found"], "found_by_gap": data["found_by_gap"], "length": int(clean.shape[1]),
            "metric_clean": round(m_clean, 4), "metric_patch": round(m_patch, 4), "hooks": hooks,
            "atp_vs_ig_corr": round(corr, 4), "seconds_atp": round(t_atp, 2), "seconds_ig": round(t_ig, 2),
            "exact_top": [{"ig": _r(float(fi[k])), "atp": _r(float(fa[k])), "exact": _r(x)} for k, x in zip(top, exact)],
            "top_nodes": top_nodes, "curve": curve, "edges": edge_rows,
            "total_ig_by_hook": {h: _r(float(e["latents"].sum() + e["error"].sum())) for h, e in ig.items()},
            "total_actual": round(m_patch - m_clean, 4)}


def _node_name(saes: dict, pos: int, k: int) -> dict:
    for hook, sae in saes.items():
        size = pos * sae.d_sae + pos
        if k < size:
            if k < pos * sae.d_sae:
                return {"hook": hook, "position": k // sae.d_sae - pos, "latent": k % sae.d_sae}
            return {"hook": hook, "position": k - pos * sae.d_sae - pos, "latent": "error"}
        k -= size
    raise IndexError(k)


@torch.no_grad()
def _patch_one(model, saes: dict, clean, patch, metric, k: int) -> float:
    from mi_course.methods import sparse_feature_circuits as SFC

    node = _node_name(saes, clean.shape[1], k)
    store: dict = {}
    model.run_with_hooks(patch, fwd_hooks=SFC.splice_hooks(saes, store))
    hook, sae, p = node["hook"], saes[node["hook"]], node["position"]

    def fn(act, hook=None):
        f = sae.encode(act)
        err = act - sae.decode(f)
        if node["latent"] == "error":
            err[:, p] = store[node["hook"]]["err"][:, p]
        else:
            f[:, p, node["latent"]] = store[node["hook"]]["f"][:, p, node["latent"]]
        return sae.decode(f) + err

    return float(metric(model.run_with_hooks(clean, fwd_hooks=[(hook, fn)])))


def _random_like(circuit: dict, g: torch.Generator) -> dict:
    """As many latent and error nodes per hook point as ``circuit``, drawn at random."""
    out = {}
    for n, c in circuit.items():
        lat = torch.zeros(c["latents"].numel(), dtype=torch.bool)
        lat[torch.randperm(lat.numel(), generator=g)[: int(c["latents"].sum())]] = True
        err = torch.zeros(c["error"].numel(), dtype=torch.bool)
        err[torch.randperm(err.numel(), generator=g)[: int(c["error"].sum())]] = True
        out[n] = {"latents": lat.reshape(c["latents"].shape), "error": err}
    return out


# ------------------------------------------------------------------------------------------- main
def main(model_name: str = MODEL, write: bool = False, tiny: bool = False, seed: int = 0, progress: bool = True,
         only_steering: bool = False, **overrides) -> dict:
    """``only_steering``: redo the steering section alone (minutes: it needs only the zoo's layer-1 SAE) and
    update its targets in the measured file, keeping the rest as measured."""
    from mi_course import zoo
    from mi_course.data import stdlib_corpus as sc

    cfg = {**(TINY if tiny else FULL), **{k: v for k, v in overrides.items() if v is not None}}
    if only_steering:
        cfg["layers"] = [zoo.card(model_name).config["n_layers"] // 2 - 1]  # the hook steering_section picks
    torch.manual_seed(seed)
    t0 = time.time()
    model, tok, train, held = load(model_name, cfg["max_files"], cfg["max_train_files"])
    n_ctx = model.cfg.n_ctx
    length = min(n_ctx, 128)
    g = torch.Generator().manual_seed(seed)
    train_w = sc.random_windows(train, cfg["n_train_windows"], length, g)
    held_w = sc.heldout_windows(held, 2 * cfg["n_heldout"], length)
    beh_w, dmg_w = held_w[0::2], held_w[1::2]
    saes, quality = get_saes(model, model_name, sc.random_windows(train, max(cfg["sae_steps"] * 1024 // (n_ctx - 1) + 16, 32),
                                                                  n_ctx, g), held_w[:16], cfg["sae_steps"], seed, progress,
                             cfg.get("layers"))
    card = zoo.card(model_name)
    snap = re.search(r"snapshot at step (\d+)", card.summary or "", re.IGNORECASE)  # a mid-training snapshot's card
    common = {"model": model_name, "model_sha256": card.sha256, "seed": seed, "tiny": tiny, "config": cfg,
              "provisional": snap is not None, "snapshot_step": int(snap.group(1)) if snap else None, "saes": quality}
    steer = {**common, **steering_section(model, tok, saes, train_w, beh_w, dmg_w, seed)}
    if only_steering:  # the layer-1 zoo SAE alone: the other layers' SAEs and the circuit are left as measured
        try:
            old = card.measured("week13_steering")
        except FileNotFoundError:  # nothing measured yet: keep this run's fields
            old = steer
        steer = {**old, "targets": steer["targets"], "seconds_steering_only": round(time.time() - t0, 1)}
        if write:
            card.write_measured("week13_steering", steer)
        return {"steering": steer}
    data = bracket_prompts(tok, held, cfg["n_circuit"])
    ref = sc.random_windows(held, max(2 * cfg["n_circuit"], 16), data["clean"].shape[1], torch.Generator().manual_seed(seed + 1))
    circ = {**common, **circuit_section(model, saes, data, ref, cfg, seed, progress)}
    steer["seconds"] = circ["seconds"] = round(time.time() - t0, 1)
    if write:
        card.write_measured("week13_steering", steer)
        card.write_measured("week13_circuit", circ)
    return {"steering": steer, "circuit": circ}


def summary(res: dict) -> str:
    s, c = res["steering"], res["circuit"]
    lines = [f"model {s['model']} (provisional: {s['provisional']}, step {s['snapshot_step']}), {s['seconds']} s"]
    for h, q in s["saes"].items():
        lines.append(f"  SAE {h}: EV {q['explained_variance']}, L0 {q['l0']}, CE recovered {q['ce_loss_recovered']}")
    lines.append(steering_summary(s))
    lines.append(f"  circuit: {c['n_prompts']} prompts (gap {c['gap']}), metric clean {c['metric_clean']} patch "
                 f"{c['metric_patch']}, AtP vs IG r = {c['atp_vs_ig_corr']}")
    for r in c["curve"]:
        lines.append(f"    threshold {r['threshold_rel']}: {r['n_latents']} latents + {r['n_errors']} errors, "
                     f"faithfulness {r['faithfulness']} (random {r['random_faithfulness']}), completeness {r['completeness']}")
    return "\n".join(lines)


def steering_summary(s: dict) -> str:
    lines = []
    for name, t in s["targets"].items():
        if "skipped" in t:
            lines.append(f"  {name}: skipped ({t['skipped']})")
            continue
        at = {m: t["methods"][m]["at_damage"] for m in t["methods"]}
        lines.append(f"  {name} ({t['text']!r}, latent {t['latent']}, {t['latent_contrast_sd']} sd, cos to DoM "
                     f"{t['cos_feature_dom']}): d logprob at damage " +
                     "; ".join(f"{d}: " + ", ".join(f"{m} {at[m][str(d)]}" for m in at) for d in s["damages"]))
        if all("top1_at_damage" in t["methods"][m] for m in at):
            top = {m: t["methods"][m]["top1_at_damage"] for m in at}
            lines.append(f"    top-1 share (clean {t['baseline_top1']}) at damage " +
                         "; ".join(f"{d}: " + ", ".join(f"{m} {top[m][str(d)]}" for m in top) for d in s["damages"]))
        if "random_directions" in t:
            rd = t["random_directions"]
            for key in ("at_damage", "top1_at_damage"):
                lines.append(f"    {rd['n']} random directions, {key}: " + "; ".join(
                    f"{d}: mean {sum(v) / len(v):.4g} ({min(v):.4g} to {max(v):.4g})"
                    for d in s["damages"] if None not in (v := rd[key][str(d)])))
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="smoke test: a few files, a few SAE steps, a few prompts")
    ap.add_argument("--sae-steps", type=int, default=None)
    ap.add_argument("--max-files", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-steering", action="store_true",
                    help="redo the steering section alone and update its targets in the measured file")
    a = ap.parse_args()
    torch.set_num_threads(1)
    res = main(a.model, a.write, a.tiny, a.seed, only_steering=a.only_steering, sae_steps=a.sae_steps,
               max_files=a.max_files, max_train_files=a.max_files)
    print(summary(res) if "circuit" in res else steering_summary(res["steering"]))

"""Week 14's figures: transcoders at two MLPs of ``text-lm-v2``, circuits through them, checked by ablation.

    python benchmarks/textlm_transcoder_circuits.py            # measure and print
    python benchmarks/textlm_transcoder_circuits.py --write    # also write the two measured files
    python benchmarks/textlm_transcoder_circuits.py --smoke    # tiny settings, transcoders trained here
    python benchmarks/textlm_transcoder_circuits.py --model text-lm --smoke

Transcoders: the zoo's ``<model>-L0-transcoder-topk`` and ``<model>-L1-transcoder-topk`` (MLPs 0 and 1;
``mi-course train``), or, with ``--smoke`` / ``--train-steps N``, two small ones trained here for a few
steps (the files then say so). Everything is seeded (``seed`` in the settings); the windows are the
model's held-out windows, ``sae_recipe.windows(model, "heldout", n_heldout_windows, 0)`` (evenly spaced, so
their number, stored in the settings, fixes them: a window index in the files refers to that tensor).

1. **Evaluation** (:func:`mi_course.methods.transcoders.evaluate`): L0, explained variance of the MLP
   output, dead latents, loss recovered, for each transcoder; and, at the later MLP, a fresh TopK
   transcoder beside a TopK SAE on the MLP output with the same k (equal L0), same steps and data
   (:func:`~mi_course.methods.transcoders.compare_with_sae`).
2. **Circuits, picked programmatically.** Over the scan windows, every later latent that fires on
   between ``min_freq`` and ``max_freq`` of the tokens is a candidate (``n_candidates`` of them, seeded);
   at its ``top_contexts`` strongest tokens the earlier latents' direct attributions
   (:func:`~mi_course.methods.transcoders.attributions` with the real ``ln2`` scale) are summed, and
   the ``n_early`` largest earlier latents form its circuit. Its *share* is their summed attribution
   over the summed sizes of all parts of the later latent's pre-activation at those tokens (theirs,
   the other earlier latents', and the rest: bias, other layers, error terms), in [-1, 1]; the
   ``n_circuits`` candidates with the largest share are kept, each sharing at most half of its earlier
   latents with one kept before it (dense earlier latents would otherwise make every circuit the same).
3. **Attribution against ablation.** For each circuit, context and earlier latent (the circuit's, and
   as a baseline the same number of other earlier latents active at that token): the attribution,
   and the drop of the later latent's pre-activation when the earlier latent's write is removed
   (:func:`~mi_course.methods.transcoders.ablation_effect`) at that position only, and at every
   position. Pearson correlations, sign agreement, mean |effect| of circuit vs baseline latents.
4. **Input-invariant views.** For each circuit edge (i -> j), the rank of ``connections[i, j]`` among
   all earlier latents (does the weight alone find the edge?); for each circuit's earlier latents, the
   share of their 20 strongest activations whose current token is among the latent's 20 top
   de-embedding tokens, beside 50 random alive earlier latents.

Writes ``measured_week14_transcoders.json`` (1) and ``measured_week14_circuit.json`` (2-4) beside the
model's card (``zoo.card(model).write_measured``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, replace

import torch

MODEL = "text-lm-v2"
LAYERS = (0, 1)


def transcoder_name(model_name: str, layer: int) -> str:
    return f"{model_name}-L{layer}-transcoder-topk"


@dataclass
class Settings:
    n_eval_windows: int = 32
    n_scan_windows: int = 48
    n_candidates: int = 300
    top_contexts: int = 8
    n_early: int = 5
    n_circuits: int = 5
    min_freq: float = 1e-3
    max_freq: float = 0.05
    compare_steps: int = 300
    compare_d_sae: int = 1024
    compare_k: int = 32
    compare_train_windows: int = 256
    train_steps: int = 0            # 0: load the zoo's transcoders; N: train two small ones here
    train_d_sae: int = 512
    train_k: int = 16
    seed: int = 0


SMOKE = Settings(n_eval_windows=4, n_scan_windows=6, n_candidates=40, top_contexts=3, n_early=3, n_circuits=2,
                 compare_steps=5, compare_d_sae=64, compare_k=4, compare_train_windows=8, train_steps=30,
                 train_d_sae=128, train_k=8, min_freq=1e-4, max_freq=0.5)


# --------------------------------------------------------------------------------- data, models
def heldout(model_name: str, n: int) -> torch.Tensor:
    from mi_course.training.sae_recipe import windows

    return windows(model_name, "heldout", n, 0)


def train_small(model, layer: int, tokens: torch.Tensor, s: Settings):
    """A small TopK transcoder at MLP ``layer`` trained for ``s.train_steps`` steps (smoke / provisional runs)."""
    from mi_course.methods import sae as S
    from mi_course.methods import transcoders as T

    tc = T.make_transcoder(model, layer, s.train_d_sae, "topk", s.train_k, s.seed)
    buf = S.ActivationBuffer(model, tc.hook_name, tokens, output_hook_name=tc.output_hook_name,
                             buffer_tokens=4096, model_batch=8, seed=s.seed)
    S.set_input_scale(tc, buf, n=1024)
    S.train_sae(tc, buf, steps=s.train_steps, batch_size=256, lr=1e-3, progress=False, seed=s.seed)
    tc.eval()
    return tc


def transcoders(model, model_name: str, s: Settings, train_tokens: torch.Tensor) -> tuple[list, list[str]]:
    from mi_course import zoo

    if s.train_steps:
        return [train_small(model, layer, train_tokens, s) for layer in LAYERS], \
            [f"trained here: {s.train_steps} steps, d_sae {s.train_d_sae}, k {s.train_k}"] * len(LAYERS)
    names = [transcoder_name(model_name, layer) for layer in LAYERS]
    missing = [n for n in names if n not in zoo.sae_names()]
    if missing:
        raise SystemExit(f"no zoo transcoder {', '.join(missing)}: train them (mi-course train ...) or pass "
                         "--train-steps N / --smoke")
    return [zoo.load_sae(n) for n in names], names


def _r(x, nd: int = 4):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def pearson(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    x, y = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    x, y = x - x.mean(), y - y.mean()
    den = float(x.norm() * y.norm())
    return float((x * y).sum()) / den if den > 0 else None


# ----------------------------------------------------------------------------------------- scan
@torch.no_grad()
def scan(model, early, late, tokens: torch.Tensor) -> dict:
    """Latents of both transcoders, the later ``ln2`` scale and the later pre-activations on ``tokens``
    (positions 1:), flattened to ``[n_tokens, ...]`` with each token's (window, position)."""
    from mi_course.zoo import hooks as hk

    layer = int(late.hook_name.split(".")[1])
    names = (early.hook_name, late.hook_name, hk.resid_mid(layer))
    fe, fl, pre, sc = [], [], [], []
    for i in range(0, tokens.shape[0], 8):
        _, cache = model.run_with_cache(tokens[i:i + 8], names_filter=lambda n: n in names)
        fe.append(early.encode(cache[early.hook_name][:, 1:]))
        p = late.pre_activations(cache[late.hook_name][:, 1:].to(late.W_enc.dtype) * late.input_scale)
        pre.append(p)
        fl.append(late.activation(p))
        r = cache[hk.resid_mid(layer)][:, 1:]
        sc.append(((r - r.mean(-1, keepdim=True)).pow(2).mean(-1) + model.cfg.eps).sqrt())
    n, p = tokens.shape[0], tokens.shape[1] - 1
    win = torch.arange(n)[:, None].expand(n, p).reshape(-1)
    pos = (torch.arange(p) + 1)[None].expand(n, p).reshape(-1)
    return {"early": torch.cat(fe).reshape(n * p, -1), "late": torch.cat(fl).reshape(n * p, -1),
            "late_pre": torch.cat(pre).reshape(n * p, -1), "scale": torch.cat(sc).reshape(-1),
            "window": win, "position": pos, "token": tokens[:, 1:].reshape(-1)}


def pick_circuits(sc: dict, conn: torch.Tensor, s: Settings) -> list[dict]:
    """The ``n_circuits`` later latents whose strongest activations are best explained by a few earlier
    latents' direct attributions (see the module docstring, step 2)."""
    freq = (sc["late"] > 0).float().mean(0)
    cand = torch.nonzero((freq >= s.min_freq) & (freq <= s.max_freq)).flatten()
    cand = cand[torch.randperm(len(cand), generator=torch.Generator().manual_seed(s.seed))[: s.n_candidates]]
    rows = []
    for j in cand.tolist():
        idx = sc["late"][:, j].topk(s.top_contexts).indices
        idx = idx[sc["late"][idx, j] > 0]
        if len(idx) == 0:
            continue
        att = sc["early"][idx] * conn[:, j] / sc["scale"][idx, None]          # [ctx, d_e]
        top = att.sum(0).topk(s.n_early).indices
        a_top = att[:, top].sum(-1)                                          # [ctx]
        a_rest = att.sum(-1) - a_top
        other = sc["late_pre"][idx, j] - att.sum(-1)                        # bias, other layers, error terms
        total = float((a_top.abs() + a_rest.abs() + other.abs()).sum())
        if total <= 0:
            continue
        rows.append({"late_latent": j, "early_latents": top.tolist(), "share": float(a_top.sum()) / total,
                     "frequency": float(freq[j]), "contexts": idx.tolist()})
    rows.sort(key=lambda r: -r["share"])
    kept: list[dict] = []
    for r in rows:     # distinct circuits: at most half of the earlier latents shared with one already kept
        if all(len(set(r["early_latents"]) & set(k["early_latents"])) <= s.n_early // 2 for k in kept):
            kept.append(r)
        if len(kept) == s.n_circuits:
            break
    return kept


@torch.no_grad()
def agreement(model, early, late, tokens: torch.Tensor, sc: dict, conn: torch.Tensor, circuits: list[dict],
              s: Settings, progress: bool = True) -> dict:
    """Attribution against ablation (at the position only, and everywhere) for circuit and baseline pairs."""
    from tqdm.auto import tqdm

    from mi_course.methods import transcoders as T

    g = torch.Generator().manual_seed(s.seed + 1)
    rows = []
    jobs = []
    for c in circuits:
        for t in c["contexts"]:
            active = torch.nonzero(sc["early"][t] > 0).flatten()
            others = active[~torch.isin(active, torch.tensor(c["early_latents"]))]
            others = others[torch.randperm(len(others), generator=g)[: s.n_early]].tolist()
            jobs += [(c["late_latent"], t, i, "circuit") for i in c["early_latents"]]
            jobs += [(c["late_latent"], t, i, "baseline") for i in others]
    for j, t, i, kind in tqdm(jobs, desc="ablations", disable=not progress):
        w, p = int(sc["window"][t]), int(sc["position"][t])
        att = float(sc["early"][t, i] * conn[i, j] / sc["scale"][t])
        one = T.ablation_effect(model, early, late, tokens[w:w + 1], i, j, positions=[p])[0, p]
        every = T.ablation_effect(model, early, late, tokens[w:w + 1], i, j)[0, p]
        rows.append({"late": j, "early": i, "window": w, "position": p, "kind": kind, "attribution": att,
                     "ablation_here": float(one), "ablation_everywhere": float(every),
                     "active": bool(sc["early"][t, i] > 0)})

    def summary(rs):
        a = [r["attribution"] for r in rs]
        out = {"n_pairs": len(rs),
               "pearson_attribution_vs_ablation_here": _r(pearson(a, [r["ablation_here"] for r in rs])),
               "pearson_attribution_vs_ablation_everywhere": _r(pearson(a, [r["ablation_everywhere"] for r in rs])),
               "mean_abs_attribution": _r(sum(abs(x) for x in a) / max(len(a), 1)),
               "mean_abs_ablation_here": _r(sum(abs(r["ablation_here"]) for r in rs) / max(len(rs), 1)),
               "mean_abs_ablation_everywhere": _r(sum(abs(r["ablation_everywhere"]) for r in rs) / max(len(rs), 1))}
        nz = [r for r in rs if abs(r["attribution"]) > 1e-6]
        out["sign_agreement_here"] = _r(sum((r["attribution"] > 0) == (r["ablation_here"] > 0) for r in nz)
                                        / len(nz)) if nz else None
        return out

    circ = [r for r in rows if r["kind"] == "circuit"]
    base = [r for r in rows if r["kind"] == "baseline"]
    return {"circuit": summary(circ), "baseline": summary(base), "all": summary(rows),
            "pairs": [{k: (_r(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}


def connection_ranks(conn: torch.Tensor, circuits: list[dict]) -> dict:
    """Rank (0 = largest) of each circuit edge's input-invariant weight among all earlier latents."""
    ranks = []
    for c in circuits:
        order = conn[:, c["late_latent"]].argsort(descending=True)
        pos = torch.empty_like(order)
        pos[order] = torch.arange(len(order))
        ranks += [int(pos[i]) for i in c["early_latents"]]
    n = conn.shape[0]
    return {"ranks": ranks, "d_sae_early": n,
            "median_rank": _r(float(torch.tensor(ranks, dtype=torch.float).median())) if ranks else None,
            "share_in_top_1pct": _r(sum(r < max(1, n // 100) for r in ranks) / len(ranks)) if ranks else None,
            "share_in_top_10pct": _r(sum(r < max(1, n // 10) for r in ranks) / len(ranks)) if ranks else None}


def de_embedding_hits(model, early, sc: dict, latents: list[int], top: int = 20) -> list[float]:
    """For each earlier latent: the share of its ``top`` strongest activations whose current token is among
    its ``top`` de-embedding tokens."""
    from mi_course.methods import transcoders as T

    layer = int(early.hook_name.split(".")[1])
    de = T.de_embedding(model, early, layer=layer)                       # [vocab, d_e]
    out = []
    for i in latents:
        acts = sc["early"][:, i]
        n = int((acts > 0).sum())
        if n == 0:
            out.append(float("nan"))
            continue
        idx = acts.topk(min(top, n)).indices
        toks = set(de[:, i].topk(top).indices.tolist())
        out.append(sum(int(t) in toks for t in sc["token"][idx]) / len(idx))
    return out


# ------------------------------------------------------------------------------------------ main
def main(model_name: str = MODEL, s: Settings | None = None, write: bool = False, progress: bool = True) -> dict:
    from mi_course import zoo
    from mi_course.methods import transcoders as T
    from mi_course.zoo.tokenizer_files import tokenizer_for

    s = s or Settings()
    torch.manual_seed(s.seed)
    t0 = time.time()
    model = zoo.load(model_name)
    n_win = max(s.n_eval_windows, s.n_scan_windows)
    n_held = n_win + s.compare_train_windows      # held-out windows are evenly spaced: their count fixes them
    held = heldout(model_name, n_held)
    eval_w, scan_w = held[: s.n_eval_windows], held[: s.n_scan_windows]
    train_w = held[n_win:]                     # disjoint from the evaluation and scan windows
    tcs, names = transcoders(model, model_name, s, train_w)
    early, late = tcs
    tok = tokenizer_for(zoo.card(model_name))

    # 1. evaluation, and transcoder vs SAE at equal L0
    evals = {}
    for layer, tc, name in zip(LAYERS, tcs, names):
        e = T.evaluate(model, tc, eval_w)
        evals[f"L{layer}"] = {"transcoder": name, **{k: _r(v) for k, v in e.items()}}
    cmp = T.compare_with_sae(model, LAYERS[1], train_w, eval_w, d_sae=s.compare_d_sae, k=s.compare_k,
                             steps=s.compare_steps, batch_size=256, seed=s.seed, progress=progress)
    vs_sae = {"layer": LAYERS[1], "d_sae": s.compare_d_sae, "k": s.compare_k, "steps": s.compare_steps,
              **{kind: {k: _r(v) for k, v in cmp[kind].items() if k in
                        ("l0", "explained_variance", "dead", "clean", "spliced", "zero_ablated", "ce_loss_recovered",
                         "kl_spliced")} for kind in ("transcoder", "sae")}}
    t_eval = time.time() - t0

    # 2-4. circuits, attribution vs ablation, input-invariant views
    ln_w = model.blocks[LAYERS[1]].ln2.weight.detach()
    conn = T.connections(early, late, ln_weight=ln_w)
    sc = scan(model, early, late, scan_w)
    circuits = pick_circuits(sc, conn, s)
    agree = agreement(model, early, late, scan_w, sc, conn, circuits, s, progress)
    ranks = connection_ranks(conn, circuits)
    circ_early = sorted({i for c in circuits for i in c["early_latents"]})
    alive = torch.nonzero((sc["early"] > 0).any(0)).flatten()
    rand = alive[torch.randperm(len(alive), generator=torch.Generator().manual_seed(s.seed + 2))[:50]].tolist()
    hits_c, hits_r = de_embedding_hits(model, early, sc, circ_early), de_embedding_hits(model, early, sc, rand)
    de = T.de_embedding(model, early, layer=LAYERS[0])
    logit = T.logit_effect(model, late)
    for c in circuits:
        c["share"] = _r(c["share"])
        c["frequency"] = _r(c["frequency"], 6)
        c["contexts"] = [{"window": int(sc["window"][t]), "position": int(sc["position"][t]),
                          "token": tok.decode([int(sc["token"][t])]),
                          "activation": _r(sc["late"][t, c["late_latent"]])} for t in c["contexts"]]
        c["early_de_embedding_top_tokens"] = {str(i): [tok.decode([t]) for t in de[:, i].topk(8).indices.tolist()]
                                              for i in c["early_latents"]}
        c["late_logit_effect_top_tokens"] = [tok.decode([t]) for t in logit[c["late_latent"]].topk(8).indices.tolist()]

    def _mean(v):
        v = [x for x in v if x == x]
        return _r(sum(v) / len(v)) if v else None

    seconds = time.time() - t0
    settings = {**asdict(s), "model": model_name, "layers": list(LAYERS), "transcoders": names,
                "n_heldout_windows": n_held,
                "windows": f"held-out windows of {model.cfg.n_ctx} tokens: the first {s.n_eval_windows} evaluate, the "
                           f"first {s.n_scan_windows} are scanned, the next {s.compare_train_windows} train the "
                           "transcoder/SAE comparison", "cpu_seconds": round(seconds), "eval_seconds": round(t_eval)}
    out_eval = {"evaluation": evals, "vs_sae_equal_l0": vs_sae, "settings": settings}
    out_circ = {"circuits": circuits, "agreement": {k: v for k, v in agree.items() if k != "pairs"},
                "pairs": agree["pairs"], "connection_ranks": ranks,
                "de_embedding": {"circuit_early_latents": circ_early, "hit_rate_circuit": _mean(hits_c),
                                 "hit_rate_random_alive": _mean(hits_r), "n_random": len(rand),
                                 "chance": _r(20 / model.cfg.d_vocab, 6)},
                "settings": settings}
    print({k: v for k, v in evals.items()})
    print("vs SAE:", vs_sae)
    print("circuits:", [(c["late_latent"], c["early_latents"], c["share"]) for c in circuits])
    print("agreement:", out_circ["agreement"])
    print("connection ranks:", {k: v for k, v in ranks.items() if k != "ranks"})
    print("de-embedding:", out_circ["de_embedding"])
    print(f"{seconds:.0f} s")
    if write:
        card = zoo.card(model_name)
        for topic, d in (("week14_transcoders", out_eval), ("week14_circuit", out_circ)):
            print("wrote", card.write_measured(topic, d))
    return {"transcoders": out_eval, "circuit": out_circ}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny settings; transcoders trained here")
    ap.add_argument("--train-steps", type=int, default=None, help="train two small transcoders here (provisional runs)")
    a = ap.parse_args()
    settings = SMOKE if a.smoke else Settings()
    if a.train_steps is not None:
        settings = replace(settings, train_steps=a.train_steps)
    main(a.model, settings, write=a.write)
    sys.exit(0)

"""Feature splitting across dictionary sizes (Bricken et al. 2023) on a zoo model's residual stream.

    nice -n 10 python benchmarks/sae_feature_splitting.py                 # print (text-lm-v2)
    nice -n 10 python benchmarks/sae_feature_splitting.py --write         # also write measured_week12_splitting.json
    nice -n 10 python benchmarks/sae_feature_splitting.py --smoke         # tiny settings, a minute: does it run?
    options: --model NAME  --sizes 256,512,1024,2048  --k 32  --steps 400  --threshold 0.7

Trains TopK SAEs of several sizes (same k, same training activations, an initialisation seed per size) on the activation the
zoo's demo SAE reads (``training.sae_recipe.HOOK``, the residual stream after block 1), with
``methods.sae.train_sae`` (AuxK on dead latents, as ``sae_recipe``). Training activations come from
``sae_recipe.windows(model, "train", ...)`` (the model's corpus, random windows) through
``methods.sae.ActivationBuffer``, collected ONCE, so every size sees the same tokens in the same order.
On held-out windows (``sae_recipe.windows(model, "heldout", ...)``) it measures, per size, L0, explained
variance and dead latents, and per consecutive pair of sizes (and smallest vs largest):

- ``methods.feature_splitting.splitting_report``: share of the larger SAE's latents with a close parent
  (decoder cosine >= threshold), mean max cosine, number of splits, beside random decoders of the same
  shapes;
- activation sharing of every split family on the held-out tokens (P(parent on | child on), coverage,
  sibling overlap), beside the same children under a shuffled parent (the chance level of nesting);
- examples: the splits with most children (chosen here, by that rule, never by hand), with each latent's
  most frequent tokens at its strongest held-out activations.

Writes ``zoo/models/<model>/measured_week12_splitting.json`` (``card.write_measured``); week 12 reads it
(``card.measured("week12_splitting")``), never a hard-coded number or latent. Seeded (seed 0). Default
settings: 4 sizes x 400 steps of 1,024 tokens (0.41M training activations, about 0.4 GB, collected once);
at d_model 256 one step takes about 0.3-0.4 s per size on one core beside a training run, so about
10 minutes of training plus the activation pass. ``tests/test_sae_feature_splitting.py`` runs it on a
tiny model and checks a written file's consistency.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

SIZES = (256, 512, 1024, 2048)
K = 32
STEPS = 400
BATCH = 1024
THRESHOLD = 0.7
N_HELDOUT = 64          # held-out windows
N_EXAMPLES = 4          # example splits stored per pair of sizes
N_TOP = 20              # strongest activations read for a latent's tokens
SEED = 0
TOPIC = "week12_splitting"


def _token_text(tokenizer, ids: list[int]) -> list[str]:
    if tokenizer is None:
        return [str(i) for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def top_tokens(latents: torch.Tensor, tokens: torch.Tensor, latent: int, tokenizer=None, n_top: int = N_TOP,
               n_show: int = 3) -> list[list]:
    """The most frequent tokens at ``latent``'s ``n_top`` strongest activations: ``[[token, count], ...]``.

    ``latents`` ``[n, d_sae]`` and ``tokens`` ``[n]`` on the same held-out positions."""
    acts = latents[:, latent]
    on = int((acts > 0).sum())
    if on == 0:
        return []
    idx = acts.topk(min(n_top, on)).indices
    ids, counts = tokens[idx].unique(return_counts=True)
    order = counts.argsort(descending=True, stable=True)[:n_show]
    return [[t, int(c)] for t, c in zip(_token_text(tokenizer, ids[order].tolist()), counts[order].tolist())]


@torch.no_grad()
def _sharing_summary(tree, small_lat: torch.Tensor, large_lat: torch.Tensor, seed: int) -> dict:
    """Mean activation sharing over the split families, beside the same children under a shuffled parent."""
    from mi_course.methods import feature_splitting as FS

    splits = tree.splits()
    if not splits:
        return {"n_families": 0}
    fam = FS.family_sharing(tree, small_lat, large_lat, splits)
    g = torch.Generator().manual_seed(seed)
    alive = (small_lat > 0).any(0).nonzero()[:, 0]
    within, shuffled = [], []
    for p, s in fam.items():
        within += s["within_parent"].tolist()
        other = alive[alive != p]
        q = int(other[torch.randint(0, len(other), (1,), generator=g)]) if len(other) else p
        shuffled += FS.activation_sharing(small_lat[:, q], large_lat[:, s["children"]])["within_parent"].tolist()
    return {"n_families": len(fam),
            "within_parent": round(statistics.mean(within), 4),
            "within_shuffled_parent": round(statistics.mean(shuffled), 4),
            "coverage": round(statistics.mean(s["coverage"] for s in fam.values()), 4),
            "sibling_overlap": round(statistics.mean(s["sibling_overlap"] for s in fam.values()), 4)}


@torch.no_grad()
def _examples(tree, small_lat, large_lat, tokens, tokenizer, n: int) -> list[dict]:
    from mi_course.methods import feature_splitting as FS

    out = []
    for p in tree.splits()[:n]:
        kids = tree.children(p)
        s = FS.activation_sharing(small_lat[:, p], large_lat[:, kids])
        out.append({
            "parent": p, "parent_tokens": top_tokens(small_lat, tokens, p, tokenizer),
            "parent_frequency": round(s["parent_frequency"], 5),
            "coverage": round(s["coverage"], 4), "sibling_overlap": round(s["sibling_overlap"], 4),
            "children": [{"latent": c, "cos": round(float(tree.cos[c]), 4),
                          "within_parent": round(float(s["within_parent"][i]), 4),
                          "share_of_parent": round(float(s["share_of_parent"][i]), 4),
                          "tokens": top_tokens(large_lat, tokens, c, tokenizer)} for i, c in enumerate(kids)],
        })
    return out


def measure(model, hook: str, train_tokens: torch.Tensor, heldout_tokens: torch.Tensor, sizes=SIZES, k: int = K,
            steps: int = STEPS, batch: int = BATCH, threshold: float = THRESHOLD, seed: int = SEED,
            n_examples: int = N_EXAMPLES, progress: bool = True) -> dict:
    """Train one TopK SAE per size on ``model``'s ``hook`` activations of ``train_tokens`` ``[n, pos]``;
    measure splitting between sizes on ``heldout_tokens`` ``[m, pos]``. Returns the measured dict."""
    from mi_course.methods import feature_splitting as FS
    from mi_course.methods import sae as S
    from mi_course.methods import sae_metrics as M

    sizes = sorted(int(s) for s in sizes)
    t0 = time.time()
    n_train = steps * batch
    buf = S.ActivationBuffer(model, hook, train_tokens, buffer_tokens=n_train, model_batch=16, seed=seed)
    acts = buf.next_batch(n_train)[0]                   # collected once: every size sees the same tokens
    saes = []
    for m in sizes:
        # a seed per size: with one seed the larger SAE's first rows would START equal to the smaller's
        sae = S.SparseAutoencoder(acts.shape[1], m, "topk", k=min(k, m), seed=seed * 100_003 + m)
        sae.hook_name = hook
        S.train_sae(sae, S.TensorSource(acts, seed=seed), steps=steps, batch_size=batch, lr=1e-3,
                    dead_after_tokens=min(200_000, n_train // 2), progress=progress, seed=seed)
        saes.append(sae)
    train_seconds = time.time() - t0
    del acts
    _, cache = model.run_with_cache(heldout_tokens, names_filter=lambda n: n == hook)
    x = cache[hook][:, 1:].reshape(-1, cache[hook].shape[-1]).float()
    toks = heldout_tokens[:, 1:].reshape(-1)
    latents = [sae.encode(x) for sae in saes]
    tokenizer = getattr(model, "tokenizer", None)
    per_size = {}
    for m, sae, f in zip(sizes, saes, latents):
        rec = M.reconstruction_metrics(sae, x)
        per_size[str(m)] = {key: round(float(rec[key]), 4) for key in ("l0", "explained_variance", "mse", "dead")}
    pairs = [(i, i + 1) for i in range(len(sizes) - 1)] + ([(0, len(sizes) - 1)] if len(sizes) > 2 else [])
    rows = []
    for i, j in pairs:
        rep = FS.splitting_report([saes[i], saes[j]], threshold, seed=seed)
        tree = FS.family_tree(saes[i], saes[j], threshold)
        rows.append({"sizes": [sizes[i], sizes[j]],
                     "trained": {k_: (round(v, 4) if isinstance(v, float) else v) for k_, v in rep["trained"][0].items()},
                     "random": {k_: (round(v, 4) if isinstance(v, float) else v) for k_, v in rep["random"][0].items()},
                     "close_share_at": {str(t): round(float((tree.cos >= t).float().mean()), 4) for t in (0.5, 0.7, 0.9)},
                     "sharing": _sharing_summary(tree, latents[i], latents[j], seed),
                     "examples": _examples(tree, latents[i], latents[j], toks, tokenizer, n_examples)})
    return {
        "settings": {"hook": hook, "sizes": sizes, "architecture": "topk", "k": k, "steps": steps, "batch": batch,
                     "lr": 1e-3, "train_tokens": n_train, "heldout_tokens": int(x.shape[0]), "threshold": threshold,
                     "seed": seed, "train_seconds": round(train_seconds),
                     "random_baseline": "random unit decoders of the same shapes (feature_splitting.random_decoders_like)",
                     "shuffled_parent": "each split family's children under a random other live parent latent"},
        "saes": per_size,
        "pairs": rows,
    }


def main(write: bool = False, model_name: str = "text-lm-v2", sizes=SIZES, k: int = K, steps: int = STEPS,
         threshold: float = THRESHOLD, n_heldout: int = N_HELDOUT, batch: int = BATCH) -> dict:
    from mi_course import zoo
    from mi_course.training import sae_recipe as R

    torch.set_grad_enabled(True)
    torch.set_num_threads(1)
    model = zoo.load(model_name)
    n_ctx = zoo.card(model_name).config["n_ctx"]
    train_w = R.windows(model_name, "train", steps * batch // (n_ctx - 1) + 16, SEED)
    held = R.windows(model_name, "heldout", n_heldout, SEED)
    t0 = time.time()
    out = measure(model, R.HOOK, train_w, held, sizes, k, steps, batch, threshold, SEED)
    out["settings"].update({"model": model_name, "model_sha256": zoo.card(model_name).sha256,
                            "seconds": round(time.time() - t0),
                            "command": "nice -n 10 python benchmarks/sae_feature_splitting.py --write"})
    print(json.dumps({"settings": out["settings"], "saes": out["saes"],
                      "pairs": [{k_: v for k_, v in r.items() if k_ != "examples"} for r in out["pairs"]]}, indent=1))
    for r in out["pairs"]:
        for e in r["examples"][:2]:
            print(r["sizes"], "parent", e["parent"], e["parent_tokens"], "->",
                  [(c["latent"], c["cos"], c["tokens"][:2]) for c in e["children"]])
    if write:
        print("written to", zoo.card(model_name).write_measured(TOPIC, out))
    return out


def _arg(name: str, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


if __name__ == "__main__":
    sizes = tuple(int(s) for s in _arg("--sizes", ",".join(map(str, SIZES))).split(","))
    if "--smoke" in sys.argv:
        if "--write" in sys.argv:
            sys.exit("--smoke does not write (its figures are not the week's)")
        main(False, _arg("--model", "text-lm-v2"), sizes=(32, 64, 128), k=8, steps=20, n_heldout=4, batch=256)
    else:
        main("--write" in sys.argv, _arg("--model", "text-lm-v2"), sizes, _arg("--k", K), _arg("--steps", STEPS),
             _arg("--threshold", THRESHOLD))

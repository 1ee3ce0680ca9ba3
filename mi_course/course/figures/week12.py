"""Week 12 figures and the numbers the deck quotes, computed on the fly (seeded, a few seconds each):
the toy models of superposition (the notebook's settings), an SAE on planted features beside its two
baselines, and feature splitting on a planted hierarchy. ``tests/test_week12_figures.py`` holds the
numbers the deck states. Figures on ``text-lm-v2``'s SAEs are not drawn here: the deck quotes the
SAE's card and ``measured_autointerp.json`` (held by the same test) and cites splitting across sizes
(``measured_week12_splitting.json``, written by ``benchmarks/sae_feature_splitting.py``)."""

from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import torch

from mi_course.data.planted_features import PlantedFeatures, PlantedHierarchy
from mi_course.methods import feature_splitting as FS
from mi_course.methods import sae as S
from mi_course.methods import sae_metrics as M
from mi_course.methods import toy_models as T

SPARSITIES = (0.0, 0.7, 0.9, 0.95)
SPLIT_SIZES = (8, 24)
SPLIT_THRESHOLD = 0.7


# ------------------------------------------------------------------------------------ toy models
@lru_cache(maxsize=1)
def toy() -> dict:
    """The notebook's section 1: 5 features into 2 dimensions, one instance per sparsity, 1,500 steps."""
    torch.manual_seed(0)
    model = T.intro_models(sparsities=SPARSITIES)
    T.train_toy_model(model, steps=1500, batch=512, lr=3e-3, progress=False)
    W = model.W.detach()
    return {"W": W, "n_represented": T.n_represented(W).tolist(), "dims_per_feature": T.dims_per_feature(W).tolist(),
            "dimensionality": T.feature_dimensionality(W)}


def toy_geometry():
    """The columns W_i of each instance, in its 2-D hidden space."""
    t = toy()
    fig, axes = plt.subplots(1, len(SPARSITIES), figsize=(3 * len(SPARSITIES), 3))
    for ax, s, w, n in zip(axes, SPARSITIES, t["W"], t["n_represented"]):
        for i, (x, y) in enumerate(w.tolist()):
            ax.plot([0, x], [0, y], color=plt.cm.viridis(i / 5))
            ax.text(x, y, str(i), fontsize=8)
        ax.set_xlim(-1.3, 1.3); ax.set_ylim(-1.3, 1.3); ax.set_aspect("equal")
        ax.set_title(f"S = {s}: {n} of 5 features", fontsize=9)
    fig.tight_layout()
    return fig


def dimensionality():
    """Feature dimensionality D_i of each feature against sparsity, with the paper's special values."""
    t = toy()
    fig, ax = plt.subplots(figsize=(5.5, 3))
    for j, s in enumerate(SPARSITIES):
        d = t["dimensionality"][j]
        ax.scatter([j] * len(d), d.tolist(), c=[plt.cm.viridis(i / 5) for i in range(len(d))], s=30)
    for v, label in ((1, "1"), (0.5, "1/2"), (0.4, "2/5")):
        ax.axhline(v, color="grey", lw=0.5, ls=":")
        ax.text(len(SPARSITIES) - 0.75, v + 0.02, label, fontsize=8)
    ax.set_xticks(range(len(SPARSITIES))); ax.set_xticklabels([f"S = {s}" for s in SPARSITIES])
    ax.set_ylabel("dimensionality D_i"); ax.set_ylim(-0.05, 1.1)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ planted features
@lru_cache(maxsize=1)
def planted() -> dict:
    """A ReLU + L1 SAE (64 latents) on 32 planted features in 16 dims, beside random directions and a
    random-decoder SAE (encoder trained alone, same steps): per-feature best cosine, MMCS, EV, L0."""
    data = PlantedFeatures(d=16, n_features=32, expected_active=2, seed=0)
    x, coeffs = data.sample(4000, torch.Generator().manual_seed(1))
    out = {}
    ref = S.SparseAutoencoder(16, 64, "relu", seed=0)
    S.train_sae(ref, S.GeneratorSource(data.sample, seed=2), steps=400, batch_size=256, lr=3e-3, l1_coeff=0.3,
                progress=False)
    base = S.random_decoder_sae(ref, seed=3)
    S.train_sae(base, S.GeneratorSource(data.sample, seed=1), steps=400, batch_size=256, lr=3e-3, l1_coeff=0.3,
                freeze_decoder=True, progress=False)
    with torch.no_grad():
        for name, sae in (("trained", ref), ("random_decoder", base)):
            rep = M.ground_truth_report(sae, data.directions, x, coeffs)
            out[name] = {k: rep[k] for k in ("mmcs", "matched_cosine", "explained_variance", "l0")}
            out[name]["best_cos"] = M.cosine_matrix(sae.decoder_directions, data.directions).max(-1).values
        rand = M.random_directions(64, 16, seed=100)  # not 0: PlantedFeatures(seed=0) draws the same stream
        out["random_directions"] = {"mmcs": M.mmcs(rand, data.directions),
                                    "matched_cosine": M.matched_cosine(rand, data.directions)[0],
                                    "best_cos": M.cosine_matrix(rand, data.directions).max(-1).values}
    return out


def planted_recovery():
    """Each planted feature's best cosine with a decoder direction: trained SAE, random-decoder SAE, random."""
    p = planted()
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, label, mark in (("trained", "trained SAE", "o"), ("random_decoder", "random decoder, encoder trained", "s"),
                              ("random_directions", "64 random directions", "x")):
        v = p[name]["best_cos"].sort(descending=True).values
        ax.plot(range(len(v)), v.tolist(), marker=mark, ls="", label=f"{label} (MMCS {p[name]['mmcs']:.2f})")
    ax.set_xlabel("planted feature (sorted)"); ax.set_ylabel("best cosine with a decoder row")
    ax.set_ylim(0, 1.05); ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- feature splitting
@lru_cache(maxsize=1)
def splitting() -> dict:
    """TopK SAEs of 8 and 24 latents (k = 2) on a planted hierarchy (8 parents x 3 children, each child
    at cosine 0.86 from its parent): the family tree, its summary beside random decoders, and the
    activation sharing of every family on held-out samples (as ``tests/test_feature_splitting.py``)."""
    h = PlantedHierarchy(d=32, n_parents=8, n_children=3, spread=0.6, p_parent=0.15, seed=0)
    src = S.GeneratorSource(lambda n, g: h.sample(n, g)[0], seed=1)
    saes = []
    for m in SPLIT_SIZES:
        sae = S.SparseAutoencoder(32, m, "topk", k=2, seed=0)
        S.train_sae(sae, src, steps=600, batch_size=256, lr=3e-3, progress=False, dead_after_tokens=20_000)
        saes.append(sae)
    x, _, _ = h.sample(4000, torch.Generator().manual_seed(9))
    tree = FS.family_tree(saes[0], saes[1], SPLIT_THRESHOLD)
    rep = FS.splitting_report(saes, SPLIT_THRESHOLD)
    with torch.no_grad():
        sharing = FS.family_sharing(tree, saes[0].encode(x), saes[1].encode(x))
    small_to_parent = FS.nearest_parent(h.parents, saes[0])[0]
    large_to_child = FS.nearest_parent(h.child_directions, saes[1])[0]
    within = torch.cat([s["within_parent"] for s in sharing.values()])
    return {"hierarchy": h, "saes": saes, "tree": tree, "trained": rep["trained"][0], "random": rep["random"][0],
            "same_family": float((small_to_parent[tree.parent] == h.family[large_to_child]).float().mean()),
            "within_parent_median": float(within.median()),
            "sibling_overlap_max": max(s["sibling_overlap"] for s in sharing.values()),
            "coverage_mean": sum(s["coverage"] for s in sharing.values()) / len(sharing)}


def splitting_planted():
    """Decoder cosines between the 24-latent and the 8-latent SAE, children grouped under their parent."""
    s = splitting()
    tree = s["tree"]
    cos = FS.decoder_cosines(*s["saes"])                    # [24, 8]
    order = sorted(range(len(tree.parent)), key=lambda c: (int(tree.parent[c]), -float(tree.cos[c])))
    fig, ax = plt.subplots(figsize=(7, 2.8))
    im = ax.imshow(cos[order].T.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xlabel(f"latent of the {SPLIT_SIZES[1]}-latent SAE (grouped by nearest parent)")
    ax.set_ylabel(f"{SPLIT_SIZES[0]}-latent SAE")
    ax.set_xticks([]); fig.colorbar(im, ax=ax, label="decoder cosine")
    fig.tight_layout()
    return fig

"""The IOI circuit's head classes (Wang et al. 2023), measured by where heads attend.

The paper's classes and the attention signature we use to find candidates (candidates only:
the paper confirms each class with path patching, and so should we):

===================  ===================================================================
class                signature
===================  ===================================================================
name mover           at END, attends to IO (and copies it: positive direct logit attribution)
negative name mover  at END, attends to IO, but writes against it (negative DLA)
S-inhibition         at END, attends to S2 (tells the name movers which name *not* to copy)
induction            at S2, attends to the token after S1
duplicate token      at S2, attends to S1 (the earlier copy of the same token)
previous token       at S1+1, attends to S1
===================  ===================================================================
"""

from __future__ import annotations

import torch

from mi_course.errors import InputError
from mi_course.zoo import hooks as hk
from mi_course import validation as check


@torch.no_grad()
def attention_signatures(model, ds) -> dict[str, torch.Tensor]:
    """Mean attention ``[layer, head]`` for each signature in the module docstring.

    Keys: ``end_to_io``, ``end_to_s1``, ``end_to_s2``, ``s2_to_s1``, ``s2_to_s1_plus_1``,
    ``s1_plus_1_to_s1``. ``ds``: an :class:`~mi_course.data.ioi.IOIDataset` encoded for ``model``.
    """
    from mi_course.data.ioi import vocabulary

    check.ioi_model(model, ds, len(vocabulary()))
    _, cache = model.run_with_cache(ds.tokens, names_filter=hk.only("pattern"))
    rows = torch.arange(len(ds))
    p = ds.pos
    pairs = {
        "end_to_io": (p["end"], p["IO"]), "end_to_s1": (p["end"], p["S1"]), "end_to_s2": (p["end"], p["S2"]),
        "s2_to_s1": (p["S2"], p["S1"]), "s2_to_s1_plus_1": (p["S2"], p["S1"] + 1),
        "s1_plus_1_to_s1": (p["S1"] + 1, p["S1"]),
    }
    out = {k: torch.zeros(model.cfg.n_layers, model.cfg.n_heads) for k in pairs}
    for layer in range(model.cfg.n_layers):
        pat = cache["pattern", layer]  # [batch, head, q, k]
        for k, (q, key) in pairs.items():
            out[k][layer] = pat[rows, :, q, key].mean(0)
    return out


def classify_heads(signatures: dict[str, torch.Tensor], dla: torch.Tensor, threshold: float = 0.3,
                   dla_threshold: float = 0.1) -> dict[str, list[str]]:
    """Candidate head classes from :func:`attention_signatures` and DLA by head ``[layer, head]``.

    A head joins a class when its signature's mean attention is >= ``threshold`` (and, for
    (negative) name movers, its DLA is above ``dla_threshold`` times the largest |DLA|, with the
    matching sign). A head can be in several classes.
    """
    if dla.shape != signatures["end_to_io"].shape:
        raise InputError(f"dla must be [layer, head] like the signatures, got {list(dla.shape)}")
    scale = float(dla.abs().max()) or 1.0
    classes = {"name mover": [], "negative name mover": [], "S-inhibition": [], "induction": [],
               "duplicate token": [], "previous token": []}
    L, H = dla.shape
    for layer in range(L):
        for h in range(H):
            name = f"{layer}.{h}"
            s = {k: float(v[layer, h]) for k, v in signatures.items()}
            d = float(dla[layer, h]) / scale
            if s["end_to_io"] >= threshold and d >= dla_threshold:
                classes["name mover"].append(name)
            if s["end_to_io"] >= threshold and d <= -dla_threshold:
                classes["negative name mover"].append(name)
            if s["end_to_s2"] >= threshold:
                classes["S-inhibition"].append(name)
            if s["s2_to_s1_plus_1"] >= threshold:
                classes["induction"].append(name)
            if s["s2_to_s1"] >= threshold:
                classes["duplicate token"].append(name)
            if s["s1_plus_1_to_s1"] >= threshold:
                classes["previous token"].append(name)
    return classes


@torch.no_grad()
def name_representations(model, ds, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(reps [n_names, d_model], names [n_names])``: for each name that is the IO of some prompt
    in ``ds``, the mean over those prompts of the residual stream at the IO position as heads of
    ``layer`` read it (``blocks.{layer}.hook_resid_pre`` through the layer's first LayerNorm)."""
    if not hasattr(ds, "pos") or not hasattr(ds, "tokens"):
        raise InputError("ds must be an IOIDataset (mi_course.data.ioi.make_ioi)")
    if not 0 <= int(layer) < model.cfg.n_layers:
        raise InputError(f"layer must be in 0..{model.cfg.n_layers - 1}, got {layer}")
    name = hk.resid_pre(layer)
    _, cache = model.run_with_cache(ds.tokens, names_filter=lambda n: n == name)
    x = cache[name][torch.arange(len(ds)), ds.pos["IO"]]
    sd = model.state_dict()
    x = x - x.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + getattr(model.cfg, "eps", 1e-5)).sqrt()
    x = x * sd[f"blocks.{layer}.ln1.weight"] + sd[f"blocks.{layer}.ln1.bias"]
    names = torch.unique(ds.io)
    reps = torch.stack([x[ds.io == n].mean(0) for n in names])
    return reps, names


def copying_scores(resid: torch.Tensor, W_OV: torch.Tensor, W_U: torch.Tensor, k: int = 1) -> torch.Tensor:
    """``[n_heads]``: for each head, the share of names whose own logit is among the ``k`` largest
    when the head's OV circuit reads the name (Wang et al.'s copying score).

    resid ``[n_names, d_model]``: one representation per name; W_OV ``[n_heads, d_model, d_model]``;
    W_U ``[d_model, n_names]``: the unembedding columns of the same names, in the same order (pass
    ``-W_U`` for the *negative* copying score). Row i of ``resid @ W_OV[h] @ W_U`` is what head h
    writes about every name when it attends to name i.
    """
    if resid.ndim != 2 or W_OV.ndim != 3 or W_U.ndim != 2 or W_U.shape[1] != resid.shape[0]:
        raise InputError("copying_scores: resid [n, d_model], W_OV [heads, d_model, d_model], W_U [d_model, n]")
    if not 1 <= int(k) <= resid.shape[0]:
        raise InputError(f"k must be in 1..{resid.shape[0]}, got {k}")
    logits = torch.einsum("nd,hde,em->hnm", resid, W_OV, W_U)  # [head, name read, name written]
    top = logits.topk(int(k), dim=-1).indices                  # [head, n, k]
    own = torch.arange(resid.shape[0])[None, :, None]
    return (top == own).any(-1).float().mean(-1)

"""Transcoders: a sparse, interpretable replacement for an MLP (Dunefsky, Chlenski & Nanda 2024).

A transcoder reads the MLP's input (``blocks.L.mlp.hook_in``: the residual stream after ``ln2``)
and is trained to reproduce the MLP's *output* (``blocks.L.hook_mlp_out``) through a sparse layer
of latents: the same module as an SAE (:class:`~mi_course.zoo.sae_models.SparseAutoencoder` with
``kind="transcoder"``, ``hook_name`` the input, ``output_hook_name`` the output it replaces).

What it buys over an SAE on the MLP's output: the latents are computed from the MLP's input, so
a circuit *through* the MLP factors into an input-independent part (weights) and an
input-dependent part (the latent's activation):

- **input-invariant connections** between a transcoder latent ``i`` at an earlier layer and a
  latent ``j`` of a later transcoder: ``W_dec[i] . W_enc[:, j]`` through the residual stream
  (with the later layer's ``ln2``: its weight folded in, its mean removed; its scale is the only
  input-dependent factor), :func:`connections`;
- **input-dependent attributions** on a prompt: ``f_i(x) * connection[i, j] / ln_scale``, the part
  of latent ``j``'s pre-activation that latent ``i`` contributes via the residual stream at the same
  position, :func:`attributions`;
- **de-embeddings**: which tokens push a latent directly (``W_E`` through the encoder),
  :func:`de_embedding`; and the logit effect of a latent (``W_dec . W_U``), :func:`logit_effect`.

Evaluation (:func:`evaluate`): L0, the fraction of variance of the MLP's output explained, dead
latents, and the next-token loss with the transcoder spliced in place of the MLP, as "loss
recovered" against zero-ablating the MLP; :func:`compare_with_sae` puts an SAE on the MLP's output
of equal L0 (TopK, same k) beside it: the paper finds transcoders on par with SAEs.

Shapes: MLP input ``x`` ``[..., d_model]``, latents ``[..., d_sae]``, MLP output ``[..., d_model]``.
"""

from __future__ import annotations

import torch

from mi_course.errors import InputError
from mi_course.zoo import hooks as hk

__all__ = ["INPUT_SITE", "OUTPUT_SITE", "make_transcoder", "transcoder_loss", "splice_hooks", "evaluate",
           "connections", "attributions", "de_embedding", "logit_effect", "compare_with_sae",
           "direct_attributions", "ablation_effect"]

INPUT_SITE, OUTPUT_SITE = "mlp_in", "mlp_out"


def _check_transcoder(tc) -> None:
    if getattr(tc, "kind", None) != "transcoder":
        raise InputError(f"expected a transcoder (kind 'transcoder'), got kind {getattr(tc, 'kind', None)!r}")


def make_transcoder(model, layer: int, d_sae: int, architecture: str = "topk", k: int | None = 32, seed: int = 0):
    """An untrained transcoder for MLP ``layer`` of ``model`` with ``hook_name`` / ``output_hook_name`` set."""
    from mi_course import validation as check
    from mi_course.zoo.sae_models import Transcoder

    check.layer(model, layer)
    if layer >= model.cfg.n_layers:
        raise InputError(f"layer must be in 0..{model.cfg.n_layers - 1} (an MLP), got {layer}")
    d = model.cfg.d_model
    tc = Transcoder(d, d_sae, d, architecture=architecture, k=k if "topk" in architecture else None, seed=seed)
    tc.hook_name, tc.output_hook_name = hk.mlp_in(layer), hk.mlp_out(layer)
    return tc


def transcoder_loss(tc, x: torch.Tensor, y: torch.Tensor, l1_coeff: float = 1.0) -> tuple[torch.Tensor, dict]:
    """The training loss of one batch (scaled units): ``mean_b ||y - tc(x)||^2`` (summed over dims) plus
    the sparsity term of its architecture (:func:`mi_course.methods.sae.sae_loss`, no AuxK).
    ``x`` ``[batch, d_in]`` MLP inputs, ``y`` ``[batch, d_out]`` MLP outputs."""
    from mi_course.methods.sae import SAETrainConfig, sae_loss

    _check_transcoder(tc)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise InputError(f"x and y must be [batch, d] with the same batch, got {list(x.shape)} and {list(y.shape)}")
    loss, parts = sae_loss(tc, x, y, SAETrainConfig(l1_coeff=l1_coeff))
    parts.pop("_latents"), parts.pop("_pre")
    return loss, parts


def splice_hooks(tc, skip_first: bool = True) -> list[tuple]:
    """``fwd_hooks`` that replace the MLP's output by the transcoder's prediction from the MLP's input
    (position 0, ``<|endoftext|>``, left alone with ``skip_first``, as in training)."""
    _check_transcoder(tc)
    if not getattr(tc, "hook_name", None) or not getattr(tc, "output_hook_name", None):
        raise InputError("the transcoder needs hook_name (MLP input) and output_hook_name (MLP output)")
    stash = {}

    def read(act, hook=None):
        stash["x"] = act
        return act

    def replace(act, hook=None):
        s = 1 if skip_first else 0
        new = tc.decode(tc.encode(stash["x"][:, s:])).to(act.dtype)
        return torch.cat([act[:, :s], new], 1)

    return [(tc.hook_name, read), (tc.output_hook_name, replace)]


@torch.no_grad()
def evaluate(model, tc, tokens: torch.Tensor) -> dict:
    """L0, explained variance of the MLP output, dead latents, and loss recovered when spliced in
    (``sae_metrics.spliced_losses``: clean / spliced / zero-ablated MLP) on ``tokens`` ``[n, pos]``."""
    from mi_course.methods import sae_metrics as M

    _check_transcoder(tc)
    names = (tc.hook_name, tc.output_hook_name)
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    x = cache[tc.hook_name][:, 1:].reshape(-1, tc.d_in)
    y = cache[tc.output_hook_name][:, 1:].reshape(-1, tc.d_out)
    rec = M.reconstruction_metrics(tc, x, y)
    spl = M.spliced_losses(model, tc, tokens, tc.hook_name, tc.output_hook_name)
    return {**rec, **{k: spl[k] for k in ("clean", "spliced", "zero_ablated", "ce_loss_recovered", "kl_spliced")}}


# ------------------------------------------------------------------------------------ circuits
def _ln_weight(model, layer: int) -> torch.Tensor:
    return model.blocks[layer].ln2.weight.detach() if hasattr(model.blocks[layer].ln2, "weight") else \
        model.state_dict()[f"blocks.{layer}.ln2.weight"]


def connections(early, late, ln_weight: torch.Tensor | None = None, center: bool = True) -> torch.Tensor:
    """``[d_sae_early, d_sae_late]`` input-invariant weights: how much one unit of each earlier latent
    (its decoder row, written to the residual stream) moves each later latent's pre-activation,
    through the later MLP's ``ln2`` with its weight ``ln_weight`` ``[d]`` folded in and its mean
    removed (``center``), at an ``ln2`` scale of 1 (divide by the real scale, see :func:`attributions`).
    ``early`` is a transcoder (or an SAE writing to the residual stream), ``late`` a transcoder."""
    _check_transcoder(late)
    dec = early.W_dec.detach() / early.output_scale          # [d_e, d]
    if dec.shape[1] != late.d_in:
        raise InputError(f"the earlier decoder writes {dec.shape[1]} dimensions, the later encoder reads {late.d_in}")
    if center:
        dec = dec - dec.mean(-1, keepdim=True)
    if ln_weight is not None:
        if ln_weight.shape != (late.d_in,):
            raise InputError(f"ln_weight must be [{late.d_in}], got {list(ln_weight.shape)}")
        dec = dec * ln_weight
    return dec @ (late.W_enc.detach() * late.input_scale)


def attributions(early_latents: torch.Tensor, conn: torch.Tensor, latent: int,
                 ln_scale: torch.Tensor | None = None) -> torch.Tensor:
    """``[..., d_sae_early]``: each earlier latent's contribution to the later ``latent``'s
    pre-activation on a prompt via the residual stream at the same position,
    ``f_i(x) * conn[i, latent] / ln_scale``. ``early_latents`` ``[..., d_sae_early]`` (e.g. ``[pos, d]``),
    ``conn`` from :func:`connections`, ``ln_scale`` ``[...]`` the later ``ln2``'s scale
    (``blocks.L.ln2.hook_scale``, default 1)."""
    if conn.ndim != 2 or early_latents.shape[-1] != conn.shape[0]:
        raise InputError(f"early_latents [..., {conn.shape[0]}] and conn [d_early, d_late] do not fit: "
                         f"{list(early_latents.shape)} and {list(conn.shape)}")
    if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < conn.shape[1]:
        raise InputError(f"latent must be an int in 0..{conn.shape[1] - 1}, got {latent!r}")
    out = early_latents * conn[:, latent]
    if ln_scale is not None:
        out = out / ln_scale.reshape(*early_latents.shape[:-1], 1)
    return out


def de_embedding(model, tc, layer: int | None = None, center: bool = True) -> torch.Tensor:
    """``[d_vocab, d_sae]``: how much each token's embedding moves each latent's pre-activation
    directly (``W_E`` through ``ln2``'s weight into the encoder; the paper's de-embedding)."""
    _check_transcoder(tc)
    e = model.W_E.detach()
    if center:
        e = e - e.mean(-1, keepdim=True)
    if layer is not None:
        e = e * _ln_weight(model, layer)
    return e @ (tc.W_enc.detach() * tc.input_scale)


def logit_effect(model, tc) -> torch.Tensor:
    """``[d_sae, d_vocab]``: the direct effect of one unit of each latent on the logits (``W_dec W_U``,
    ignoring the final LayerNorm's scale)."""
    dec = tc.W_dec.detach() / tc.output_scale
    return (dec - dec.mean(-1, keepdim=True)) @ model.W_U.detach()


def _mlp_layer(tc, which: str) -> int:
    name = getattr(tc, "hook_name", None) or ""
    if not hk.mlp_in.matches(name):
        raise InputError(f"the {which} transcoder must read an MLP input (blocks.L.mlp.hook_in), got hook_name {name!r}")
    return int(name.split(".")[1])


def _pair(model, early, late) -> tuple[int, int]:
    _check_transcoder(early)
    _check_transcoder(late)
    le, ll = _mlp_layer(early, "early"), _mlp_layer(late, "late")
    if not getattr(early, "output_hook_name", None):
        raise InputError("the early transcoder needs output_hook_name (the MLP output it writes)")
    if ll <= le:
        raise InputError(f"the late transcoder's MLP (layer {ll}) must come after the early one's (layer {le})")
    if ll >= model.cfg.n_layers:
        raise InputError(f"the late transcoder's layer {ll} is not a layer of this {model.cfg.n_layers}-layer model")
    return le, ll


def _tokens(tokens) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype not in (torch.long, torch.int):
        raise InputError(f"tokens must be an integer tensor [batch, pos], got {getattr(tokens, 'shape', type(tokens))}")
    return tokens


def _latent(name: str, i, n: int) -> int:
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
        raise InputError(f"{name} must be an int in 0..{n - 1}, got {i!r}")
    return i


@torch.no_grad()
def direct_attributions(model, early, late, tokens: torch.Tensor, late_latent: int) -> torch.Tensor:
    """``[batch, pos, d_sae_early]``: on the model's own run over ``tokens`` ``[batch, pos]``, each earlier
    latent's contribution to the later latent's pre-activation at the same position, through the
    residual stream and the later ``ln2`` (its real scale, read from ``blocks.L.hook_resid_mid``):
    :func:`attributions` with :func:`connections`. Position 0 is left at 0 (the transcoders skip it)."""
    le, ll = _pair(model, early, late)
    tokens = _tokens(tokens)
    late_latent = _latent("late_latent", late_latent, late.d_sae)
    names = (early.hook_name, hk.resid_mid(ll))
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    f = early.encode(cache[early.hook_name])                                    # [b, p, d_e]
    r = cache[hk.resid_mid(ll)]
    scale = ((r - r.mean(-1, keepdim=True)).pow(2).mean(-1) + model.cfg.eps).sqrt()   # [b, p]
    conn = connections(early, late, ln_weight=_ln_weight(model, ll))
    out = attributions(f, conn, late_latent, ln_scale=scale)
    out[:, 0] = 0
    return out


@torch.no_grad()
def ablation_effect(model, early, late, tokens: torch.Tensor, early_latent: int, late_latent: int,
                    positions: list[int] | None = None) -> torch.Tensor:
    """``[batch, pos]``: clean minus ablated pre-activation of the later transcoder's ``late_latent`` when
    the earlier transcoder's ``early_latent`` is removed from the earlier MLP's output, i.e.
    ``f_i(x) * W_dec[i]`` (model units) subtracted at ``positions`` (default: all but position 0);
    everything else, the MLP's own error term included, stays. Positive: the earlier latent pushed
    the later one up."""
    _pair(model, early, late)
    tokens = _tokens(tokens)
    early_latent = _latent("early_latent", early_latent, early.d_sae)
    late_latent = _latent("late_latent", late_latent, late.d_sae)
    n_pos = tokens.shape[1]
    mask = torch.zeros(n_pos, dtype=torch.bool)
    if positions is None:
        mask[1:] = True
    else:
        if any(isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < n_pos for p in positions):
            raise InputError(f"positions must be ints in 0..{n_pos - 1}, got {positions!r}")
        mask[list(positions)] = True
    stash: dict = {}

    def read(act, hook=None):
        stash["f"] = early.encode(act)[..., early_latent]                     # [b, p]
        return act

    def remove(act, hook=None):
        write = stash["f"][..., None] * early.W_dec[early_latent] / early.output_scale
        return act - (write * mask[None, :, None].to(act.dtype)).to(act.dtype)

    def record(key):
        def hook(act, hook=None):
            stash[key] = late.pre_activations(act.to(late.W_enc.dtype) * late.input_scale)[..., late_latent]
            return act
        return hook

    model.run_with_hooks(tokens, fwd_hooks=[(late.hook_name, record("clean"))])
    model.run_with_hooks(tokens, fwd_hooks=[(early.hook_name, read), (early.output_hook_name, remove),
                                            (late.hook_name, record("ablated"))])
    return stash["clean"] - stash["ablated"]


# ---------------------------------------------------------------------------------- comparison
def compare_with_sae(model, layer: int, train_tokens: torch.Tensor, eval_tokens: torch.Tensor, d_sae: int = 512,
                     k: int = 16, steps: int = 200, batch_size: int = 512, seed: int = 0,
                     progress: bool = False) -> dict:
    """Train a TopK transcoder (MLP input -> output) and a TopK SAE on the MLP output, same ``d_sae``,
    ``k`` (so equal L0), steps and data, and evaluate both spliced in place of the MLP output.
    Returns ``{"transcoder": evaluate(...), "sae": ..., "transcoder_model", "sae_model"}``."""
    from mi_course.methods import sae as S
    from mi_course.methods import sae_metrics as M

    tc = make_transcoder(model, layer, d_sae, "topk", k, seed)
    buf = S.ActivationBuffer(model, tc.hook_name, train_tokens, output_hook_name=tc.output_hook_name,
                             buffer_tokens=8192, model_batch=16, seed=seed)
    S.train_sae(tc, buf, steps=steps, batch_size=batch_size, lr=1e-3, progress=progress, seed=seed)
    sae = S.SparseAutoencoder(model.cfg.d_model, d_sae, "topk", k=k, seed=seed)
    sae.hook_name = hk.mlp_out(layer)
    buf2 = S.ActivationBuffer(model, sae.hook_name, train_tokens, buffer_tokens=8192, model_batch=16, seed=seed)
    S.train_sae(sae, buf2, steps=steps, batch_size=batch_size, lr=1e-3, progress=progress, seed=seed)
    with torch.no_grad():
        _, cache = model.run_with_cache(eval_tokens, names_filter=lambda n: n == sae.hook_name)
        y = cache[sae.hook_name][:, 1:].reshape(-1, sae.d_in)
        spl = M.spliced_losses(model, sae, eval_tokens, sae.hook_name)
    sae_eval = {**M.reconstruction_metrics(sae, y),
                **{kk: spl[kk] for kk in ("clean", "spliced", "zero_ablated", "ce_loss_recovered", "kl_spliced")}}
    return {"transcoder": evaluate(model, tc, eval_tokens), "sae": sae_eval, "transcoder_model": tc, "sae_model": sae}

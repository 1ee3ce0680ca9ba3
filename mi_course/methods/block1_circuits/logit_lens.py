"""Logit lens (nostalgebraist 2020) and tuned lens (Belrose et al. 2023).

The *logit lens* reads the residual stream after block ``L`` as if it were the last one:
apply the final LayerNorm and the unembedding. The *tuned lens* first passes the residual
through a learned affine *translator* for that layer (``h + A h + b``, trained on the frozen
model so that the lens's distribution matches the model's final one, in KL), which removes
the lens's bias towards the last layer's basis.

Layer index ``L`` always means "the residual stream after block ``L``"
(``blocks.L.hook_resid_post``); the last one gives the model's own logits.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from mi_course.errors import InputError, expect_shape
from mi_course.zoo import hooks as hk
from mi_course import validation as check


def _check_tokens(model, tokens: torch.Tensor) -> None:
    check.tokens("tokens", tokens, model)


@torch.no_grad()
def residual_stack(model, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(resid [n_layers, batch, pos, d_model], logits [batch, pos, d_vocab])``.

    ``resid[L]`` is the residual stream after block ``L``.
    """
    _check_tokens(model, tokens)
    names = set(hk.at_layers("resid_post", range(model.cfg.n_layers)))
    logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    resid = torch.stack([cache[hk.resid_post(L)] for L in range(model.cfg.n_layers)])
    return resid, logits


def unembed(model, resid: torch.Tensor) -> torch.Tensor:
    """Final LayerNorm then unembedding: ``[..., d_model] -> [..., d_vocab]``."""
    if not isinstance(resid, torch.Tensor) or resid.shape[-1] != model.cfg.d_model:
        raise InputError(f"resid must be a tensor [..., d_model={model.cfg.d_model}]")
    return model.unembed(model.ln_final(resid))


@torch.no_grad()
def logit_lens(model, tokens: torch.Tensor) -> torch.Tensor:
    """Logit-lens logits ``[n_layers, batch, pos, d_vocab]`` (the last layer's equal the model's)."""
    resid, _ = residual_stack(model, tokens)
    return unembed(model, resid)


def top1_agreement(lens_logits: torch.Tensor, final_logits: torch.Tensor) -> torch.Tensor:
    """Fraction of positions where each layer's top-1 token is the final top-1: ``[n_layers]``.

    lens_logits: ``[n_layers, batch, pos, vocab]``; final_logits: ``[batch, pos, vocab]``.
    """
    expect_shape("lens_logits", lens_logits, (None, None, None, None), "Expected [n_layers, batch, pos, vocab].")
    expect_shape("final_logits", final_logits, tuple(lens_logits.shape[1:]), "Expected [batch, pos, vocab].")
    return (lens_logits.argmax(-1) == final_logits.argmax(-1)).float().mean(dim=(1, 2))


@torch.no_grad()
def lens_agreement(model, tokens: torch.Tensor, lens: "TunedLens | None" = None) -> torch.Tensor:
    """Per-layer top-1 agreement of the logit lens (or ``lens``) with the final prediction: ``[n_layers]``."""
    resid, logits = residual_stack(model, tokens)
    lens_logits = unembed(model, resid) if lens is None else lens(model, resid)
    return top1_agreement(lens_logits, logits)


def per_layer_loss(lens_logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of each layer's lens, ``[n_layers]`` (nats/token)."""
    expect_shape("lens_logits", lens_logits, (None, tokens.shape[0], tokens.shape[1], None))
    logp = lens_logits[:, :, :-1].log_softmax(-1)
    target = tokens[None, :, 1:, None].expand(logp.shape[0], -1, -1, 1)
    return -logp.gather(-1, target)[..., 0].mean(dim=(1, 2))


def per_layer_kl(lens_logits: torch.Tensor, final_logits: torch.Tensor) -> torch.Tensor:
    """``KL(final || lens)`` per layer, averaged over positions: ``[n_layers]`` (nats)."""
    expect_shape("final_logits", final_logits, tuple(lens_logits.shape[1:]))
    p = final_logits.log_softmax(-1)
    q = lens_logits.log_softmax(-1)
    return (p.exp() * (p - q)).sum(-1).mean(dim=(1, 2))


@torch.no_grad()
def lens_report(model, tokens: torch.Tensor, tuned: "TunedLens | None" = None) -> dict[str, torch.Tensor]:
    """Per-layer loss, KL to the final distribution and top-1 agreement, for the logit lens and
    (if given) the tuned lens. Each value is ``[n_layers]``."""
    resid, logits = residual_stack(model, tokens)
    out = {}
    lenses = {"logit": unembed(model, resid)}
    if tuned is not None:
        lenses["tuned"] = tuned(model, resid)
    for name, ll in lenses.items():
        out[f"{name}_loss"] = per_layer_loss(ll, tokens)
        out[f"{name}_kl"] = per_layer_kl(ll, logits)
        out[f"{name}_agreement"] = top1_agreement(ll, logits)
    return out


class TunedLens(nn.Module):
    """One affine translator per layer: ``h -> h + h A_L + b_L`` (A, b start at zero = the logit lens)."""

    def __init__(self, n_layers: int, d_model: int):
        super().__init__()
        self.translators = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        for t in self.translators:
            nn.init.zeros_(t.weight)
            nn.init.zeros_(t.bias)

    def translate(self, resid: torch.Tensor) -> torch.Tensor:
        """``[n_layers, ..., d_model] -> [n_layers, ..., d_model]``."""
        if resid.shape[0] != len(self.translators):
            raise InputError(f"resid has {resid.shape[0]} layers, the lens has {len(self.translators)}")
        return torch.stack([h + t(h) for h, t in zip(resid, self.translators)])

    def forward(self, model, resid: torch.Tensor) -> torch.Tensor:
        """Tuned-lens logits ``[n_layers, batch, pos, d_vocab]`` from ``resid [n_layers, batch, pos, d_model]``."""
        return unembed(model, self.translate(resid))

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path))
        Path(path).chmod(0o644)  # safetensors writes 0600; sandboxed graders read it as another user

    @classmethod
    def load(cls, path: Path, n_layers: int, d_model: int) -> "TunedLens":
        from safetensors.torch import load_file

        lens = cls(n_layers, d_model)
        lens.load_state_dict(load_file(str(path)))
        return lens.eval()


def train_tuned_lens(model, tokens: torch.Tensor, steps: int = 300, lr: float = 1e-3, batch_positions: int = 512,
                     seed: int = 0, progress: bool = True) -> tuple[TunedLens, list[float]]:
    """Train a :class:`TunedLens` on the frozen ``model`` over ``tokens [batch, pos]``.

    Loss: ``KL(final || lens)`` summed over layers, on random minibatches of positions.
    Returns ``(lens, losses)``. A few hundred steps take seconds on CPU.
    """
    resid, logits = residual_stack(model, tokens)
    n_layers, _, _, d = resid.shape
    resid = resid.flatten(1, 2)  # [n_layers, N, d]
    target = logits.flatten(0, 1).log_softmax(-1)  # [N, vocab]
    for p in model.parameters():
        p.requires_grad_(False)
    lens = TunedLens(n_layers, d)
    opt = torch.optim.Adam(lens.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses = []
    try:
        for _ in tqdm(range(steps), desc="tuned lens", disable=not progress, leave=False):
            idx = torch.randint(0, resid.shape[1], (batch_positions,), generator=g)
            q = lens(model, resid[:, idx]).log_softmax(-1)
            p = target[idx]
            kl = (p.exp() * (p - q)).sum(-1).mean(-1).sum()
            opt.zero_grad()
            kl.backward()
            opt.step()
            losses.append(float(kl.detach()))
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return lens.eval(), losses


def load_tuned_lens(model) -> TunedLens:
    """The tuned lens shipped beside a zoo model (``tuned_lens.safetensors``, named in its card)."""
    card = getattr(model, "zoo_card", None)
    name = (card.extra or {}).get("tuned_lens") if card else None
    if not name:
        raise InputError("this model has no shipped tuned lens; train one with train_tuned_lens(model, tokens)")
    from mi_course.zoo.cards import verify_file

    path = verify_file(card.folder / name, card.extra.get("tuned_lens_sha256"), f"tuned lens of '{card.name}'",
                       card.training.get("command"))
    return TunedLens.load(path, model.cfg.n_layers, model.cfg.d_model)


def layer_norm_unembed(resid: torch.Tensor, w_ln: torch.Tensor, b_ln: torch.Tensor, W_U: torch.Tensor,
                       b_U: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The logit lens from raw weights: LayerNorm (centre, scale to unit variance, ``* w_ln + b_ln``),
    then ``@ W_U + b_U``. ``resid [..., d_model] -> logits [..., d_vocab]``."""
    expect_shape("W_U", W_U, (resid.shape[-1], None), "Expected [d_model, d_vocab].")
    x = resid - resid.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return (x * w_ln + b_ln) @ W_U + b_U

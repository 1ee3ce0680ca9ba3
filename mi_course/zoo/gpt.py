"""The zoo's native transformer in one plain-torch file (nanoGPT-style), for fast training.

``TransformerBridge``'s native model runs every activation through a hook point, and its
attention materialises the ``[batch, head, q, k]`` pattern. That is what the course wants for
*analysis*, but it makes *training* slow: one step of ``text-lm-v2`` (batch 32 x 256 tokens,
5.3M parameters) took 28 s on one busy CPU core through the bridge; the same step through
:class:`GPT` (fused ``scaled_dot_product_attention``, no hooks) takes ~3 s on two cores.

:class:`GPT` computes the same function as the bridge built from the same config, with the same
parameter names and shapes, so a state dict moves between the two unchanged::

    gpt = GPT.from_bridge(zoo.build(config, seed=0))  # same initial weights as the bridge
    ...train gpt...
    bridge = zoo.build(config); bridge.load_state_dict(gpt.state_dict())

Supported: what the zoo's text models use (pre-LN ``LN`` blocks with MLPs, learned positions,
``gelu``/``gelu_new``/``relu`` MLPs, untied unembedding with bias). Anything else raises
:class:`~mi_course.errors.InputError` rather than silently computing something different.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mi_course.errors import InputError

_ACTS = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


def _check_config(cfg: dict) -> None:
    problems = []
    if cfg.get("normalization_type", "LN") != "LN":
        problems.append(f"normalization_type={cfg.get('normalization_type')!r} (only 'LN')")
    if cfg.get("positional_embedding_type", "standard") != "standard":
        problems.append(f"positional_embedding_type={cfg.get('positional_embedding_type')!r} (only 'standard')")
    if cfg.get("act_fn", "gelu") not in _ACTS:
        problems.append(f"act_fn={cfg.get('act_fn')!r} (one of {sorted(_ACTS)})")
    if cfg.get("attn_only", False):
        problems.append("attn_only=True (GPT has MLPs)")
    if cfg["n_heads"] * cfg["d_head"] != cfg["d_model"]:
        problems.append(f"n_heads*d_head={cfg['n_heads'] * cfg['d_head']} != d_model={cfg['d_model']}")
    if problems:
        raise InputError("GPT cannot reproduce this config: " + "; ".join(problems))


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_head: int):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        self.q = nn.Linear(d_model, n_heads * d_head)
        self.k = nn.Linear(d_model, n_heads * d_head)
        self.v = nn.Linear(d_model, n_heads * d_head)
        self.o = nn.Linear(n_heads * d_head, d_model)

    def heads(self, lin: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """``x [batch, pos, d_model]`` through ``lin`` (q, k or v), split into ``[batch, head, pos, d_head]``."""
        B, T, _ = x.shape
        return lin(x).view(B, T, self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = (self.heads(lin, x) for lin in (self.q, self.k, self.v))
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(self.d_head))
        return self.o(z.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, d_model: int, d_mlp: int, act_fn: str):
        super().__init__()
        self.act = _ACTS[act_fn]
        setattr(self, "in", nn.Linear(d_model, d_mlp))  # `in` is a keyword; the bridge names it so
        self.out = nn.Linear(d_mlp, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(getattr(self, "in")(x)))


class Block(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        eps = cfg.get("eps", 1e-5)
        self.ln1 = nn.LayerNorm(cfg["d_model"], eps=eps)
        self.attn = Attention(cfg["d_model"], cfg["n_heads"], cfg["d_head"])
        self.ln2 = nn.LayerNorm(cfg["d_model"], eps=eps)
        self.mlp = MLP(cfg["d_model"], cfg["d_mlp"], cfg.get("act_fn", "gelu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Pre-LN GPT with the bridge's native parameter names. ``forward(tokens [batch, pos]) -> logits``."""

    def __init__(self, cfg: dict):
        super().__init__()
        cfg = dict(cfg)
        _check_config(cfg)
        self.cfg = cfg
        self.embed = nn.Embedding(cfg["d_vocab"], cfg["d_model"])
        self.pos_embed = nn.Embedding(cfg["n_ctx"], cfg["d_model"])
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg["n_layers"]))
        self.ln_final = nn.LayerNorm(cfg["d_model"], eps=cfg.get("eps", 1e-5))
        self.unembed = nn.Linear(cfg["d_model"], cfg.get("d_vocab_out", cfg["d_vocab"]))

    @classmethod
    def from_bridge(cls, bridge, config: dict) -> "GPT":
        """A GPT holding a copy of ``bridge``'s weights (``config``: the dict the bridge was built from)."""
        gpt = cls(config)
        missing, unexpected = gpt.load_state_dict(bridge.state_dict(), strict=False)
        if missing or unexpected:
            raise InputError(f"bridge and GPT parameters differ: missing {missing}, unexpected {unexpected}")
        return gpt.to(next(bridge.parameters()).device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [batch, pos]`` (pos <= n_ctx) -> logits ``[batch, pos, d_vocab]``."""
        T = tokens.shape[1]
        if T > self.cfg["n_ctx"]:
            raise InputError(f"sequence of {T} tokens is longer than the context ({self.cfg['n_ctx']})")
        x = self.embed(tokens) + self.pos_embed.weight[:T]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))

    @torch.no_grad()
    def attention_patterns(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's attention pattern ``[batch, head, query_pos, key_pos]`` on ``tokens [batch, pos]``.

        The fused attention never forms the pattern, so this recomputes it (for watching heads
        during training; the bridge's ``hook_pattern`` gives the same numbers).
        """
        T = tokens.shape[1]
        x = self.embed(tokens) + self.pos_embed.weight[:T]
        mask = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
        out = []
        for block in self.blocks:
            a, h = block.attn, block.ln1(x)
            q, k = a.heads(a.q, h), a.heads(a.k, h)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(a.d_head)
            out.append(scores.masked_fill(~mask, float("-inf")).softmax(-1))
            x = block(x)
        return out

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over ``tokens [batch, pos]`` (as the bridge's ``return_type="loss"``)."""
        logits = self(tokens)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

"""Sparse autoencoders and transcoders as plain torch modules (the classes the zoo loads).

One base class, four activation functions:

=============  ===================================================================  ==========================
architecture   latents f(x)                                                         sparsity comes from
=============  ===================================================================  ==========================
``relu``       ReLU(W_enc (x - b_dec) + b_enc)                                      L1 penalty weighted by
                                                                                    decoder norms (Anthropic 2024)
``topk``       keep the k largest pre-activations of each token (ReLU'd)            k (Gao et al. 2024)
``batchtopk``  keep the k*B largest over a batch of B tokens while training; a      k (Bussmann et al. 2024)
               learned threshold at inference
``jumprelu``   pre * (pre > theta), theta learned per latent                        L0 penalty with a straight-
                                                                                    through estimator (Rajamanoharan
                                                                                    et al. 2024)
=============  ===================================================================  ==========================

A *transcoder* (Dunefsky et al. 2024) has the same parts but reads one activation (an MLP's
input) and reconstructs another (the MLP's output): ``kind="transcoder"``, ``d_out`` may differ
from ``d_in`` and the input is not centred by ``b_dec``.

Shapes: inputs ``[..., d_in]``, latents ``[..., d_sae]``, outputs ``[..., d_out]``. The module
stores a scalar ``input_scale`` (set from data so that inputs have mean norm sqrt(d_in)); encode
and decode apply and undo it, so callers always work in the model's own units.
"""

from __future__ import annotations

import torch
from torch import nn

from mi_course.errors import InputError

ARCHITECTURES = ("relu", "topk", "batchtopk", "jumprelu")
KINDS = ("sae", "transcoder")


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta); gradient to theta by a rectangle-kernel pseudo-derivative."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        g_pre = grad * (pre > theta)
        rect = ((pre - theta).abs() < eps / 2).to(pre.dtype)
        g_theta = (-(theta / eps) * rect * grad).reshape(-1, theta.shape[-1]).sum(0)
        return g_pre, g_theta, None


class _Step(torch.autograd.Function):
    """H(pre - theta) (for the L0 penalty); gradient to theta by the same pseudo-derivative."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        rect = ((pre - theta).abs() < eps / 2).to(pre.dtype)
        g_theta = (-(1.0 / eps) * rect * grad).reshape(-1, theta.shape[-1]).sum(0)
        return torch.zeros_like(pre), g_theta, None


class SparseAutoencoder(nn.Module):
    """A sparse autoencoder (or transcoder) with one of :data:`ARCHITECTURES`.

    >>> sae = SparseAutoencoder(d_in=128, d_sae=1024, architecture="topk", k=16)
    >>> f = sae.encode(acts)            # [..., 1024], at most 16 non-zero per token
    >>> acts_hat = sae.decode(f)        # [..., 128]
    """

    def __init__(self, d_in: int, d_sae: int, architecture: str = "relu", k: int | None = None,
                 kind: str = "sae", d_out: int | None = None, jumprelu_init_threshold: float = 0.5,
                 jumprelu_bandwidth: float = 0.1, seed: int | None = 0):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise InputError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        if kind not in KINDS:
            raise InputError(f"kind must be 'sae' or 'transcoder', got {kind!r}")
        if architecture in ("topk", "batchtopk") and (k is None or not 0 < k <= d_sae):
            raise InputError(f"architecture {architecture!r} needs k between 1 and d_sae={d_sae}, got {k!r}")
        if min(d_in, d_sae) < 1:
            raise InputError(f"d_in and d_sae must be positive, got {d_in}, {d_sae}")
        self.d_in, self.d_sae, self.d_out = d_in, d_sae, d_out or d_in
        if kind == "sae" and self.d_out != d_in:
            raise InputError("an SAE reconstructs its input (d_out == d_in); use kind='transcoder' for d_out != d_in")
        self.architecture, self.k, self.kind = architecture, k, kind
        self.bandwidth = jumprelu_bandwidth
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        w = torch.randn(d_sae, self.d_out, generator=g)
        w = w / w.norm(dim=-1, keepdim=True) * 0.1  # decoder rows: random directions, norm 0.1
        self.W_dec = nn.Parameter(w)  # [d_sae, d_out]
        w_enc = w.T.clone() if self.d_out == d_in else torch.randn(d_in, d_sae, generator=g) * 0.1 / d_in ** 0.5
        self.W_enc = nn.Parameter(w_enc)  # [d_in, d_sae]
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(self.d_out))
        if architecture == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((d_sae,), float(torch.tensor(jumprelu_init_threshold).log())))
        self.register_buffer("threshold", torch.zeros(()))  # batchtopk: inference threshold
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("output_scale", torch.ones(()))

    # ---------------------------------------------------------------------------------- parts
    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., d_sae]`` encoder pre-activations of (scaled) input ``x`` ``[..., d_in]``."""
        if self.kind == "sae":
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def _check(self, x: torch.Tensor, d: int, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.shape[-1] != d:
            raise InputError(f"{name} has last dimension {x.shape[-1]}, this {self.kind} expects {d}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents ``[..., d_sae]`` (non-negative) of activations ``x`` ``[..., d_in]``, in the model's units."""
        self._check(x, self.d_in, "acts")
        pre = self.pre_activations(x.to(self.W_enc.dtype) * self.input_scale)
        return self.activation(pre)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        if self.architecture == "relu":
            return torch.relu(pre)
        if self.architecture == "jumprelu":
            return _JumpReLU.apply(pre, self.log_threshold.exp(), self.bandwidth)
        if self.architecture == "topk" or (self.architecture == "batchtopk" and self.training):
            pre = torch.relu(pre)
            if self.architecture == "topk":
                vals, idx = pre.topk(self.k, dim=-1)
                return torch.zeros_like(pre).scatter(-1, idx, vals)
            flat = pre.reshape(-1, self.d_sae)
            n_keep = min(self.k * flat.shape[0], flat.numel())
            vals, idx = flat.flatten().topk(n_keep)
            out = torch.zeros_like(flat).flatten().scatter(0, idx, vals).view_as(flat)
            return out.view_as(pre)
        # batchtopk at inference: a fixed threshold
        return pre * (pre > self.threshold)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[..., d_out]`` of ``latents`` ``[..., d_sae]``, in the model's units."""
        self._check(latents, self.d_sae, "latents")
        return (latents.to(self.W_dec.dtype) @ self.W_dec + self.b_dec) / self.output_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reconstruction [..., d_out], latents [..., d_sae])``."""
        f = self.encode(x)
        return self.decode(f), f

    # ------------------------------------------------------------------------------- helpers
    @property
    def decoder_directions(self) -> torch.Tensor:
        """``[d_sae, d_out]`` unit-norm decoder rows (each latent's direction in activation space)."""
        return self.W_dec / self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)

    def config(self) -> dict:
        """Constructor arguments (for a card, and :meth:`from_config`)."""
        return {"d_in": self.d_in, "d_sae": self.d_sae, "architecture": self.architecture, "k": self.k,
                "kind": self.kind, "d_out": self.d_out, "jumprelu_bandwidth": self.bandwidth}

    @classmethod
    def from_config(cls, config: dict) -> "SparseAutoencoder":
        return cls(**config, seed=None)

    def extra_repr(self) -> str:
        k = f", k={self.k}" if self.k else ""
        return f"{self.kind}: {self.architecture}{k}, d_in={self.d_in}, d_sae={self.d_sae}, d_out={self.d_out}"


def Transcoder(d_in: int, d_sae: int, d_out: int | None = None, architecture: str = "relu", **kwargs) -> SparseAutoencoder:
    """A transcoder: reads an MLP's input ``[..., d_in]``, reconstructs its output ``[..., d_out]``."""
    return SparseAutoencoder(d_in, d_sae, architecture, kind="transcoder", d_out=d_out, **kwargs)

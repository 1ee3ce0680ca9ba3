"""Training sparse autoencoders and transcoders (plain torch over TransformerLens hooks).

Papers: Towards Monosemanticity (Bricken et al. 2023) and Anthropic's April 2024 update (ReLU + L1
with decoder norms in the penalty, no unit-norm constraint); Scaling and evaluating sparse
autoencoders (Gao et al. 2024: TopK, AuxK for dead latents); BatchTopK (Bussmann et al. 2024);
Jumping Ahead: JumpReLU SAEs (Rajamanoharan et al. 2024); Transcoders (Dunefsky et al. 2024).

>>> sae = SparseAutoencoder(d_in=128, d_sae=1024, architecture="topk", k=16)
>>> buffer = ActivationBuffer(model, hooks.resid_post(2), windows)   # streams from the model
>>> history = train_sae(sae, buffer, steps=2000, batch_size=1024)

The classes live with the zoo (:mod:`mi_course.zoo.sae_models`) so that shipped SAEs load
without this module; they are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from mi_course.errors import InputError
from mi_course.zoo.sae_models import ARCHITECTURES, SparseAutoencoder, Transcoder
from mi_course import threads

__all__ = ["SparseAutoencoder", "Transcoder", "ARCHITECTURES", "ActivationBuffer", "TensorSource",
           "SAETrainConfig", "train_sae", "sae_loss", "set_input_scale", "resample_dead_latents",
           "random_decoder_sae"]


# -------------------------------------------------------------------------------------- sources
class TensorSource:
    """Batches ``(input, target)`` drawn at random from fixed activations (e.g. synthetic data).

    ``acts`` ``[n, d_in]``; ``targets`` ``[n, d_out]`` for a transcoder (default: ``acts``).
    """

    def __init__(self, acts: torch.Tensor, targets: torch.Tensor | None = None, seed: int = 0):
        if not isinstance(acts, torch.Tensor) or acts.ndim != 2:
            raise InputError(f"acts must be a 2-D tensor [n, d_in], got {getattr(acts, 'shape', type(acts))}")
        if targets is not None and (targets.ndim != 2 or targets.shape[0] != acts.shape[0]):
            raise InputError(f"targets must be [n, d_out] with n={acts.shape[0]}, got {list(targets.shape)}")
        self.acts, self.targets = acts, targets
        self.g = torch.Generator().manual_seed(seed)

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, self.acts.shape[0], (batch_size,), generator=self.g)
        x = self.acts[idx]
        return x, (self.targets[idx] if self.targets is not None else x)

    def sample(self, n: int) -> torch.Tensor:
        return self.next_batch(n)[0]


class GeneratorSource:
    """Batches from a function ``sample(batch_size, generator) -> acts [batch, d]`` (fresh data every step)."""

    def __init__(self, sample_fn, seed: int = 0):
        self.fn = sample_fn
        self.g = torch.Generator().manual_seed(seed)

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fn(batch_size, self.g)
        x = x[0] if isinstance(x, tuple) else x
        return x, x

    def sample(self, n: int) -> torch.Tensor:
        return self.next_batch(n)[0]


def _stop_after(model, names: list[str]) -> dict:
    """``{"stop_at_layer": L + 1}`` when every name is inside blocks up to ``L`` of a deeper model (the rest of
    the forward pass is not needed: 2-3x faster for an early layer), else ``{}``."""
    n_layers = getattr(getattr(model, "cfg", None), "n_layers", None)
    layers = []
    for n in names:
        parts = n.split(".")
        if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
            return {}
        layers.append(int(parts[1]))
    if not n_layers or max(layers) + 1 >= n_layers:
        return {}
    return {"stop_at_layer": max(layers) + 1}


class ActivationBuffer:
    """Activations streamed from a model through a shuffled buffer.

    Runs ``model`` on windows of ``tokens`` ``[n_windows, pos]`` (in order, cycling), keeps the
    activation at ``hook_name`` (and at ``output_hook_name`` for a transcoder) of every position
    except the first (``<|endoftext|>``, whose activations are outliers), and hands out random
    batches from a buffer of about ``buffer_tokens`` tokens, refilled when half is used.
    """

    def __init__(self, model, hook_name: str, tokens: torch.Tensor, output_hook_name: str | None = None,
                 buffer_tokens: int = 32_768, model_batch: int = 16, skip_first: bool = True, seed: int = 0):
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
            raise InputError(f"tokens must be [n_windows, pos], got {getattr(tokens, 'shape', type(tokens))}")
        self.model, self.hook_name, self.output_hook_name = model, hook_name, output_hook_name
        self.tokens, self.model_batch, self.skip_first = tokens, model_batch, skip_first
        self.buffer_tokens = buffer_tokens
        self.g = torch.Generator().manual_seed(seed)
        self._next_window = 0
        self.tokens_seen = 0
        self._x = self._y = None
        self._pos = 0

    @torch.no_grad()
    def _run(self, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        names = [self.hook_name] + ([self.output_hook_name] if self.output_hook_name else [])
        xs, ys, got = [], [], 0
        while got < n_tokens:
            i = self._next_window
            idx = torch.arange(i, i + self.model_batch) % self.tokens.shape[0]
            self._next_window = int(idx[-1] + 1) % self.tokens.shape[0]
            x, y = self._activations(idx, names)
            xs.append(x)
            if y is not None:
                ys.append(y)
            got += x.shape[0]
        self.tokens_seen += got
        return torch.cat(xs), (torch.cat(ys) if ys else None)

    def _activations(self, idx: torch.Tensor, names: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x [n_tok, d_in], y [n_tok, d_out] or None)`` for windows ``idx``. When all windows together hold
        no more than two buffers of tokens, each window runs once and is reused on later passes."""
        small = self.tokens.numel() <= 2 * self.buffer_tokens
        cached = getattr(self, "_window_cache", None)
        if small and cached is None:
            cached = self._window_cache = {}
        todo = [int(i) for i in idx if not small or int(i) not in cached]
        if todo:
            _, cache = self.model.run_with_cache(self.tokens[todo], names_filter=lambda n: n in names,
                                                 **_stop_after(self.model, names))
            missing = [n for n in names if n not in cache]
            if missing:
                raise InputError(f"the model has no activation named {missing[0]!r}")
            start = 1 if self.skip_first else 0
            got = {n: cache[n][:, start:].float().cpu() for n in names}
            fresh = {w: tuple(got[n][r] for n in names) for r, w in enumerate(todo)}
            if small:
                cached.update(fresh)
        else:
            fresh = {}
        rows = [cached[int(i)] if small else fresh[int(i)] for i in idx]
        x = torch.cat([r[0] for r in rows])
        y = torch.cat([r[1] for r in rows]) if self.output_hook_name else None
        return x, y

    def _refill(self) -> None:
        keep_x = self._x[self._pos :] if self._x is not None else None
        keep_y = self._y[self._pos :] if self._y is not None else None
        need = self.buffer_tokens - (0 if keep_x is None else keep_x.shape[0])
        x, y = self._run(max(need, 1))
        if keep_x is not None:
            x = torch.cat([keep_x, x])
            y = torch.cat([keep_y, y]) if y is not None else None
        perm = torch.randperm(x.shape[0], generator=self.g)
        self._x, self._y, self._pos = x[perm], (y[perm] if y is not None else None), 0

    def next_batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._x is None or self._x.shape[0] - self._pos < batch_size or self._pos >= self._x.shape[0] // 2:
            self._refill()
        x = self._x[self._pos : self._pos + batch_size]
        y = self._y[self._pos : self._pos + batch_size] if self._y is not None else x
        self._pos += batch_size
        return x, y

    def sample(self, n: int) -> torch.Tensor:
        return self.next_batch(n)[0]


def _as_source(data) -> object:
    if isinstance(data, torch.Tensor):
        return TensorSource(data)
    if not hasattr(data, "next_batch"):
        raise InputError("data must be a tensor [n, d_in], an ActivationBuffer, or an object with next_batch(batch_size)")
    return data


# ----------------------------------------------------------------------------------- training
@dataclass
class SAETrainConfig:
    """Hyperparameters of :func:`train_sae` (defaults suit small models on CPU)."""

    steps: int = 2000
    batch_size: int = 1024
    lr: float = 1e-3
    l1_coeff: float = 1.0          # relu: lambda in mean_b sum_i f_i ||W_dec,i||
    l0_coeff: float = 1.0          # jumprelu: lambda in mean_b ||f||_0 (straight-through)
    aux_k: int | None = None       # topk/batchtopk: AuxK uses this many dead latents (default d_in // 2)
    aux_coeff: float = 1 / 32
    dead_after_tokens: int = 50_000  # a latent that has not fired for this many tokens is dead
    resample_every: int | None = None  # relu/jumprelu: resample dead latents every N steps
    warmup_steps: int = 50
    l1_warmup_frac: float = 0.05   # the sparsity penalty ramps up linearly over this fraction of steps
    decay_start_frac: float = 0.8  # the learning rate decays linearly to 0 over the last 20%
    freeze_decoder: bool = False   # train the encoder only (the random-decoder baseline)
    log_every: int = 100
    seed: int = 0
    history: list = field(default_factory=list)
    # resuming a long run: start at ``start_step`` with the optimiser's saved state; every
    # ``checkpoint_every`` steps ``on_checkpoint(step, sae, optimizer_state, config)`` is called
    start_step: int = 0
    optimizer_state: dict | None = None
    checkpoint_every: int = 0
    on_checkpoint: object = None


def set_input_scale(sae: SparseAutoencoder, data, n: int = 4096) -> float:
    """Fix ``sae.input_scale`` (and ``output_scale``) so scaled inputs have mean norm sqrt(d_in)."""
    src = _as_source(data)
    x, y = src.next_batch(n)
    sae.input_scale.fill_(math.sqrt(sae.d_in) / float(x.norm(dim=-1).mean().clamp_min(1e-8)))
    sae.output_scale.fill_(math.sqrt(sae.d_out) / float(y.norm(dim=-1).mean().clamp_min(1e-8))
                           if sae.kind == "transcoder" else float(sae.input_scale))
    return float(sae.input_scale)


def sae_loss(sae: SparseAutoencoder, x: torch.Tensor, y: torch.Tensor, cfg: SAETrainConfig,
             sparsity_scale: float = 1.0, dead_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """The training loss of one batch (scaled units) and its parts.

    ``x`` ``[batch, d_in]`` input, ``y`` ``[batch, d_out]`` target (``x`` itself for an SAE).
    MSE is summed over dimensions and averaged over the batch. Sparsity term by architecture:
    ``relu``: ``l1_coeff * mean_b sum_i f_i ||W_dec,i||``; ``jumprelu``: ``l0_coeff * mean_b ||f||_0``
    (straight-through); ``topk``/``batchtopk``: none, plus AuxK on the residual from ``dead_mask``.
    """
    xs, ys = x * sae.input_scale, y * sae.output_scale
    pre = sae.pre_activations(xs)
    f = sae.activation(pre)
    recon = f @ sae.W_dec + sae.b_dec
    err = ys - recon
    mse = err.pow(2).sum(-1).mean()
    parts = {"mse": mse.item()}
    loss = mse
    if sae.architecture == "relu":
        sp = (f * sae.W_dec.norm(dim=-1)).sum(-1).mean()
        loss = loss + sparsity_scale * cfg.l1_coeff * sp
        parts["sparsity"] = sp.item()
    elif sae.architecture == "jumprelu":
        from mi_course.zoo.sae_models import _Step

        l0 = _Step.apply(pre, sae.log_threshold.exp(), sae.bandwidth).sum(-1).mean()
        loss = loss + sparsity_scale * cfg.l0_coeff * l0
        parts["sparsity"] = l0.item()
    elif dead_mask is not None and dead_mask.any():
        k_aux = min(cfg.aux_k or max(sae.d_in // 2, 1), int(dead_mask.sum()))
        dead_pre = torch.relu(pre).masked_fill(~dead_mask, 0.0)
        vals, idx = dead_pre.topk(k_aux, dim=-1)
        aux_recon = torch.zeros_like(dead_pre).scatter(-1, idx, vals) @ sae.W_dec
        aux = (err.detach() - aux_recon).pow(2).sum(-1).mean()
        loss = loss + cfg.aux_coeff * aux
        parts["aux"] = aux.item()
    parts["l0"] = float((f > 0).float().sum(-1).mean())
    return loss, {**parts, "_latents": f.detach(), "_pre": pre.detach()}


@torch.no_grad()
def resample_dead_latents(sae: SparseAutoencoder, dead: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                          optimizer: torch.optim.Optimizer | None = None, generator: torch.Generator | None = None) -> int:
    """Re-initialise ``dead`` latents (bool ``[d_sae]``) towards inputs the SAE reconstructs worst.

    Towards Monosemanticity's recipe, simplified: sample inputs with probability proportional to
    their squared error, point each dead latent's decoder row at that input's residual, its
    encoder column at it too (scaled to 0.2x the mean alive encoder norm), zero its bias and reset
    its Adam moments. Returns the number resampled.
    """
    n = int(dead.sum())
    if n == 0:
        return 0
    xs, ys = x * sae.input_scale, y * sae.output_scale
    recon = sae.activation(sae.pre_activations(xs)) @ sae.W_dec + sae.b_dec
    err = (ys - recon)
    w = err.pow(2).sum(-1)
    idx = torch.multinomial(w / w.sum() if w.sum() > 0 else torch.ones_like(w), n, replacement=True, generator=generator)
    dirs = err[idx] / err[idx].norm(dim=-1, keepdim=True).clamp_min(1e-8)
    alive = ~dead
    enc_norm = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    ids = dead.nonzero()[:, 0]
    sae.W_dec[ids] = dirs * 0.1
    if sae.d_in == sae.d_out:
        sae.W_enc[:, ids] = (dirs * enc_norm * 0.2).T
    sae.b_enc[ids] = 0.0
    if optimizer is not None:
        for p in (sae.W_dec, sae.W_enc, sae.b_enc):
            st = optimizer.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    if p is sae.W_enc:
                        st[key][:, ids] = 0
                    else:
                        st[key][ids] = 0
    return n


def train_sae(sae: SparseAutoencoder, data, config: SAETrainConfig | None = None, progress: bool = True,
              **overrides) -> list[dict]:
    """Train ``sae`` in place on ``data`` (a tensor ``[n, d_in]``, :class:`ActivationBuffer`, or a source).

    Adam (betas 0.9, 0.999), linear warm-up, the sparsity penalty ramped in, linear decay at the
    end; gradient clipping at 1. Dead latents are counted in tokens since they last fired: TopK and
    BatchTopK get the AuxK loss on them, ReLU and JumpReLU can resample them
    (``resample_every``). BatchTopK's inference threshold is the running mean of the smallest kept
    activation. Returns the history (every ``log_every`` steps: mse, l0, sparsity, dead, lr).
    """
    threads.apply_for_model(sae)  # small: one thread, unless the user chose otherwise
    cfg = config or SAETrainConfig()
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise InputError(f"unknown training option {k!r}")
        setattr(cfg, k, v)
    src = _as_source(data)
    torch.manual_seed(cfg.seed)
    if float(sae.input_scale) == 1.0:
        set_input_scale(sae, src)
    params = [p for n, p in sae.named_parameters() if not (cfg.freeze_decoder and n in ("W_dec", "b_dec"))]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    if cfg.optimizer_state:
        opt.load_state_dict(cfg.optimizer_state)
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long)
    thresholds = []
    g = torch.Generator().manual_seed(cfg.seed)
    sae.train()
    bar = tqdm(range(cfg.start_step, cfg.steps), desc=f"train {sae.architecture} {sae.kind}", disable=not progress, leave=False)
    for step in bar:
        decay_start = int(cfg.decay_start_frac * cfg.steps)
        lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
        if step >= decay_start:
            lr *= max(0.0, (cfg.steps - step) / max(cfg.steps - decay_start, 1))
        for group in opt.param_groups:
            group["lr"] = lr
        ramp = min(1.0, (step + 1) / max(cfg.l1_warmup_frac * cfg.steps, 1))
        x, y = src.next_batch(cfg.batch_size)
        dead_mask = since_fired >= cfg.dead_after_tokens
        loss, parts = sae_loss(sae, x, y, cfg, ramp, dead_mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        f = parts.pop("_latents")
        parts.pop("_pre")
        fired = (f > 0).any(0)
        since_fired += x.shape[0]
        since_fired[fired] = 0
        if sae.architecture == "batchtopk":
            pos = f[f > 0]
            if pos.numel():
                thresholds.append(float(pos.min()))
        if cfg.resample_every and (step + 1) % cfg.resample_every == 0 and step + 1 < decay_start:
            xr, yr = src.next_batch(cfg.batch_size * 4)
            parts["resampled"] = resample_dead_latents(sae, dead_mask, xr, yr, opt, g)
            since_fired[dead_mask] = 0
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            rec = {"step": step + 1, "lr": lr, "dead": int(dead_mask.sum()),
                   **{k: round(v, 5) if isinstance(v, float) else v for k, v in parts.items()}}
            cfg.history.append(rec)
            bar.set_postfix(mse=f"{parts['mse']:.3g}", l0=f"{parts['l0']:.1f}", dead=rec["dead"])
        if cfg.checkpoint_every and callable(cfg.on_checkpoint) and (step + 1) % cfg.checkpoint_every == 0 \
                and step + 1 < cfg.steps:
            cfg.on_checkpoint(step + 1, sae, opt.state_dict(), cfg)
    if sae.architecture == "batchtopk" and thresholds:
        tail = thresholds[len(thresholds) // 2 :]
        sae.threshold.fill_(sum(tail) / len(tail))
    sae.eval()
    return cfg.history


# ----------------------------------------------------------------------------------- baselines
def random_decoder_sae(like: SparseAutoencoder, seed: int = 1) -> SparseAutoencoder:
    """An untrained SAE shaped like ``like`` whose decoder rows are random unit directions (times
    ``like``'s mean decoder norm), and whose encoder is the decoder's transpose.

    The baseline of Korznikov et al. 2026: train only its encoder with
    ``train_sae(base, data, freeze_decoder=True)`` and compare every metric with the trained SAE's.
    """
    base = SparseAutoencoder(like.d_in, like.d_sae, like.architecture, like.k, like.kind, like.d_out, seed=seed)
    with torch.no_grad():
        scale = like.W_dec.norm(dim=-1).mean()
        base.W_dec.mul_(scale / 0.1)
        if base.d_in == base.d_out:
            base.W_enc.copy_(base.decoder_directions.T)
        base.input_scale.copy_(like.input_scale)
        base.output_scale.copy_(like.output_scale)
        base.b_dec.copy_(like.b_dec)
    return base

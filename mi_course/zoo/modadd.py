"""The ``modadd-p113`` model of the zoo: its config, a fast plain-torch twin of the bridge, and the
shipped training checkpoints.

:class:`ModAddTransformer` is a plain-torch 1-layer transformer whose maths equals the
TransformerBridge built from :data:`CONFIG` and whose state-dict keys are the bridge's; with one
layer only the ``=`` position matters, so its forward computes the query, MLP and logits at that
position alone. :func:`to_bridge` loads its weights into the bridge. :func:`load_checkpoints`
reads ``checkpoints.safetensors`` (weights at every saved epoch and the training curves), checking
its sha256 on the card first. The recipe that trains it is :mod:`mi_course.training.modadd_recipe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mi_course.data.modadd import P
from mi_course.errors import CheckpointError, InputError

NAME = "modadd-p113"
CONFIG = dict(
    n_layers=1, d_model=128, n_heads=4, d_head=32, d_mlp=512, act_fn="relu",
    normalization_type=None, d_vocab=P + 1, d_vocab_out=P, n_ctx=3, attn_only=False,
    positional_embedding_type="standard",
)
CHECKPOINTS_FILE = "checkpoints.safetensors"
HISTORY_COLUMNS = ("epoch", "train_loss", "test_loss", "train_acc", "test_acc")
# Parameters kept at zero and out of the optimiser (the paper's model has no such biases).
FROZEN_ZERO = ("blocks.0.attn.q.bias", "blocks.0.attn.k.bias", "blocks.0.attn.v.bias",
               "blocks.0.attn.o.bias", "unembed.bias")


class ModAddTransformer(nn.Module):
    """Plain-torch 1-layer transformer, identical in maths to ``zoo.build(CONFIG)``.

    Parameters carry the bridge's state-dict names, stored in a dict with dots replaced by
    ``__``. ``forward(tokens [batch, 3]) -> logits [batch, d_vocab_out]`` at the last position.
    """

    def __init__(self, cfg: dict = CONFIG, seed: int = 0):
        super().__init__()
        self.cfg = dict(cfg)
        d, h, dh, m = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["d_mlp"]
        v_in, v_out, n = cfg["d_vocab"], cfg["d_vocab_out"], cfg["n_ctx"]
        g = torch.Generator().manual_seed(seed)

        def randn(*shape, scale):
            return nn.Parameter(torch.randn(*shape, generator=g) * scale)

        s = 1 / math.sqrt(d)
        # Init as in the paper's official code: N(0, 1/d_model); the unembed N(0, 1/d_vocab).
        self.p = nn.ParameterDict({
            "embed__weight": randn(v_in, d, scale=s),
            "pos_embed__weight": randn(n, d, scale=s),
            "blocks__0__attn__q__weight": randn(h * dh, d, scale=s),
            "blocks__0__attn__k__weight": randn(h * dh, d, scale=s),
            "blocks__0__attn__v__weight": randn(h * dh, d, scale=s),
            "blocks__0__attn__o__weight": randn(d, h * dh, scale=s),
            "blocks__0__mlp__in__weight": randn(m, d, scale=s),
            "blocks__0__mlp__in__bias": nn.Parameter(torch.zeros(m)),
            "blocks__0__mlp__out__weight": randn(d, m, scale=s),
            "blocks__0__mlp__out__bias": nn.Parameter(torch.zeros(d)),
            "unembed__weight": randn(v_out, d, scale=1 / math.sqrt(v_in)),
        })

    def bridge_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under the TransformerBridge's keys, with the frozen biases as zeros."""
        state = {k.replace("__", "."): v.detach().clone() for k, v in self.p.items()}
        d, hd, v_out = self.cfg["d_model"], self.cfg["n_heads"] * self.cfg["d_head"], self.cfg["d_vocab_out"]
        for key, size in zip(FROZEN_ZERO, (hd, hd, hd, d, v_out)):
            state[key] = torch.zeros(size)
        return state

    def load_bridge_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k in self.p:
            self.p[k].data.copy_(state[k.replace("__", ".")].float())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._run(tokens)[0]

    def neuron_acts(self, tokens: torch.Tensor) -> torch.Tensor:
        """MLP activations after ReLU at the last position, ``[batch, d_mlp]``."""
        return self._run(tokens)[1]

    def _run(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.p
        h, dh = self.cfg["n_heads"], self.cfg["d_head"]
        resid = p["embed__weight"][tokens] + p["pos_embed__weight"][: tokens.shape[1]]  # [B, 3, d]
        B, T, _ = resid.shape
        last = resid[:, -1]  # [B, d]
        q = (last @ p["blocks__0__attn__q__weight"].T).view(B, h, dh)
        k = (resid @ p["blocks__0__attn__k__weight"].T).view(B, T, h, dh)
        v = (resid @ p["blocks__0__attn__v__weight"].T).view(B, T, h, dh)
        scores = torch.einsum("bhd,bthd->bht", q, k) / math.sqrt(dh)  # last query sees every key
        pattern = scores.softmax(dim=-1)
        z = torch.einsum("bht,bthd->bhd", pattern, v).reshape(B, h * dh)
        last = last + z @ p["blocks__0__attn__o__weight"].T
        pre = last @ p["blocks__0__mlp__in__weight"].T + p["blocks__0__mlp__in__bias"]
        post = torch.relu(pre)
        last = last + post @ p["blocks__0__mlp__out__weight"].T + p["blocks__0__mlp__out__bias"]
        return last @ p["unembed__weight"].T, post


def to_bridge(module: ModAddTransformer | dict):
    """A TransformerBridge (eval mode, CPU) carrying ``module``'s weights (or a bridge state dict)."""
    from mi_course import zoo

    state = module.bridge_state_dict() if isinstance(module, ModAddTransformer) else module
    bridge = zoo.build(CONFIG)
    missing, unexpected = bridge.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"State dict does not fit {NAME}: missing {missing[:3]}, unexpected {unexpected[:3]}.")
    bridge.eval()
    return bridge


def last_logits(model, tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the ``=`` position, ``[batch, p]``, for a bridge or a :class:`ModAddTransformer`."""
    if isinstance(model, ModAddTransformer):
        return model(tokens)
    return model(tokens)[:, -1, :]


@dataclass
class Checkpoints:
    """The shipped training run: ``epochs`` (sorted), ``states[i]`` (bridge state dict, fp32),
    ``history`` (``[n_evals, 5]`` float64 with columns :data:`HISTORY_COLUMNS`)."""

    epochs: list[int]
    states: list[dict]
    history: torch.Tensor

    def column(self, name: str) -> torch.Tensor:
        if name not in HISTORY_COLUMNS:
            raise InputError(f"Unknown history column {name!r}; columns are {HISTORY_COLUMNS}.")
        return self.history[:, HISTORY_COLUMNS.index(name)]

    def state(self, epoch: int) -> dict:
        if epoch not in self.epochs:
            raise InputError(f"No checkpoint at epoch {epoch}; saved epochs: {self.epochs}.")
        return self.states[self.epochs.index(epoch)]

    def module(self, epoch: int) -> ModAddTransformer:
        """A plain-torch :class:`ModAddTransformer` with the weights of ``epoch`` (fast)."""
        m = ModAddTransformer(CONFIG)
        m.load_bridge_state_dict(self.state(epoch))
        m.eval()
        return m

    def bridge(self, epoch: int):
        """A TransformerBridge with the weights of ``epoch``."""
        return to_bridge(self.state(epoch))


def load_checkpoints(path: Path | None = None, verify: bool = True) -> Checkpoints:
    """Load the shipped checkpoints of ``modadd-p113``, checking the sha256 on its card first."""
    from mi_course import zoo
    from mi_course.zoo.cards import verify_file

    card = zoo.card(NAME)
    info = card.extra.get("checkpoints", {})
    path = Path(path) if path else card.folder / info.get("file", CHECKPOINTS_FILE)
    retrain = card.training.get("command", f"mi-course train {NAME}")
    verify_file(path, info.get("sha256") if verify else None, f"checkpoint file of '{NAME}'", retrain)
    return _read_checkpoints(path)


def _read_checkpoints(path: Path) -> Checkpoints:
    from safetensors.torch import load_file

    raw = load_file(str(path))
    history = raw.pop("history")
    by_epoch: dict[int, dict] = {}
    for key, v in raw.items():
        tag, name = key.split("/", 1)
        by_epoch.setdefault(int(tag.split("_")[1]), {})[name] = v.float()
    d, hd, v_out = CONFIG["d_model"], CONFIG["n_heads"] * CONFIG["d_head"], CONFIG["d_vocab_out"]
    for state in by_epoch.values():
        for key, size in zip(FROZEN_ZERO, (hd, hd, hd, d, v_out)):
            state[key] = torch.zeros(size)
    epochs = sorted(by_epoch)
    return Checkpoints(epochs=epochs, states=[by_epoch[e] for e in epochs], history=history)

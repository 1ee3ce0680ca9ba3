"""Recipe for ``attn-only-2l``: a 2-layer attention-only transformer that forms induction heads.

Data: :func:`mi_course.data.induction.training_batch` (copied spans of random length and
offset). AdamW, constant learning rate. The induction phase change happens within the first
few hundred steps; the full recipe trains 3,000 steps (about a minute and a half on 2 CPU cores).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from mi_course.data.induction import repeated_random_tokens, token_names, training_batch
from mi_course.methods.induction import head_scores, per_token_loss, repeated_half_losses

NAME = "attn-only-2l"
CONFIG = dict(
    n_layers=2, d_model=64, n_heads=4, d_head=16, n_ctx=64, d_vocab=128,
    attn_only=True, normalization_type="LN", positional_embedding_type="standard",
)


@dataclass
class Recipe:
    steps: int = 3000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 10  # the card ships this history (the phase change), so notebooks need not retrain
    history: list = field(default_factory=list)


def probe_tokens(seq_len: int = 24, n_batch: int = 32, seed: int = 1234) -> torch.Tensor:
    """The fixed repeated-random-token batch on which the card's figures are measured."""
    return repeated_random_tokens(n_batch, seq_len, CONFIG["d_vocab"], seed=seed)


@torch.no_grad()
def measure(model, seq_len: int = 24) -> dict:
    """The card's figures, measured on :func:`probe_tokens`."""
    tokens = probe_tokens(seq_len)
    scores = head_scores(model, tokens, seq_len)
    loss = per_token_loss(model(tokens), tokens)
    first, second = repeated_half_losses(loss, seq_len)
    ind = scores["induction"]
    prev = scores["prev_token"]
    l1 = int(ind[1].argmax())
    l0 = int(prev[0].argmax())
    return {
        "induction_score_L1": {"value": round(ind[1].max().item(), 4), "head": f"1.{l1}",
                                "description": f"best layer-1 head (1.{l1}): mean attention to the token after the earlier copy, repeated random tokens, seq_len={seq_len}"},
        "prev_token_score_L0": {"value": round(prev[0].max().item(), 4), "head": f"0.{l0}",
                                 "description": f"best layer-0 head (0.{l0}): mean attention to the previous token"},
        "loss_first_half": {"value": round(first, 4), "description": "nats per token on the first copy (unpredictable: a uniform guess costs ln(127) = 4.84; the model pays a little more, betting on tokens already seen)"},
        "loss_repeated_half": {"value": round(second, 4), "description": "nats per token on the second copy"},
    }


def train(recipe: Recipe | None = None, progress: bool = True, model=None):
    """Train ``attn-only-2l`` from scratch (or continue ``model``). Returns ``(model, recipe)``.

    ``recipe.history`` holds ``{step, loss, induction_L1, prev_token_L0}`` every
    ``eval_every`` steps: plot it to see the induction phase change.
    """
    from mi_course import zoo

    recipe = recipe or Recipe()
    torch.manual_seed(recipe.seed)
    if model is None:
        model = zoo.build(CONFIG, seed=recipe.seed)
    model.train()
    g = torch.Generator().manual_seed(recipe.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    probe = probe_tokens(seq_len=24, n_batch=8)
    bar = tqdm(range(recipe.steps + 1), desc=f"train {NAME}", disable=not progress, leave=False)
    for step in bar:
        if step % recipe.eval_every == 0 or step == recipe.steps:
            model.eval()
            s = head_scores(model, probe, 24)
            model.train()
            recipe.history.append({
                "step": step,
                "induction_L1": s["induction"][1].max().item(),
                "prev_token_L0": s["prev_token"][0].max().item(),
            })
        if step == recipe.steps:
            if step > 0:
                recipe.history[-1]["loss"] = last_loss
            break
        tokens = training_batch(recipe.batch_size, CONFIG["n_ctx"], CONFIG["d_vocab"], g)
        loss = model(tokens, return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
        last_loss = loss.item()
        if recipe.history and recipe.history[-1]["step"] == step:
            recipe.history[-1]["loss"] = loss.item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model, recipe


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True):
    """Run the full recipe and write checkpoint + card (``mi-course train attn-only-2l``)."""
    from mi_course import zoo
    from mi_course.zoo.cards import ModelCard

    recipe = Recipe(seed=seed, **({"steps": steps} if steps else {}))
    t0 = time.time()
    model, recipe = train(recipe, progress=progress)
    seconds = time.time() - t0
    card = ModelCard(
        name=NAME,
        summary="2-layer attention-only transformer trained on copied spans of random tokens; "
                "forms a previous-token head (layer 0) and an induction head (layer 1).",
        config=CONFIG,
        training={
            "data": "mi_course.data.induction.training_batch: random tokens in which earlier spans "
                    "(length 3-16, random source, random gaps 0-5) are copied again; seq len 64",
            "recipe": f"AdamW lr={recipe.lr}, weight_decay={recipe.weight_decay}, batch {recipe.batch_size}, "
                      f"{recipe.steps} steps, constant LR",
            "seed": seed,
            "steps": recipe.steps,
            "command": f"mi-course train {NAME}",
            "cpu_time": f"{seconds:.0f} s on this machine's CPU",
        },
        figures=measure(model),
        token_names=token_names(CONFIG["d_vocab"]),
        extra={"phase_change": _phase_change_step(recipe.history),
               "history": _history_for_card(recipe)},
        paper_figures={
            "Olsson et al. 2022": "induction heads form in a sudden phase change (at 2.5-5B tokens in "
                                  "their small models), visible as a bump in the loss curve; "
                                  "1-layer models show none",
            "Elhage et al. 2021": "2-layer attention-only models form induction heads by K-composition "
                                  "with a previous-token head in layer 0",
        },
    )
    return zoo.save_checkpoint(model, card, folder)


def _history_for_card(recipe: Recipe) -> dict:
    """The training history as columns (rounded), for ``card.extra["history"]``."""
    rows = recipe.history
    return {
        "description": f"measured during training every {recipe.eval_every} steps: training loss (nats per "
                       "token, the step's batch), best layer-1 induction score and best layer-0 previous-token "
                       "score on a fixed probe batch (8 x repeated random tokens, seq_len=24)",
        "step": [h["step"] for h in rows],
        "loss": [round(h["loss"], 4) if "loss" in h else None for h in rows],
        "induction_L1": [round(h["induction_L1"], 4) for h in rows],
        "prev_token_L0": [round(h["prev_token_L0"], 4) for h in rows],
    }


def history(card=None) -> dict:
    """The shipped training history of ``attn-only-2l`` (from its card): columns ``step``, ``loss``,
    ``induction_L1``, ``prev_token_L0`` (lists of equal length) and ``description``.

    Plot it instead of retraining: ``train(Recipe(steps=700))`` reproduces its start in a minute.
    """
    from mi_course import zoo
    from mi_course.errors import CheckpointError

    card = card or zoo.card(NAME)
    out = (card.extra or {}).get("history")
    if not out:
        raise CheckpointError(f"the card of '{NAME}' has no training history; retrain with `mi-course train {NAME}`")
    return out


def _phase_change_step(history: list) -> int | None:
    """First logged step at which the layer-1 induction score passes 0.5."""
    for h in history:
        if h["induction_L1"] > 0.5:
            return h["step"]
    return None

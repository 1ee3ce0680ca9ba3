"""Recipe for ``ioi-lm``: a 3-layer transformer with MLPs that solves indirect object identification.

Data: :func:`mi_course.data.ioi.make_ioi` on the *training* templates only, half of the
prompts with a name-free filler sentence in front (so a name's position says nothing), the
answer token appended. Loss: next-token cross-entropy on every word (a small language model
of these stories) plus the answer's cross-entropy once more (the task). The card's figures
are measured on the *held-out* templates, which the model never saw.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mi_course.data import ioi

NAME = "ioi-lm"
CONFIG = dict(
    n_layers=3, d_model=64, n_heads=4, d_head=16, d_mlp=256, n_ctx=48, d_vocab=len(ioi.vocabulary()),
    act_fn="gelu", normalization_type="LN", positional_embedding_type="standard",
)


@dataclass
class Recipe:
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    answer_weight: float = 1.0
    prefix_prob: float = 0.5
    seed: int = 0
    eval_every: int = 250
    history: list = field(default_factory=list)


def batch_tokens(ds: ioi.IOIDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens [n, seq+1], answer_pos [n])``: the prompts with the answer (IO) appended."""
    n, width = ds.tokens.shape
    pad = ioi.token_id(ioi.PAD)
    tokens = torch.full((n, width + 1), pad, dtype=torch.long)
    tokens[:, :width] = ds.tokens
    rows = torch.arange(n)
    tokens[rows, ds.end + 1] = ds.io
    return tokens, ds.end


def training_loss(model, ds: ioi.IOIDataset, answer_weight: float = 1.0) -> torch.Tensor:
    tokens, end = batch_tokens(ds)
    logits = model(tokens[:, :-1])
    target = tokens[:, 1:]
    mask = target != ioi.token_id(ioi.PAD)
    lm = F.cross_entropy(logits[mask], target[mask])
    rows = torch.arange(len(ds))
    answer = F.cross_entropy(logits[rows, end], ds.io)
    return lm + answer_weight * answer


def held_out_prompts(n: int = 240, seed: int = 2024) -> ioi.IOIDataset:
    """The fixed held-out batch on which the card's figures are measured."""
    return ioi.make_ioi(n, seed=seed, templates="held_out")


@torch.no_grad()
def ioi_scores(model, ds: ioi.IOIDataset) -> dict[str, float]:
    """Mean logit difference (IO - S), accuracy (top-1 over the vocabulary is IO) and IO > S rate."""
    logits = model(ds.tokens)
    rows = torch.arange(len(ds))
    final = logits[rows, ds.end]
    ld = final[rows, ds.io] - final[rows, ds.s]
    return {
        "logit_diff": ld.mean().item(),
        "accuracy": (final.argmax(-1) == ds.io).float().mean().item(),
        "io_beats_s": (ld > 0).float().mean().item(),
    }


@torch.no_grad()
def measure(model) -> dict:
    held = ioi_scores(model, held_out_prompts())
    train = ioi_scores(model, ioi.make_ioi(240, seed=2025, templates="train"))
    return {
        "held_out_logit_diff": {"value": round(held["logit_diff"], 4),
                                "description": "mean logit(IO) - logit(S) at the last token, 240 prompts from the 6 held-out templates"},
        "held_out_accuracy": {"value": round(held["accuracy"], 4),
                              "description": "held-out templates: share of prompts whose top-1 next token is IO"},
        "held_out_io_beats_s": {"value": round(held["io_beats_s"], 4),
                                "description": "held-out templates: share with logit(IO) > logit(S)"},
        "train_logit_diff": {"value": round(train["logit_diff"], 4),
                             "description": "same, 240 prompts from the 16 training templates"},
        "train_accuracy": {"value": round(train["accuracy"], 4),
                           "description": "training templates: share with top-1 = IO"},
    }


def train(recipe: Recipe | None = None, progress: bool = True, model=None, log=None):
    """Train ``ioi-lm`` from scratch. Returns ``(model, recipe)``; ``recipe.history`` logs held-out scores."""
    from mi_course import zoo

    recipe = recipe or Recipe()
    torch.manual_seed(recipe.seed)
    if model is None:
        model = zoo.build(CONFIG, seed=recipe.seed)
    model.train()
    rng = random.Random(recipe.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    probe = held_out_prompts(64)
    bar = tqdm(range(recipe.steps + 1), desc=f"train {NAME}", disable=not progress, leave=False)
    last = float("nan")
    for step in bar:
        if step % recipe.eval_every == 0 or step == recipe.steps:
            model.eval()
            s = ioi_scores(model, probe)
            model.train()
            recipe.history.append({"step": step, "loss": round(last, 4), "held_out_logit_diff": round(s["logit_diff"], 4),
                                   "held_out_accuracy": round(s["accuracy"], 4)})
            if log is not None:
                log(recipe.history[-1])
        if step == recipe.steps:
            break
        ds = ioi.training_batch(recipe.batch_size, rng, prefix_prob=recipe.prefix_prob)
        loss = training_loss(model, ds, recipe.answer_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        last = loss.item()
        bar.set_postfix(loss=f"{last:.3f}")
    model.eval()
    return model, recipe


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True):
    """Run the full recipe and write checkpoint, card and tokenizer (``mi-course train ioi-lm``)."""
    from pathlib import Path

    from mi_course import zoo
    from mi_course.zoo.cards import ModelCard

    recipe = Recipe(seed=seed, **({"steps": steps} if steps else {}))
    t0 = time.time()
    model, recipe = train(recipe, progress=progress)
    seconds = time.time() - t0
    card = ModelCard(
        name=NAME,
        summary="3-layer transformer with MLPs trained on IOI-style stories; names the indirect object "
                "on templates it never saw.",
        config=CONFIG,
        training={
            "data": f"mi_course.data.ioi.make_ioi on the {len(ioi.TRAIN_TEMPLATES)} training templates "
                    f"({len(ioi.NAMES)} names, {len(ioi.PLACES)} places, {len(ioi.OBJECTS)} objects, ABBA and BABA), "
                    f"a name-free filler sentence in front of {recipe.prefix_prob:.0%} of prompts; "
                    f"{len(ioi.HELD_OUT_TEMPLATES)} templates held out",
            "recipe": f"AdamW lr={recipe.lr}, weight_decay={recipe.weight_decay}, batch {recipe.batch_size}, "
                      f"{recipe.steps} steps; loss = next-word cross-entropy + {recipe.answer_weight} x answer cross-entropy",
            "seed": seed,
            "steps": recipe.steps,
            "command": f"mi-course train {NAME}",
            "cpu_time": f"{seconds:.0f} s on this machine's CPU (1 thread)",
        },
        figures=measure(model),
        token_names=list(ioi.vocabulary()),
        extra={"history": recipe.history, "word_tokenizer": "tokenizer.json = mi_course.data.ioi.tokenizer() (word level), used through mi_course.data.ioi"},
        paper_figures={
            "Wang et al. 2023 (IOI)": "GPT-2 small: mean logit difference 3.55 on the standard prompts; "
                                      "a circuit of 26 heads in 7 classes (28 in the ICLR version); "
                                      "the circuit recovers F(C) = 3.10 of F(M) = 3.56 (87%)",
        },
    )
    card = zoo.save_checkpoint(model, card, folder)
    out = Path(folder) if folder else card.folder
    ioi.tokenizer().save(str(out / "tokenizer.json"))
    return card

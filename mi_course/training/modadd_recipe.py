"""Recipe for ``modadd-p113``: a 1-layer transformer that groks modular addition.

The setup of Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability": inputs ``[a, b, =]`` (``=`` is token 113), label ``(a + b) mod 113``, 30% of
the 12,769 pairs for training; 1 layer, d_model 128, 4 heads of 32, d_mlp 512, ReLU, no
LayerNorm; full-batch AdamW (lr 1e-3, weight decay 1, betas (0.9, 0.98)) with a 10-step
linear warm-up; cross-entropy in float64. Training stops ``extra_epochs`` after test accuracy
first reaches 99%, so the checkpoints cover memorisation, circuit formation and the start of
cleanup.

For speed we train :class:`ModAddTransformer`, a plain-torch module whose maths equals the
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

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from mi_course.data.modadd import DATA_SEED, FRAC_TRAIN, P, dataset, token_names
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
    from safetensors.torch import load_file

    from mi_course import zoo
    from mi_course.zoo.cards import sha256_of

    card = zoo.card(NAME)
    info = card.extra.get("checkpoints", {})
    path = Path(path) if path else card.folder / info.get("file", CHECKPOINTS_FILE)
    retrain = card.training.get("command", f"mi-course train {NAME}")
    if not path.exists():
        raise CheckpointError(f"Checkpoint file for '{NAME}' is missing: {path}. Reinstall mi-course "
                              f"or retrain with `{retrain}`.")
    if verify:
        digest = sha256_of(path)
        if digest != info.get("sha256"):
            raise CheckpointError(f"Checkpoint file {path.name} of '{NAME}' is corrupted or was changed: "
                                  f"sha256 {digest[:16]}... does not match the card's "
                                  f"{str(info.get('sha256'))[:16]}.... Restore it (`git checkout`) or "
                                  f"retrain with `{retrain}`.")
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
    "course guide (CPU runs of the official recipe)": "grokked (>= 99.9% test) at ~5.9k and ~9.0k epochs for two seeds; "
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
                "load_with": "mi_course.training.modadd_recipe.load_checkpoints()",
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

"""Recipe for ``text-lm``: a 4-layer transformer language model on the Python standard library.

Data: :mod:`mi_course.data.stdlib_corpus` (this interpreter's stdlib source, tests and
generated tables left out; one file in 20 held out). Tokenizer: byte-level BPE with 4,096
tokens trained on the train split, shipped as ``tokenizer.json`` beside the checkpoint.
Training: windows of 128 tokens (``<|endoftext|>`` first), AdamW, linear warm-up then cosine
decay. About 10 minutes on a free CPU core (1,400 steps of 2,048 tokens).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mi_course.data import stdlib_corpus as corpus

NAME = "text-lm"
VOCAB = 4096
CONFIG = dict(
    n_layers=4, d_model=128, n_heads=4, d_head=32, d_mlp=512, n_ctx=128, d_vocab=VOCAB,
    act_fn="gelu", normalization_type="LN", positional_embedding_type="standard",
)
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class Recipe:
    steps: int = 1400
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_frac: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.05
    seed: int = 0
    eval_every: int = 200
    threads: int | None = None  # torch.set_num_threads for the run (None: leave as is)
    history: list = field(default_factory=list)

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        frac = (step - self.warmup) / max(self.steps - self.warmup, 1)
        return self.lr * (self.min_lr_frac + (1 - self.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def tokenizer_path(folder: Path | None = None) -> Path:
    from mi_course.zoo.cards import MODELS_DIR

    return (Path(folder) if folder else MODELS_DIR / NAME) / TOKENIZER_FILE


def load_raw_tokenizer(folder: Path | None = None):
    """The shipped ``tokenizers.Tokenizer`` of ``text-lm``."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_path(folder)))


def heldout_tokens(raw_tokenizer=None) -> torch.Tensor:
    """The held-out split, tokenized (1-D)."""
    return corpus.tokenize_split(raw_tokenizer or load_raw_tokenizer(), "heldout")


def heldout_batch(raw_tokenizer=None, n: int = 64, length: int | None = None) -> torch.Tensor:
    """The fixed ``[n, n_ctx]`` held-out windows on which the card's loss is measured."""
    return corpus.heldout_windows(heldout_tokens(raw_tokenizer), n, length or CONFIG["n_ctx"])


@torch.no_grad()
def ngram_baselines(train: torch.Tensor, heldout_batch_: torch.Tensor, vocab: int = VOCAB, alpha: float = 0.1) -> dict[str, float]:
    """Held-out loss (nats/token) of add-``alpha`` unigram and bigram models fit on ``train``.

    Scored on the same predictions as the model: every position of ``heldout_batch_`` after the first.
    """
    uni = torch.bincount(train, minlength=vocab).double() + alpha
    logp_uni = (uni / uni.sum()).log()
    pair = train[:-1] * vocab + train[1:]
    bi = torch.bincount(pair, minlength=vocab * vocab).double().view(vocab, vocab) + alpha
    logp_bi = (bi / bi.sum(-1, keepdim=True)).log()
    prev, nxt = heldout_batch_[:, :-1].reshape(-1), heldout_batch_[:, 1:].reshape(-1)
    return {"unigram": float(-logp_uni[nxt].mean()), "bigram": float(-logp_bi[prev, nxt].mean())}


@torch.no_grad()
def heldout_loss(model, batch: torch.Tensor, chunk: int = 16) -> float:
    """Mean next-token loss (nats) of ``model`` on ``batch`` ``[n, pos]``."""
    total, count = 0.0, 0
    for i in range(0, batch.shape[0], chunk):
        x = batch[i : i + chunk]
        logp = model(x).log_softmax(-1)[:, :-1]
        total += float(-logp.gather(-1, x[:, 1:, None]).sum())
        count += x[:, 1:].numel()
    return total / count


@torch.no_grad()
def measure(model, raw_tokenizer=None, with_baselines: bool = True, tuned_lens=None) -> dict:
    """The card's figures: held-out loss (vs unigram and bigram), induction, logit-lens agreement,
    and (given ``tuned_lens``) per-layer held-out loss of the logit and tuned lens."""
    from mi_course.data.induction import repeated_random_tokens
    from mi_course.methods.induction import head_scores, per_token_loss, repeated_half_losses
    from mi_course.methods.logit_lens import lens_agreement

    raw_tokenizer = raw_tokenizer or load_raw_tokenizer()
    batch = heldout_batch(raw_tokenizer)
    figs: dict = {}
    loss = heldout_loss(model, batch)
    figs["heldout_loss"] = {"value": round(loss, 4),
                            "description": f"nats/token on {batch.shape[0]} fixed held-out windows of {batch.shape[1]} tokens"}
    if with_baselines:
        base = ngram_baselines(corpus.tokenize_split(raw_tokenizer, "train"), batch)
        figs["unigram_loss"] = {"value": round(base["unigram"], 4),
                                "description": "same held-out tokens, add-0.1 unigram model fit on the train split"}
        figs["bigram_loss"] = {"value": round(base["bigram"], 4),
                               "description": "same held-out tokens, add-0.1 bigram model fit on the train split"}
    seq_len = 40
    rep = repeated_random_tokens(32, seq_len, VOCAB, seed=1234)
    scores = head_scores(model, rep, seq_len)
    ind = scores["induction"]
    flat = int(ind.argmax())
    L, H = divmod(flat, model.cfg.n_heads)
    first, second = repeated_half_losses(per_token_loss(model(rep), rep), seq_len)
    figs["induction_score"] = {"value": round(float(ind.max()), 4), "head": f"{L}.{H}",
                               "description": f"best head ({L}.{H}): mean attention to the token after the earlier copy, "
                                              f"32 sequences of {seq_len} random tokens repeated twice"}
    figs["repeated_tokens_loss"] = {"value": round(second, 4),
                                    "description": f"nats/token on the second copy of repeated random tokens (first copy: {first:.2f})"}
    agree = lens_agreement(model, batch[:32])
    for layer, a in enumerate(agree.tolist()):
        figs[f"logit_lens_agreement_L{layer}"] = {
            "value": round(a, 4),
            "description": f"fraction of held-out positions where the logit lens after block {layer} has the final top-1 token"}
    first_half = next((i for i, a in enumerate(agree.tolist()) if a >= 0.5), None)
    figs["logit_lens_first_layer_over_half"] = {
        "value": -1 if first_half is None else first_half,
        "description": "first block whose logit-lens top-1 matches the final top-1 at >= 50% of positions (-1: none)"}
    if tuned_lens is not None:
        from mi_course.methods.logit_lens import lens_report

        rep = lens_report(model, batch[:32], tuned_lens)
        for layer in range(model.cfg.n_layers):
            for kind in ("logit", "tuned"):
                figs[f"{kind}_lens_loss_L{layer}"] = {
                    "value": round(float(rep[f"{kind}_loss"][layer]), 4),
                    "description": f"held-out nats/token of the {kind} lens after block {layer}"}
    return figs


def train_lens(model, raw_tokenizer, steps: int = 150, seed: int = 0, progress: bool = True):
    """The shipped tuned lens: trained on 48 train windows (frozen model), a minute or two on CPU."""
    from mi_course.methods.logit_lens import train_tuned_lens

    train_tokens = corpus.tokenize_split(raw_tokenizer, "train")
    windows = corpus.random_windows(train_tokens, 48, CONFIG["n_ctx"], torch.Generator().manual_seed(seed + 7))
    lens, _ = train_tuned_lens(model, windows, steps=steps, lr=3e-3, batch_positions=256, seed=seed, progress=progress)
    return lens


def train(recipe: Recipe | None = None, progress: bool = True, model=None, raw_tokenizer=None,
          log_file: Path | None = None):
    """Train ``text-lm`` from scratch. Returns ``(model, recipe, raw_tokenizer)``.

    ``recipe.history`` holds ``{step, loss, heldout_loss, lr}`` every ``eval_every`` steps.
    """
    from mi_course import zoo

    recipe = recipe or Recipe()
    if recipe.threads:
        from mi_course.threads import set_threads

        set_threads(recipe.threads)  # a chosen count, so zoo.build below keeps it
    torch.manual_seed(recipe.seed)
    raw_tokenizer = raw_tokenizer or corpus.train_tokenizer(VOCAB)
    train_tokens = corpus.tokenize_split(raw_tokenizer, "train")
    held = corpus.heldout_windows(corpus.tokenize_split(raw_tokenizer, "heldout"), 16, CONFIG["n_ctx"])
    if model is None:
        model = zoo.build(CONFIG, seed=recipe.seed)
    model.train()
    g = torch.Generator().manual_seed(recipe.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, betas=(0.9, 0.98))
    bar = tqdm(range(recipe.steps), desc=f"train {NAME}", disable=not progress, leave=False)
    running = None
    t0 = time.time()
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = recipe.lr_at(step)
        x = corpus.random_windows(train_tokens, recipe.batch_size, CONFIG["n_ctx"], g)
        loss = model(x, return_type="loss")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
            model.eval()
            h = heldout_loss(model, held)
            model.train()
            rec = {"step": step + 1, "loss": round(running, 4), "heldout_loss": round(h, 4),
                   "lr": recipe.lr_at(step), "seconds": round(time.time() - t0, 1)}
            recipe.history.append(rec)
            if log_file:
                with open(log_file, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        bar.set_postfix(loss=f"{running:.3f}")
    model.eval()
    return model, recipe, raw_tokenizer


def make_card(model, recipe: Recipe, raw_tokenizer, seconds: float, seed: int = 0, tuned_lens=None):
    from mi_course.zoo.cards import ModelCard

    info = corpus.corpus_info()
    return ModelCard(
        name=NAME,
        summary="4-layer transformer language model (d_model 128, MLPs, LayerNorm) trained on the Python "
                "standard library's own source code, comments and docstrings; byte-level BPE, 4,096 tokens. "
                "Offline stand-in for GPT-2 in weeks 03, 04 and the SAE block.",
        config=CONFIG,
        training={
            "data": f"mi_course.data.stdlib_corpus: Python {info.python_version} stdlib .py files "
                    f"(tests, site-packages, generated tables left out); {info.n_files_train} train files "
                    f"({info.bytes_train / 1e6:.1f} MB), {info.n_files_heldout} held-out files "
                    f"({info.bytes_heldout / 1e6:.2f} MB); windows of {CONFIG['n_ctx']} tokens starting with <|endoftext|>",
            "recipe": f"AdamW lr={recipe.lr} (warm-up {recipe.warmup}, cosine to {recipe.min_lr_frac}x), betas (0.9, 0.98), "
                      f"weight_decay={recipe.weight_decay} on matrices, grad clip 1.0, batch {recipe.batch_size}x{CONFIG['n_ctx']} "
                      f"tokens, {recipe.steps} steps ({recipe.steps * recipe.batch_size * CONFIG['n_ctx'] / 1e6:.1f}M tokens)",
            "seed": seed,
            "steps": recipe.steps,
            "command": f"mi-course train {NAME}",
            "cpu_time": f"{seconds:.0f} s on this machine's CPU ({recipe.threads or torch.get_num_threads()} thread(s), shared machine)",
        },
        figures=measure(model, raw_tokenizer, tuned_lens=tuned_lens),
        extra={
            "tokenizer": TOKENIZER_FILE,
            "corpus": info.as_dict(),
            "history": recipe.history,
        },
        paper_figures={
            "Radford et al. 2019 (GPT-2 small)": "12 layers, d_model 768, 124M parameters, 50,257-token BPE, trained on "
                                                 "WebText (40 GB); ours is ~1.9M parameters on ~8 MB of code",
            "Olsson et al. 2022": "every multi-layer model they trained on text formed induction heads, in a phase "
                                  "change at 2.5-5B training tokens; text-lm has seen 2.9M tokens and shows none yet "
                                  "(see induction_score)",
            "nostalgebraist 2020 (logit lens)": "in GPT-2 the logit lens's top token often matches the output "
                                                "only in the later layers",
            "Geva et al. 2022": "in their 16-layer LM the residual stream's top token equals the final output for about "
                                "a third of examples in the bottom layers, rising to about 95% at layer 16",
            "Belrose et al. 2023 (tuned lens)": "the tuned lens is more predictive than the logit lens at every layer",
        },
    )


TUNED_LENS_FILE = "tuned_lens.safetensors"


def save(model, card, raw_tokenizer, folder: Path | None = None, tuned_lens=None):
    """Write tokenizer, tuned lens, checkpoint and card (with their sha256s) into ``folder``."""
    from mi_course import zoo
    from mi_course.zoo.cards import sha256_of

    folder = Path(folder) if folder else card.folder
    folder.mkdir(parents=True, exist_ok=True)
    tpath = folder / TOKENIZER_FILE
    raw_tokenizer.save(str(tpath))
    card.extra["tokenizer"] = TOKENIZER_FILE
    card.extra["tokenizer_sha256"] = sha256_of(tpath)
    if tuned_lens is not None:
        tuned_lens.save(folder / TUNED_LENS_FILE)
        card.extra["tuned_lens"] = TUNED_LENS_FILE
        card.extra["tuned_lens_sha256"] = sha256_of(folder / TUNED_LENS_FILE)
    return zoo.save_checkpoint(model, card, folder)


def finish(model, recipe: Recipe, raw_tokenizer, seconds: float, seed: int = 0, folder=None,
           lens_steps: int = 150, progress: bool = True):
    """Train the tuned lens, measure, and write everything (the end of :func:`train_and_save`)."""
    lens = train_lens(model, raw_tokenizer, steps=lens_steps, seed=seed, progress=progress)
    card = make_card(model, recipe, raw_tokenizer, seconds, seed, tuned_lens=lens)
    card.training["tuned_lens"] = (f"one affine translator per block, trained {lens_steps} Adam steps (lr 3e-3, 256 "
                                   "positions/step) on 48 train windows to minimise KL(final || lens)")
    return save(model, card, raw_tokenizer, folder, tuned_lens=lens)


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True, threads: int | None = None):
    """Run the full recipe and write tokenizer, checkpoint and card (``mi-course train text-lm``)."""
    recipe = Recipe(seed=seed, threads=threads, **({"steps": steps} if steps else {}))
    if steps and steps < recipe.warmup * 2:
        recipe.warmup = max(1, steps // 10)
        recipe.eval_every = max(1, steps // 2)
    t0 = time.time()
    model, recipe, tok = train(recipe, progress=progress)
    seconds = time.time() - t0
    return finish(model, recipe, tok, seconds, seed, folder, lens_steps=150 if not steps or steps >= 200 else 2,
                  progress=progress)

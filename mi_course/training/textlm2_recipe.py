"""Recipe for ``text-lm-v2``: ``text-lm`` retrained on a corpus 25x larger, big enough to form induction heads.

Why: the shipped ``text-lm`` (d_model 128, 2.9M tokens of the standard library) memorises its
2.3M-token corpus long before an induction head forms. Measured on a GPU with a replica of this
recipe, a 4-layer model with d_model 256 and context 256 trained on the stdlib plus the Python
sources of the installed packages reached an induction score of 0.47 after 16M tokens, 0.61 after
33M and 0.64 after 57M, with no gap between train and held-out loss.

Data: :mod:`mi_course.data.python_corpus` (stdlib + the course's installed dependencies, read in
place, tests and exact duplicates out, held-out split by file), tokenized with ``text-lm``'s own
4,096-token BPE tokenizer (shipped beside the checkpoint again). Training: windows of 256 tokens
(``<|endoftext|>`` first) sampled at random, AdamW lr 2e-3, betas (0.9, 0.98), weight decay 0.05 on
matrices, 100 warm-up steps then cosine decay to 0.1x, batch 32 x 256, 3,700 steps (~30M tokens).

Cost: about 35 MFLOP per training token, ~1e15 FLOP in all: minutes on a GPU, hours on a CPU
(training runs :class:`mi_course.zoo.gpt.GPT`, the same function as the zoo's bridge without hooks:
~3 s per step of 32 x 256 tokens on 2 quiet cores, against 28 s through the bridge on one busy core,
so ~3 hours for the 3,700 steps; tokenizing the ~215 MB corpus took ~0.2 MB/s on one busy core).
So the run keeps its state in a run folder (model, optimizer, step, which fixes the learning-rate
schedule, the batch sampler's and torch's RNG, history, elapsed time), saved every
``save_every`` steps and on Ctrl-C or SIGTERM; running the same command again resumes where it stopped and
ends exactly where an uninterrupted run would have::

    python -m mi_course.training.textlm2_recipe --device cuda      # or cpu; resumes if stopped
    mi-course train text-lm-v2                                      # the same, on CPU

A GPU machine without this corpus or transformer-lens trains from a token file and a step-0 state made
here (``--export-tokens``, ``--stop-after 0``, then ``--tokens FILE --train-only`` there; ``docs/text-lm.md``).

The tokenized corpus is cached in the run folder (int16, ~140 MB), so a resume does not
tokenize again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mi_course.cache import cache_dir
from mi_course.data import python_corpus as pc
from mi_course.data import stdlib_corpus as sc
from mi_course.errors import InputError
from mi_course.training import textlm_recipe as v1

NAME = "text-lm-v2"
VOCAB = v1.VOCAB
CONFIG = dict(
    n_layers=4, d_model=256, n_heads=4, d_head=64, d_mlp=1024, n_ctx=256, d_vocab=VOCAB,
    act_fn="gelu", normalization_type="LN", positional_embedding_type="standard",
)
STATE_FILE = "state.pt"


@dataclass
class Recipe:
    steps: int = 3700
    batch_size: int = 32
    lr: float = 2e-3
    min_lr_frac: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.05
    seed: int = 0
    eval_every: int = 250
    save_every: int = 50
    n_ctx: int = CONFIG["n_ctx"]
    max_files: int | None = None  # only the first files of each split (smoke tests)
    init: str = "zoo"  # initial weights: one of INITS
    history: list = field(default_factory=list)

    lr_at = v1.Recipe.lr_at

    def key(self) -> dict:
        """What must match for a run folder to be resumed with this recipe."""
        d = asdict(self)
        for k in ("history", "eval_every", "save_every"):
            d.pop(k)
        if d["init"] == "zoo":  # runs saved before the option existed resume
            d.pop("init")
        return d


INITS = {
    "zoo": "the zoo's seeded TransformerBridge weights (normal std 0.8/sqrt(d_model) = 0.05 for the embeddings, "
           "unembedding, Q/K/V and MLP-in matrices, 0.018 for the attention and MLP output projections); the shipped "
           "text-lm-v2 started here",
    "gpt2": "GPT-2's scheme (as nanoGPT): normal std 0.02 for embeddings and every matrix, 0.02/sqrt(2 n_layers) for "
            "the attention and MLP output projections, zero biases",
    "torch": "PyTorch's module defaults: nn.Linear uniform(+-1/sqrt(fan_in)) weights and biases, nn.Embedding "
             "normal std 1",
}


def default_run_dir(seed: int = 0, steps: int | None = None, init: str = "zoo") -> Path:
    """``~/.cache/mi-course/runs/text-lm-v2-seed0`` (``-steps7000``, ``-init-gpt2`` where not the default)."""
    name = f"{NAME}-seed{seed}"
    name += f"-steps{steps}" if steps and steps != Recipe.steps else ""
    name += f"-init-{init}" if init != "zoo" else ""
    return cache_dir("runs", name)


def initial_gpt(config: dict, recipe: "Recipe", device: str = "cpu"):
    """The step-0 :class:`~mi_course.zoo.gpt.GPT` for ``recipe.init`` (seeded by ``recipe.seed``).

    Why a choice: the issue's replica (a plain-torch model with its own initialisation) reached an
    induction score of 0.61 after 33M tokens, this recipe from the zoo's weights 0.44-0.51
    (``docs/text-lm.md``); the initial scale is the first difference to test.
    """
    from mi_course.zoo.gpt import GPT

    if recipe.init not in INITS:
        raise InputError(f"init={recipe.init!r}: expected one of {sorted(INITS)}")
    if recipe.init == "zoo":
        from mi_course import zoo

        bridge = zoo.build(config, device=device, seed=recipe.seed)  # the zoo's seeded initial weights
        return GPT.from_bridge(bridge, config)  # trains ~10x faster than the bridge; same function
    torch.manual_seed(recipe.seed)
    model = GPT(config)  # PyTorch's defaults
    if recipe.init == "gpt2":
        proj_std = 0.02 / (2 * config["n_layers"]) ** 0.5
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                torch.nn.init.zeros_(p)
            elif ".ln" in name or name.startswith("ln_final"):
                torch.nn.init.ones_(p)
            else:
                torch.nn.init.normal_(p, std=proj_std if name.endswith(("attn.o.weight", "mlp.out.weight")) else 0.02)
    return model.to(device)


# ----------------------------------------------------------------------------------------- data
def corpus_tokens(raw_tokenizer, run_dir: Path | None = None, max_files: int | None = None,
                  progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(train ids, held-out ids, corpus manifest)``; cached in ``run_dir`` (keyed by corpus and tokenizer)."""
    info = pc.corpus_info()
    key = {"corpus_sha256": info["sha256"], "tokenizer": _tok_sha(raw_tokenizer),
           "max_files": max_files}
    cache = Path(run_dir) / "tokens.pt" if run_dir else None
    # this run's cache first, then another run's of the same corpus and tokenizer (a new seed or init
    # need not tokenize ~215 MB again: about 20 minutes on one core)
    for path in ([cache, *sorted(cache.parent.parent.glob("*/tokens.pt"))] if cache else []):
        if not path.exists():
            continue
        blob = torch.load(path, weights_only=True)
        if blob["key"] == json.dumps(key, sort_keys=True):
            if path != cache:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.symlink_to(path.resolve())
            return blob["train"].long(), blob["heldout"].long(), info
    train = pc.tokenize_split(raw_tokenizer, "train", max_files=max_files, progress=progress)
    held = pc.tokenize_split(raw_tokenizer, "heldout", max_files=max_files, progress=progress)
    info = dict(info, tokens_train=int(train.numel()), tokens_heldout=int(held.numel()))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({"key": json.dumps(key, sort_keys=True), "train": train.to(torch.int16),
                      "heldout": held.to(torch.int16)}, cache)
    return train, held, info


def _tok_sha(raw_tokenizer) -> str:
    import hashlib

    return hashlib.sha256(raw_tokenizer.to_str().encode()).hexdigest()


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.chmod(0o644)
    os.replace(tmp, path)


# -------------------------------------------------------------------------------------- figures
@torch.no_grad()
def token_losses(model, batch: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Next-token loss at every position ``[n, pos-1]`` (position i predicts token i+1)."""
    out = []
    for i in range(0, batch.shape[0], chunk):
        x = batch[i : i + chunk].to(model.cfg.device)
        logp = model(x).log_softmax(-1)[:, :-1]
        out.append(-logp.gather(-1, x[:, 1:, None])[..., 0].float().cpu())
    return torch.cat(out)


def icl_score(losses: torch.Tensor, early: int = 50, late: int | None = None) -> float:
    """In-context-learning score (Olsson et al. 2022): mean loss at a late token minus at an early one.

    ``losses`` ``[n, pos]`` from :func:`token_losses`. The paper compares the 500th and the 50th
    token of 512; with 256 tokens of context we compare the last one (``late=None``) with the 50th.
    Negative: later tokens are predicted better, because the model uses the context.
    """
    if losses.ndim != 2 or losses.shape[1] <= early:
        raise InputError(f"losses must be [n, pos] with more than {early} positions, got {list(losses.shape)}")
    late = losses.shape[1] - 1 if late is None else late
    return float(losses[:, late].mean() - losses[:, early].mean())


def card_windows(heldout: torch.Tensor, n_ctx: int, n_windows: int = 128) -> torch.Tensor:
    """The held-out windows the card is measured on: every 4th of the shipped sample's 512.

    ``heldout``: the held-out split's ids (1-D), or the sample shipped beside the checkpoint
    ``[512, n_ctx]`` (``zoo.text.heldout_sample``); both give the same windows, so a test re-measures
    the card on any machine, whatever its installed packages make of the corpus.
    """
    sample = heldout if heldout.ndim == 2 else sc.heldout_windows(heldout, HELDOUT_SAMPLE_WINDOWS, n_ctx)
    return sample[:: max(1, sample.shape[0] // n_windows)][:n_windows].long()


@torch.no_grad()
def measure(model, heldout_ids: torch.Tensor, train_ids: torch.Tensor | None = None, n_windows: int = 128) -> dict:
    """The card's figures: held-out loss (beside unigram and bigram models), induction score, ICL score.

    ``heldout_ids``: the held-out split (1-D) or the shipped sample ``[512, n_ctx]`` (:func:`card_windows`).
    """
    from mi_course.data.induction import repeated_random_tokens
    from mi_course.methods.induction import head_scores, per_token_loss, repeated_half_losses

    n_ctx = model.cfg.n_ctx
    batch = card_windows(heldout_ids, n_ctx, n_windows)
    losses = token_losses(model, batch)
    figs: dict = {"heldout_loss": {"value": round(float(losses.mean()), 4),
                                   "description": f"nats/token on {batch.shape[0]} fixed held-out windows of {n_ctx} tokens"}}
    if train_ids is not None:
        base = v1.ngram_baselines(train_ids, batch, vocab=model.cfg.d_vocab)
        for k in ("unigram", "bigram"):
            figs[f"{k}_loss"] = {"value": round(base[k], 4),
                                 "description": f"same held-out tokens, add-0.1 {k} model fit on the train split"}
    early = 50 if n_ctx > 100 else n_ctx // 4
    figs["icl_score"] = {"value": round(icl_score(losses, early), 4),
                         "description": f"held-out loss at token {n_ctx - 1} minus at token {early}, over {batch.shape[0]} "
                                        "windows (Olsson et al.: 500th minus 50th; negative = uses context)"}
    seq_len = min(40, (n_ctx - 1) // 2)
    rep = repeated_random_tokens(32, seq_len, model.cfg.d_vocab, seed=1234).to(model.cfg.device)
    ind = head_scores(model, rep, seq_len)["induction"].cpu()
    L, H = divmod(int(ind.argmax()), model.cfg.n_heads)
    first, second = repeated_half_losses(per_token_loss(model(rep).cpu(), rep.cpu()), seq_len)
    figs["induction_score"] = {"value": round(float(ind.max()), 4), "head": f"{L}.{H}",
                               "description": f"best head ({L}.{H}): mean attention to the token after the earlier copy, "
                                              f"32 sequences of {seq_len} random tokens repeated twice"}
    figs["repeated_tokens_loss"] = {"value": round(second, 4),
                                    "description": f"nats/token on the second copy of repeated random tokens (first copy: {first:.2f})"}
    return figs


@torch.no_grad()
def induction_score_gpt(gpt) -> float:
    """The card's induction score (best head, same probe as :func:`measure`) from a training-time ``GPT``."""
    from mi_course.data.induction import repeated_random_tokens
    from mi_course.methods.block1_circuits.induction import induction_scores

    seq_len = min(40, (gpt.cfg["n_ctx"] - 1) // 2)
    rep = repeated_random_tokens(32, seq_len, gpt.cfg["d_vocab"], seed=1234).to(gpt.embed.weight.device)
    return max(float(induction_scores(p.cpu(), seq_len).max()) for p in gpt.attention_patterns(rep))


# ------------------------------------------------------------------------------------- training
def _term_as_interrupt():
    """While training, SIGTERM (``kill``; a background job ignores Ctrl-C) saves and stops like Ctrl-C.

    Returns the function that puts the old handler back. Outside the main thread: nothing to do.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)


def _optimizer(model, recipe: Recipe):
    decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, betas=(0.9, 0.98))


def train(recipe: Recipe | None = None, run_dir: Path | None = None, device: str = "cpu",
          train_ids: torch.Tensor | None = None, heldout_ids: torch.Tensor | None = None,
          config: dict | None = None, raw_tokenizer=None, stop_after: int | None = None,
          progress: bool = True, threads: int | None = None):
    """Train (or resume) ``text-lm-v2``. Returns ``(model, recipe, done)``; ``model`` is a ``TransformerBridge``.

    ``run_dir`` holds the resumable state (``state.pt``): if it is there, training continues from
    it (the recipe must match). ``stop_after``: stop (and save) after this many steps of this call,
    as if interrupted; ``done`` tells whether the last step was reached. ``train_ids`` /
    ``heldout_ids`` (1-D token ids) skip the corpus (tests); ``config`` overrides :data:`CONFIG`.
    """
    from mi_course import zoo

    gpt, recipe, done = train_gpt(recipe, run_dir, device, train_ids, heldout_ids, config, raw_tokenizer,
                                  stop_after, progress, threads)
    bridge = zoo.build(dict(gpt.cfg), device=device, seed=recipe.seed)
    bridge.load_state_dict(gpt.state_dict())
    bridge.eval()
    return bridge, recipe, done


def train_gpt(recipe: Recipe | None = None, run_dir: Path | None = None, device: str = "cpu",
              train_ids: torch.Tensor | None = None, heldout_ids: torch.Tensor | None = None,
              config: dict | None = None, raw_tokenizer=None, stop_after: int | None = None,
              progress: bool = True, threads: int | None = None):
    """:func:`train` without the bridge: returns ``(gpt, recipe, done)`` with a :class:`~mi_course.zoo.gpt.GPT`.

    Resuming from a saved state needs only torch (not transformer-lens): the run's initial weights
    come from the zoo's seeded ``zoo.build`` once, at step 0, and are in the state from then on. So
    a run started here with ``stop_after=0`` can be carried to another machine and trained there.
    """
    recipe = recipe or Recipe()
    config = dict(config or CONFIG, n_ctx=recipe.n_ctx)
    if threads:  # the zoo would otherwise pick 1 thread for a small model
        from mi_course.threads import set_threads

        set_threads(threads)
    run_dir = Path(run_dir) if run_dir else default_run_dir(recipe.seed, recipe.steps, recipe.init)
    run_dir.mkdir(parents=True, exist_ok=True)
    if train_ids is None:
        raw_tokenizer = raw_tokenizer or v1.load_raw_tokenizer()
        train_ids, heldout_ids, _ = corpus_tokens(raw_tokenizer, run_dir, recipe.max_files, progress)
    held = sc.heldout_windows(heldout_ids, 16, recipe.n_ctx)

    from mi_course.zoo.gpt import GPT

    state_path = run_dir / STATE_FILE
    torch.manual_seed(recipe.seed)
    if state_path.exists():
        model = GPT(config).to(device)  # its weights come from the state
    else:
        model = initial_gpt(config, recipe, device)
    model.train()
    opt = _optimizer(model, recipe)
    g = torch.Generator().manual_seed(recipe.seed)
    step, elapsed, running = 0, 0.0, None
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if state["recipe_key"] != recipe.key() or state["config"] != config:
            raise InputError(f"{state_path} was written by a different recipe or config "
                             f"({state['recipe_key']}, {state['config']}); use another run_dir or delete it")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        g.set_state(state["sampler_rng"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        step, elapsed, running = state["step"], state["elapsed"], state["running_loss"]
        recipe.history = state["history"]
        devices = list(state.get("devices", []))
    else:
        devices = []

    def save():
        _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "sampler_rng": g.get_state(),
                      "torch_rng": torch.get_rng_state(), "step": step, "elapsed": elapsed + time.time() - t0, "running_loss": running,
                      "history": recipe.history, "recipe_key": recipe.key(), "config": config,
                      "devices": devices + [device] * (step > start and device not in devices)}, state_path)

    tokens_per_step = recipe.batch_size * recipe.n_ctx
    bar = tqdm(total=recipe.steps, initial=step, desc=f"train {NAME}", unit="step", disable=not progress,
               dynamic_ncols=True)
    t0 = time.time()
    start = step
    restore = _term_as_interrupt()
    try:
        while step < recipe.steps and (stop_after is None or step - start < stop_after):
            for group in opt.param_groups:
                group["lr"] = recipe.lr_at(step)
            x = sc.random_windows(train_ids, recipe.batch_size, recipe.n_ctx, g).to(device)
            loss = model.loss(x)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            rate = (step - start) * tokens_per_step / max(time.time() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{rate:,.0f}")
            if step % recipe.eval_every == 0 or step == recipe.steps:
                model.eval()
                h = v1.heldout_loss(model, held.to(device))
                ind = induction_score_gpt(model)
                model.train()
                recipe.history.append({"step": step, "tokens": step * tokens_per_step, "loss": round(running, 4),
                                       "heldout_loss": round(h, 4), "induction": round(ind, 4),
                                       "lr": recipe.lr_at(step - 1), "seconds": round(elapsed + time.time() - t0, 1)})
                bar.write(f"step {step}: held-out loss {h:.3f}, induction {ind:.3f}")
            if step % recipe.save_every == 0:
                save()
    except KeyboardInterrupt:
        save()
        bar.close()
        print(f"stopped at step {step}; run the same command again to resume from {state_path}")
        raise
    finally:
        restore()
    save()
    bar.close()
    model.eval()
    recipe.elapsed = elapsed + time.time() - t0
    recipe.devices = devices + [device] * (step > start and device not in devices)
    return model, recipe, step >= recipe.steps


def make_card(model, recipe: Recipe, raw_tokenizer, train_ids, heldout_ids, info: dict, device: str,
              n_card_windows: int = 128):
    from mi_course.zoo.cards import ModelCard

    tokens = recipe.steps * recipe.batch_size * recipe.n_ctx
    devices = getattr(recipe, "devices", None) or [device]  # where it trained (a resumed run may finish elsewhere)
    return ModelCard(
        name=NAME,
        summary="4-layer transformer language model (d_model 256, context 256, MLPs, LayerNorm) trained on the "
                "Python sources of the standard library and the course's installed packages; byte-level BPE, "
                "4,096 tokens (text-lm's tokenizer). Forms induction heads on real text.",
        config=dict(CONFIG, n_ctx=recipe.n_ctx),
        training={
            "data": f"mi_course.data.python_corpus: Python {info['python_version']} stdlib + "
                    f"{len(info['packages'])} installed packages; {info['n_files_train']} train files "
                    f"({info['bytes_train'] / 1e6:.0f} MB, {info.get('tokens_train', train_ids.numel()) / 1e6:.1f}M tokens), "
                    f"{info['n_files_heldout']} held-out files; windows of {recipe.n_ctx} tokens starting with <|endoftext|>",
            "recipe": f"AdamW lr={recipe.lr} (warm-up {recipe.warmup}, cosine to {recipe.min_lr_frac}x), betas (0.9, 0.98), "
                      f"weight_decay={recipe.weight_decay} on matrices, grad clip 1.0, batch {recipe.batch_size}x{recipe.n_ctx} "
                      f"tokens, {recipe.steps} steps ({tokens / 1e6:.1f}M tokens)",
            "seed": recipe.seed,
            "steps": recipe.steps,
            "command": f"python -m mi_course.training.textlm2_recipe --device {devices[0]}"
                       + (f" --steps {recipe.steps}" if recipe.steps != Recipe.steps else "")
                       + (f" --init {recipe.init}" if recipe.init != "zoo" else ""),
            "init": f"{recipe.init}: {INITS[recipe.init]}",
            "time": f"{getattr(recipe, 'elapsed', 0):.0f} s of training on {', '.join(devices)}",
        },
        figures=measure(model, heldout_ids, train_ids, n_windows=n_card_windows),
        extra={"tokenizer": v1.TOKENIZER_FILE, "history": recipe.history,
               "corpus": {k: v for k, v in info.items() if k != "stdlib_root"}},  # no machine paths on a card
        paper_figures={
            "Olsson et al. 2022": "every multi-layer model they trained on text formed induction heads, in a phase change "
                                  "at 2.5-5B training tokens; the ICL score (loss at token 500 minus token 50) was about "
                                  "-0.4 nats after it",
            "Radford et al. 2019 (GPT-2 small)": "12 layers, d_model 768, 124M parameters, trained on WebText (40 GB)",
        },
    )


HELDOUT_SAMPLE_FILE = "heldout_windows.safetensors"
HELDOUT_SAMPLE_WINDOWS = 512


def ship_heldout_sample(card, heldout_ids: torch.Tensor, folder: Path, n: int = HELDOUT_SAMPLE_WINDOWS) -> None:
    """Write ``n`` fixed held-out windows beside the checkpoint and name them (with sha256) in the card.

    The python corpus depends on the installed package versions, so another machine rebuilds a
    slightly different one; notebooks and tests read these windows instead (``zoo.text.windows``),
    the same on every machine. 512 x 256 tokens as int16: 256 KB.
    """
    from safetensors.torch import save_file

    from mi_course.zoo.cards import sha256_of

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    windows = sc.heldout_windows(heldout_ids, n, card.config["n_ctx"]).to(torch.int16)
    path = folder / HELDOUT_SAMPLE_FILE
    save_file({"windows": windows.contiguous()}, str(path))
    path.chmod(0o644)
    card.extra["heldout_sample"] = HELDOUT_SAMPLE_FILE
    card.extra["heldout_sample_sha256"] = sha256_of(path)
    card.extra["heldout_sample_description"] = (f"{windows.shape[0]} evenly spaced windows of {windows.shape[1]} "
                                                "tokens of the held-out split (<|endoftext|> first), int16")


def train_lens(model, train_ids: torch.Tensor, steps: int = 150, seed: int = 0, progress: bool = True):
    """The shipped tuned lens (as ``text-lm``'s): 48 random train windows, frozen model, a minute or two on CPU."""
    from mi_course.methods.logit_lens import train_tuned_lens

    windows = sc.random_windows(train_ids, 48, model.cfg.n_ctx, torch.Generator().manual_seed(seed + 7))
    lens, _ = train_tuned_lens(model, windows, steps=steps, lr=3e-3, batch_positions=256, seed=seed, progress=progress)
    return lens


def snapshot(folder, run_dir: Path | None = None, seed: int = 0, progress: bool = True,
             train_ids: torch.Tensor | None = None, heldout_ids: torch.Tensor | None = None,
             steps: int | None = None, init: str = "zoo"):
    """Write a run's CURRENT weights (mid-training) as a zoo folder with a measured card, for a look.

    E.g. to watch induction heads form: snapshot every few hundred steps and compare the cards'
    ``induction_score``. The card's summary says which step it is; nothing is written to the zoo
    unless ``folder`` is the zoo's own folder.
    """
    from mi_course import zoo

    run_dir = Path(run_dir) if run_dir else default_run_dir(seed, steps, init)
    state_path = run_dir / STATE_FILE
    if not state_path.exists():
        raise InputError(f"no training state in {run_dir}: start the run first ({NAME}'s recipe)")
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    recipe = Recipe(**{k: v for k, v in state["recipe_key"].items()})
    recipe.history = state["history"]
    recipe.elapsed = state["elapsed"]
    recipe.devices = list(state.get("devices", []))
    tok = v1.load_raw_tokenizer()
    if train_ids is None:
        train_ids, heldout_ids, info = corpus_tokens(tok, run_dir, recipe.max_files, progress)
    else:  # tests: token ids given, a stand-in manifest
        info = {"python_version": "-", "packages": {}, "n_files_train": 0, "n_files_heldout": 0, "bytes_train": 0}
    info = dict(info, tokens_train=int(train_ids.numel()), tokens_heldout=int(heldout_ids.numel()))
    model = zoo.build(state["config"])
    model.load_state_dict(state["model"])
    model.eval()
    card = make_card(model, recipe, tok, train_ids, heldout_ids, info, "cpu")
    card.summary = (f"SNAPSHOT at step {state['step']} of {recipe.steps} "
                    f"({state['step'] * recipe.batch_size * recipe.n_ctx / 1e6:.1f}M tokens), not the finished model. "
                    + card.summary)
    card.training["steps_done"] = state["step"]
    ship_heldout_sample(card, heldout_ids, Path(folder))
    return v1.save(model, card, tok, Path(folder))


def make_recipe(steps: int | None = None, seed: int = 0, max_files: int | None = None,
                batch_size: int | None = None, init: str = "zoo") -> Recipe:
    """The recipe with its defaults, ``steps``, ``batch_size`` and ``init`` overridden (short runs get a short warm-up)."""
    if init not in INITS:
        raise InputError(f"init={init!r}: expected one of {sorted(INITS)}")
    recipe = Recipe(seed=seed, max_files=max_files, init=init, **({"steps": steps} if steps else {}),
                    **({"batch_size": batch_size} if batch_size else {}))
    if steps and steps < recipe.warmup * 2:
        recipe.warmup = max(1, steps // 10)
        recipe.eval_every = max(1, steps // 2)
    return recipe


def export_tokens(path, run_dir: Path | None = None, seed: int = 0, progress: bool = True) -> Path:
    """Write the tokenized corpus (train and held-out ids, int16) to ``path``, to train on another machine.

    The corpus is read from this machine's installed packages; a machine with other packages (a
    rented GPU, say) would build a different one. ``--tokens FILE`` trains from this file instead.
    """
    run_dir = Path(run_dir) if run_dir else default_run_dir(seed)
    train_ids, heldout_ids, info = corpus_tokens(v1.load_raw_tokenizer(), run_dir, None, progress)
    _atomic_save({"train": train_ids.to(torch.int16), "heldout": heldout_ids.to(torch.int16),
                  "corpus_sha256": info["sha256"]}, Path(path))
    return Path(path)


def load_token_file(path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train ids, held-out ids)`` from a file written by :func:`export_tokens`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"token file {path} not found (write one with --export-tokens FILE)")
    blob = torch.load(path, weights_only=True)
    if not isinstance(blob, dict) or not {"train", "heldout"} <= set(blob):
        raise InputError(f"{path} is not a token file: expected a dict with 'train' and 'heldout' ids")
    return blob["train"].long(), blob["heldout"].long()


def train_and_save(steps: int | None = None, seed: int = 0, folder=None, progress: bool = True,
                   threads: int | None = None, device: str = "cpu", run_dir: Path | None = None,
                   max_files: int | None = None, lens_steps: int | None = None, batch_size: int | None = None,
                   n_card_windows: int = 128, init: str = "zoo"):
    """Run (or resume) the full recipe, then measure and write tokenizer, checkpoint and card.

    Default folder: the zoo's ``text-lm-v2`` (the shipped ``text-lm`` is left alone). ``lens_steps``:
    the tuned lens's training steps (default 150; 2 for a smoke run of under 200 steps). ``batch_size``
    and ``n_card_windows`` (held-out windows the card is measured on) make smoke runs cheap; the shipped
    model uses the defaults.
    """
    lens_steps = lens_steps or (150 if not steps or steps >= 200 else 2)
    recipe = make_recipe(steps, seed, max_files, batch_size, init)
    tok = v1.load_raw_tokenizer()
    run_dir = Path(run_dir) if run_dir else default_run_dir(seed, recipe.steps, init)
    train_ids, heldout_ids, info = corpus_tokens(tok, run_dir, max_files, progress)
    info = dict(info, tokens_train=int(train_ids.numel()), tokens_heldout=int(heldout_ids.numel()))
    # a run of hours: all cores by default (the zoo would pick 1 thread for a model this small)
    threads = threads or (os.cpu_count() if device == "cpu" else None)
    model, recipe, done = train(recipe, run_dir, device, train_ids, heldout_ids, progress=progress, threads=threads)
    model = model.to("cpu")
    card = make_card(model, recipe, tok, train_ids, heldout_ids, info, device, n_card_windows)
    lens = train_lens(model, train_ids, steps=lens_steps, seed=seed, progress=progress)
    card.training["tuned_lens"] = (f"one affine translator per block, trained {lens_steps} Adam steps (lr 3e-3, 256 "
                                   "positions/step) on 48 train windows to minimise KL(final || lens)")
    from mi_course.zoo.cards import MODELS_DIR

    folder = Path(folder) if folder else MODELS_DIR / NAME
    ship_heldout_sample(card, heldout_ids, folder)
    return v1.save(model, card, tok, folder, tuned_lens=lens)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="zoo", choices=sorted(INITS),
                   help="initial weights: " + "; ".join(f"{k}: {v}" for k, v in INITS.items()))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--run-dir", default=None, help="resumable state (default ~/.cache/mi-course/runs/...)")
    p.add_argument("--out", default=None, help="folder for checkpoint and card (default: the zoo's text-lm-v2)")
    p.add_argument("--snapshot", default=None, metavar="FOLDER",
                   help="do not train: write the run's current (mid-training) weights and card to FOLDER")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="train N steps of this call, then save the state and stop (0: only create the run)")
    p.add_argument("--train-only", action="store_true",
                   help="train (or resume) and stop: no card, lens or zoo folder (they need transformer-lens); "
                        "the same command without it finishes the run")
    p.add_argument("--tokens", default=None, metavar="FILE",
                   help="with --train-only: train on the token ids in FILE instead of this machine's corpus")
    p.add_argument("--export-tokens", default=None, metavar="FILE",
                   help="do not train: write the tokenized corpus to FILE (for --tokens on another machine)")
    a = p.parse_args(argv)
    if a.export_tokens:
        print(f"wrote {export_tokens(a.export_tokens, a.run_dir, a.seed)}")
        return 0
    if a.train_only or a.stop_after is not None:
        recipe = make_recipe(a.steps, a.seed, init=a.init)
        run_dir = Path(a.run_dir) if a.run_dir else default_run_dir(a.seed, a.steps, a.init)
        if a.tokens:
            train_ids, heldout_ids = load_token_file(a.tokens)
        else:
            train_ids, heldout_ids, _ = corpus_tokens(v1.load_raw_tokenizer(), run_dir, None, True)
        threads = a.threads or (os.cpu_count() if a.device == "cpu" else None)
        _, recipe, done = train_gpt(recipe, run_dir, a.device, train_ids, heldout_ids, stop_after=a.stop_after,
                                    threads=threads)
        last = recipe.history[-1] if recipe.history else {}
        print(f"{'finished' if done else 'stopped'}: {last}; state in {run_dir}")
        return 0
    if a.tokens:
        p.error("--tokens needs --train-only (finishing needs this machine's corpus for the card)")
    if a.snapshot:
        print(snapshot(a.snapshot, a.run_dir, a.seed, steps=a.steps, init=a.init).render())
        return 0
    card = train_and_save(a.steps, a.seed, a.out, True, a.threads, a.device, a.run_dir, init=a.init)
    print(card.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

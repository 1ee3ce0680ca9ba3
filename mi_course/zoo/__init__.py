"""The course's model zoo: small models we train ourselves, shipped as safetensors.

>>> from mi_course import zoo
>>> model = zoo.load("attn-only-2l")      # TransformerBridge, CPU, eval mode
>>> print(zoo.card("attn-only-2l").render())

Every checkpoint's sha256 is checked before loading. Hub models (``gpt2-small``, or a raw
hub id such as ``NeelNanda/Attn_Only_2L512W_C4_Code``) load through
``TransformerBridge.boot_transformers`` when online. Building or loading a small model sets
torch's thread count for it (1 thread; ``MI_COURSE_THREADS`` or ``mi_course.set_threads(n)``
override it; see :mod:`mi_course.threads`).
"""

from __future__ import annotations

from pathlib import Path

from mi_course import threads
from mi_course.errors import CheckpointError, UnknownModelError
from mi_course.zoo.cards import MODELS_DIR, ModelCard, sha256_of
from mi_course.zoo.hub import HUB_ALIASES, is_hub_name, load_hub_model

__all__ = ["load", "card", "names", "cards", "build", "ModelCard", "verify"]


def names() -> list[str]:
    """Names of the zoo's own models (those with a card in ``zoo/models/``)."""
    return sorted(p.parent.name for p in MODELS_DIR.glob("*/card.json"))


def cards() -> list[ModelCard]:
    return [card(n) for n in names()]


def card(name: str) -> ModelCard:
    """The model card of zoo model ``name``."""
    path = MODELS_DIR / name / "card.json"
    if not path.exists():
        raise UnknownModelError(_unknown_message(name))
    return ModelCard.load(path)


def _unknown_message(name: str) -> str:
    known = ", ".join(names()) or "(none)"
    hub = ", ".join(HUB_ALIASES)
    return (
        f"Unknown zoo model '{name}'. Zoo models: {known}. Hub aliases (need internet): {hub}; "
        "a raw hub id such as 'owner/model' also works online. `mi-course models` lists the zoo."
    )


def build(config: dict, device: str = "cpu", seed: int | None = None, tokenizer=None):
    """A freshly initialised TransformerBridge from a card's config dict (and optional tokenizer)."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    kwargs = dict(config)
    if seed is not None:
        kwargs["seed"] = seed
    cfg = TransformerBridgeConfig(**kwargs, device=device)
    model = TransformerBridge.boot_native(cfg, tokenizer=tokenizer, device=device)
    threads.apply_for_model(model)
    return model


def verify(name: str, path: Path | None = None) -> ModelCard:
    """Check that ``name``'s checkpoint exists and matches its recorded sha256."""
    c = card(name)
    path = Path(path) if path else c.checkpoint_path
    retrain = c.training.get("command", f"mi-course train {name}")
    if not path.exists():
        raise CheckpointError(
            f"Checkpoint for '{name}' is missing: {path}. Restore it with "
            f"`git checkout -- {_repo_relative(path)}` (or reinstall mi-course), "
            f"or retrain it with `{retrain}`."
        )
    digest = sha256_of(path)
    if digest != c.sha256:
        raise CheckpointError(
            f"Checkpoint for '{name}' is corrupted or was changed: sha256 {digest[:16]}... does not "
            f"match the card's {c.sha256[:16]}.... Restore it with `git checkout -- "
            f"{_repo_relative(path)}` (or reinstall mi-course), or retrain it with `{retrain}`."
        )
    return c


def _repo_relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(MODELS_DIR.parents[1]))
    except ValueError:
        return str(path)


def load(name: str, device: str = "cpu", checkpoint: Path | None = None):
    """Load a model by name: a zoo model (offline), a hub alias or a raw hub id (online).

    Returns a ``TransformerBridge`` in eval mode on ``device`` (default CPU).
    """
    if not isinstance(name, str):
        raise UnknownModelError(f"zoo.load expects a model name (str), got {type(name).__name__}.")
    if name not in names():
        if is_hub_name(name):
            model = load_hub_model(name, device=device)
            threads.apply_for_model(model)  # leaves large models (GPT-2) alone
            return model
        raise UnknownModelError(_unknown_message(name))
    c = verify(name, checkpoint)
    from safetensors.torch import load_file

    from mi_course.zoo.tokenizer_files import tokenizer_for

    model = build(c.config, device=device, tokenizer=tokenizer_for(c))
    state = load_file(str(checkpoint or c.checkpoint_path), device=device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"Checkpoint for '{name}' does not fit its config: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}. Retrain it with `{c.training.get('command')}`."
        )
    model.eval()
    model.zoo_card = c  # so helpers can find token names and figures
    return model


def save_checkpoint(model, card_: ModelCard, folder: Path | None = None) -> ModelCard:
    """Write ``model.safetensors`` and ``card.json`` (with sha256 and size) for a zoo model."""
    from safetensors.torch import save_file

    folder = Path(folder) if folder else card_.folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / card_.checkpoint
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    path.chmod(0o644)  # safetensors writes 0600; graders' sandboxed kernels run as another user
    card_.sha256 = sha256_of(path)
    card_.size_bytes = path.stat().st_size
    card_.save(folder)
    return card_

"""Sparse autoencoders and transcoders in the zoo: trained by us on zoo models, shipped with a card and sha256.

>>> from mi_course import zoo
>>> zoo.sae_names()
>>> sae = zoo.load_sae("text-lm-L2-resid-topk")
>>> sae.hook_name, sae.model_name, sae.kind       # what it reads, on which model, "sae" or "transcoder"
>>> latents = sae.encode(acts); acts_hat = sae.decode(latents)
>>> print(sae.card.render())

Each SAE lives in ``zoo/saes/<name>/`` (``card.json`` + ``sae.safetensors``); the card names the
model and activation (``hook_name``; for a transcoder also ``output_hook_name``, the activation it
replaces), the architecture, how it was trained and what it measurably does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mi_course.errors import CheckpointError, UnknownModelError
from mi_course.zoo.cards import ModelCard, sha256_of, verify_file

SAES_DIR = Path(__file__).parent / "saes"
SAE_FILE = "sae.safetensors"


@dataclass
class SAECard(ModelCard):
    """A model card for an SAE: ``config`` holds the SAE's constructor arguments."""

    model_name: str = ""
    hook_name: str = ""
    kind: str = "sae"
    output_hook_name: str | None = None
    checkpoint: str = SAE_FILE

    @property
    def folder(self) -> Path:
        return SAES_DIR / self.name

    def render(self) -> str:
        head = f"  reads {self.hook_name} of {self.model_name}" + (
            f", replaces {self.output_hook_name}" if self.output_hook_name else "")
        lines = super().render().splitlines()
        out = lines[:1] + [head]
        for line in lines[1:]:
            key = line.strip().split(" = ")[0]
            fig = self.figures.get(key) if " = " in line else None
            if isinstance(fig, dict) and "random_decoder_baseline" in fig:
                line += f"  [random decoder: {fig['random_decoder_baseline']:.4g}]"
            out.append(line)
        return "\n".join(out)


def sae_names() -> list[str]:
    """Names of the zoo's SAEs and transcoders."""
    return sorted(p.parent.name for p in SAES_DIR.glob("*/card.json"))


def sae_card(name: str) -> SAECard:
    path = SAES_DIR / name / "card.json"
    if not isinstance(name, str) or not path.exists():
        known = ", ".join(sae_names()) or "(none)"
        raise UnknownModelError(f"Unknown zoo SAE {name!r}. Zoo SAEs: {known}.")
    return SAECard.load(path)


def load_sae(name: str, device: str = "cpu"):
    """Load a zoo SAE or transcoder (sha256-checked): a :class:`~mi_course.zoo.sae_models.SparseAutoencoder`
    in eval mode with ``hook_name``, ``model_name``, ``kind``, ``output_hook_name`` and ``card`` set."""
    from safetensors.torch import load_file

    from mi_course.zoo.sae_models import SparseAutoencoder

    c = sae_card(name)
    path = c.checkpoint_path
    retrain = c.training.get("command", "its recipe")
    verify_file(path, c.sha256, f"SAE checkpoint of '{name}'", retrain)
    sae = SparseAutoencoder.from_config(c.config)
    state = load_file(str(path), device=device)
    missing, unexpected = sae.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"SAE checkpoint for '{name}' does not fit its config: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    sae.to(device).eval()
    sae.hook_name, sae.model_name, sae.kind = c.hook_name, c.model_name, c.kind
    sae.output_hook_name = c.output_hook_name
    sae.card = c
    return sae


def save_sae(sae, card: SAECard, folder: Path | None = None) -> SAECard:
    """Write ``sae.safetensors`` (0644) and ``card.json`` with its sha256 and size."""
    from safetensors.torch import save_file

    folder = Path(folder) if folder else card.folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / card.checkpoint
    save_file({k: v.detach().cpu().contiguous() for k, v in sae.state_dict().items()}, str(path))
    path.chmod(0o644)
    card.config = sae.config()
    card.sha256 = sha256_of(path)
    card.size_bytes = path.stat().st_size
    card.save(folder)
    (folder / "card.json").chmod(0o644)
    return card

"""Model cards: what each zoo model is, how it was trained, and what it measurably shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"


@dataclass
class ModelCard:
    """Everything a user should know about a zoo model, stored as ``models/<name>/card.json``."""

    name: str
    summary: str
    config: dict  # TransformerBridgeConfig keyword arguments (without device)
    training: dict  # data, recipe, seed, steps, command to retrain
    figures: dict  # measured figures: {"key": {"value": float, "description": str}}
    checkpoint: str = "model.safetensors"
    sha256: str = ""
    size_bytes: int = 0
    token_names: list[str] | None = None  # display names for synthetic vocabularies
    extra: dict = field(default_factory=dict)
    paper_figures: dict = field(default_factory=dict)  # the papers' claims, for comparison

    @property
    def folder(self) -> Path:
        return MODELS_DIR / self.name

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / self.checkpoint

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def save(self, folder: Path | None = None) -> Path:
        folder = Path(folder) if folder else self.folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "card.json"
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: Path) -> "ModelCard":
        return cls(**json.loads(Path(path).read_text()))

    def render(self) -> str:
        """A readable text version of the card (used by ``mi-course models``)."""
        lines = [f"{self.name}: {self.summary}"]
        arch = ", ".join(f"{k}={v}" for k, v in self.config.items())
        lines.append(f"  architecture: {arch}")
        for key in ("data", "recipe", "seed", "steps", "command", "cpu_time"):
            if key in self.training:
                lines.append(f"  {key}: {self.training[key]}")
        lines.append("  measured figures:")
        for key, fig in self.figures.items():
            value = fig["value"] if isinstance(fig, dict) else fig
            desc = fig.get("description", "") if isinstance(fig, dict) else ""
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"    {key} = {shown}  ({desc})" if desc else f"    {key} = {shown}")
        if self.paper_figures:
            lines.append("  the papers say:")
            for key, text in self.paper_figures.items():
                lines.append(f"    {key}: {text}")
        size = f"{self.size_bytes / 1e6:.2f} MB" if self.size_bytes else "?"
        lines.append(f"  checkpoint: {self.checkpoint} ({size}), sha256 {self.sha256}")
        return "\n".join(lines)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
